"""`router status` and the `router` object of `status --json`: every figure, readable."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub
from relayfleet.router import daemon
from tests.router.helpers import cli, route, watch, write_fleet

# On the real time: the router under test runs as it does in production.
pytestmark = pytest.mark.fake_github(repos=["acme/wms", "acme/site"], wall_clock=True)


@pytest.fixture
def root(tmp_path: Path, fake: FakeGitHub) -> Path:
    write_fleet(
        tmp_path,
        ["coder"],
        [watch("wms", "issues", "acme/wms", poll_sec=1), watch("gone", "issues", "acme/gone")],
        [route(1, "coder")],
    )
    return tmp_path


def test_status_shows_cost_limits_pause_and_broken_watches(root: Path, fake: FakeGitHub) -> None:
    fake.set_rate_limit(remaining=1234, reset_in=1800)
    # 3 requests: a 200, a 404, and the daily look at whether acme/wms (which feeds an
    # ungated route) is public
    assert cli(root, fake, "router", "run", "--once")[0] == 0
    assert cli(root, fake, "router", "run", "--once")[0] == 0  # a 304 (the 404 is retried too)
    fake.secondary_limit(1, retry_after=600)
    cli(root, fake, "router", "run", "--once")  # paused for 10 minutes

    rc, out, _ = cli(root, fake, "router", "status")
    assert rc == 0
    lines = dict(line.split(":", 1) for line in out.splitlines() if not line.startswith("  "))
    fields = {k.strip(): v.strip() for k, v in lines.items()}
    assert fields["router"] == "stopped"
    assert fields["last cycle"].endswith("ago)")
    assert fields["cursor age"].endswith("s")
    assert fields["requests (1h)"] == "6 (1 were 304, free)"
    left = fields["rate limit left"]
    assert re.fullmatch(r"1230 of 5000, resets 20\S+Z \(in (29|30)m\)", left)
    assert fields["paused until"].endswith("(secondary limit)")
    assert fields["broken watches"] == "1"
    assert out.endswith(
        "broken watches:  1\n  gone: HTTP 404 on GET /repos/acme/gone/issues: the repo does not"
        " exist (renamed? deleted?) or this token cannot see it\n"
    )

    rc, out, _ = cli(root, fake, "router", "status", "--json")
    st = json.loads(out)
    for key in ("running", "pid", "last_cycle", "cursor_age_s", "requests_last_hour",
                "not_modified_last_hour", "rate_limit_remaining", "rate_limit_reset",
                "paused_until", "pause_reason", "broken_watches", "governor"):  # fmt: skip
        assert key in st, key
    assert st["pause_reason"] == "secondary limit" and st["rate_limit_remaining"] == 1230
    assert "buckets" not in st["rate_limit"]  # internal bookkeeping stays internal

    rc, out, _ = cli(root, fake, "status", "--json")
    assert json.loads(out)["router"]["paused_until"] == st["paused_until"]
    rc, out, _ = cli(root, fake, "status")
    assert "6 request(s) in the last hour (1 were 304)" in out and "paused until" in out
    assert "broken watch gone: HTTP 404 on GET /repos/acme/gone/issues" in out


def test_a_restart_keeps_the_pause_and_the_hours_counts(root: Path, fake: FakeGitHub) -> None:
    cli(root, fake, "router", "run", "--once")
    fake.secondary_limit(1, retry_after=600)
    cli(root, fake, "router", "run", "--once")
    fake.reset_log()
    _, _, err = cli(root, fake, "router", "run", "--once")  # a new process, same pause
    assert fake.count() == 0 and "secondary limit" in err
    # 200 + 404 + the visibility of acme/wms, then the request that met the limit
    assert json.loads(cli(root, fake, "router", "status", "--json")[1])["requests_last_hour"] == 4


def test_the_last_hour_is_counted_when_status_is_read(root: Path, fake: FakeGitHub) -> None:
    cli(root, fake, "router", "run", "--once")
    paths = write_fleet(root, ["coder"], [], [])  # (only for its FleetPaths)
    now = daemon.status(paths)
    assert now["requests_last_hour"] == 3  # the two lists and the look at acme/wms's visibility
    later = daemon.status(paths, now=time.time() + 2 * 3600)  # a router stopped long ago
    assert later["requests_last_hour"] == 0 and later["not_modified_last_hour"] == 0
    assert later["rate_limit_reset_in_s"] < 0 and later["paused_until"] is None


def test_the_live_status_row_says_when_the_router_is_catching_up() -> None:
    from relayfleet.cli.status_watch import _router_row

    row = _router_row({"running": True, "catching_up_pages": 7, "broken_watches": {}}, False)
    assert "catching up: 7 pages behind" in row
    assert "github poll" in _router_row({"running": True}, False)
