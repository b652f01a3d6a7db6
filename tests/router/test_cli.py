"""`router run --once|start|stop|status`, `inbox` and `status` through the real CLI entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub
from tests.router.helpers import cli, route, watch, write_fleet
from tests.waiting import wait_until

# On the real time: the router under test runs as it does in production.
pytestmark = pytest.mark.fake_github(repos=["acme/wms"], wall_clock=True)


@pytest.fixture
def root(tmp_path: Path, fake: FakeGitHub) -> Path:
    write_fleet(
        tmp_path,
        ["coder"],
        [watch("wms", "issues", "acme/wms", "--state open", poll_sec=1)],
        [route(1, "coder", watch="wms")],
    )
    return tmp_path


def test_run_once_then_inbox_and_status(root: Path, fake: FakeGitHub) -> None:
    assert cli(root, fake, "router", "run", "--once")[0] == 0
    n = fake.open_issue("acme/wms", "Scanner crash", author="alice")
    rc, out, _ = cli(root, fake, "router", "run", "--once")
    assert rc == 0 and "delivered 1 event(s)" in out

    rc, out, _ = cli(root, fake, "inbox", "coder", "--json")
    [event] = json.loads(out)
    assert event["metadata"]["number"] == n and event["source"] == "github"
    rc, out, _ = cli(root, fake, "inbox", "coder")
    assert f"acme/wms#{n} opened] Scanner crash" in out

    rc, out, _ = cli(root, fake, "status", "--json")
    st = json.loads(out)
    assert st["router"]["running"] is False and st["router"]["cursor_age_s"] is not None
    assert st["agents"][0]["name"] == "coder" and st["agents"][0]["inbox_events"] == 1

    rc, out, _ = cli(root, fake, "router", "status", "--json")
    st = json.loads(out)
    assert st["last_cycle"] and st["broken_watches"] == {} and "rate_limit_remaining" in st


def test_inbox_of_an_unknown_agent_fails_cleanly(root: Path, fake: FakeGitHub) -> None:
    rc, _, err = cli(root, fake, "inbox", "nobody")
    assert rc == 1 and err.startswith("gh fleet: ") and "coder" in err


def test_a_bad_token_is_one_clear_line(root: Path, fake: FakeGitHub) -> None:
    fake.revoke_token(fake.token)
    rc, _, err = cli(root, fake, "router", "run", "--once")
    assert rc == 1 and "401" in err and "gh auth login" in err and fake.token not in err


@pytest.mark.slow
def test_start_delivers_in_the_background_and_stop_stops(root: Path, fake: FakeGitHub) -> None:
    try:
        rc, out, _ = cli(root, fake, "router", "start")
        assert rc == 0 and "router running" in out
        wait_until(lambda: json.loads(cli(root, fake, "router", "status", "--json")[1])[
            "last_cycle"])  # fmt: skip
        fake.open_issue("acme/wms", "Later")
        wait_until(lambda: json.loads(cli(root, fake, "inbox", "coder", "--json")[1]))
        pid = json.loads(cli(root, fake, "router", "status", "--json")[1])["pid"]
        # A restart that could not start a new router leaves the running one alone.
        no_token = {"GH_TOKEN": "", "GH_PATH": str(root / "no-such-gh")}
        rc, _, err = cli(root, fake, "router", "restart", env_extra=no_token)
        assert rc == 1 and "no GitHub token" in err
        st = json.loads(cli(root, fake, "router", "status", "--json")[1])
        assert st["running"] is True and st["pid"] == pid
        rc, out, _ = cli(root, fake, "router", "stop")
        assert rc == 0 and "stopped" in out
        assert json.loads(cli(root, fake, "router", "status", "--json")[1])["running"] is False
    finally:
        cli(root, fake, "router", "stop")
