"""`gh fleet budget <agent> --raise …`, `gh fleet usage`, and the budget line in `status`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from relayfleet.cli.commands.budget import parse_since, parse_tokens
from relayfleet.cli.commands.status import budget_line
from relayfleet.core.errors import UsageError
from tests.cli.fleetkit import make_fleet


def fleet_with_usage(root: Path) -> Path:
    fleet = make_fleet(root)
    (root / ".fleet" / "fleet.toml").write_text(
        '[fleet]\nname = "t"\n[budget]\ntokens_per_day = 10000\n'
        "[budget.prices]\ninput = 3.0\noutput = 15.0\n"
    )
    fleet.echo_agent("coder", extra="[budget]\ntokens_per_day = 1000\n")
    projects = fleet.paths.agent_state("coder") / "claude-config" / "projects" / "w"
    projects.mkdir(parents=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    row = {"timestamp": now, "message": {"id": "m1", "usage": {"input_tokens": 900}}}
    old = {
        "timestamp": "2020-01-01T00:00:00Z",
        "message": {"id": "m0", "usage": {"output_tokens": 5}},
    }
    (projects / "s.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(old) + "\n")
    return root


def test_budget_shows_and_raises_for_today(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = fleet_with_usage(tmp_path)
    rc, out, err = cli("budget", "coder", cwd=root, env={"FLEET_ROOT": str(root)})
    assert (rc, err) == (0, "")
    assert out.strip() == "coder: 90% of its daily token budget (900 of 1,000)"
    rc, out, _ = cli(
        "budget", "coder", "--raise", "1k", "--json", cwd=root, env={"FLEET_ROOT": str(root)}
    )
    shown = json.loads(out)
    assert rc == 0 and shown["raised"] == 1000 and shown["limit"] == 2000 and shown["state"] == "ok"
    rc, _, err = cli("budget", "coder", "--raise", "lots", cwd=root, env={"FLEET_ROOT": str(root)})
    assert rc != 0 and err.startswith("gh fleet: --raise 'lots'")


def test_usage_reports_per_agent_with_prices(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = fleet_with_usage(tmp_path)
    rc, out, _ = cli("usage", "--json", cwd=root, env={"FLEET_ROOT": str(root)})
    (row,) = json.loads(out)
    assert rc == 0 and row["agent"] == "coder" and row["source"] == "transcripts"
    assert row["tokens"] == 900 and row["cost_usd"] == pytest.approx(900 * 3.0 / 1e6)
    rc, out, _ = cli(
        "usage", "--since", "2019-12-31", "--json", cwd=root, env={"FLEET_ROOT": str(root)}
    )
    assert json.loads(out)[0]["tokens"] == 905
    rc, out, _ = cli("usage", cwd=root, env={"FLEET_ROOT": str(root)})
    assert "COST" in out and "$0.00" in out


def test_parsing_and_the_status_line() -> None:
    assert parse_tokens("2M") == 2_000_000 and parse_tokens("500_000") == 500_000
    with pytest.raises(UsageError):
        parse_tokens("-3")
    assert parse_since("1d", 1796299200.0) == "2026-12-03"
    assert parse_since("7d", 1796299200.0) == "2026-11-27"
    over = {"state": "over", "used": 1200, "limit": 1000, "scope": "agent", "until": "00:00 UTC"}
    assert budget_line(over) == "over budget until 00:00 UTC (its 1,200 of 1,000 tokens)"
    warn = {"state": "warn", "used": 850, "limit": 1000, "scope": "fleet"}
    assert budget_line(warn).startswith("warning: 85% of the fleet's daily token budget")
