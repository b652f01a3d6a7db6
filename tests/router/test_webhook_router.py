"""The receiver inside a real router process: delivery, status, and `kill -9` after the 200."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from relayfleet.core.atomic import read_jsonl
from relayfleet.core.paths import FleetPaths
from relayfleet.fakes.github import FakeGitHub
from relayfleet.fakes.github_hooks import hook_payload, post_hook
from tests.ports import free_port
from tests.router.helpers import cli, route, watch, write_fleet
from tests.router.process import Router, enable_webhooks
from tests.waiting import wait_until

REPO = "acme/wms"
SECRET = "whsec-test-value"
ISSUES = f"/repos/{REPO}/issues"

# On the real time: the router under test runs as it does in production.
pytestmark = pytest.mark.fake_github(repos=[REPO], wall_clock=True)


@pytest.fixture
def root(tmp_path: Path, fake: FakeGitHub) -> Path:
    write_fleet(
        tmp_path,
        ["coder"],
        [watch("wms", "issues", REPO, "--state open", poll_sec=1)],
        [route(1, "coder", watch="wms")],
    )
    enable_webhooks(FleetPaths(tmp_path), free_port(), reconcile_sec=600)
    return tmp_path


def inbox(root: Path) -> list[dict[str, object]]:
    return read_jsonl(FleetPaths(root).inbox("coder"))


def test_a_webhook_reaches_the_inbox_and_status_says_healthy(root: Path, fake: FakeGitHub) -> None:
    secret = {"FLEET_WEBHOOK_SECRET": SECRET}
    r = Router(root, fake, SECRET)
    try:
        r.wait_ready()
        n = fake.open_issue(REPO, "Scanner crash", author="alice")
        event_file = root / "opened.json"
        event_file.write_text(json.dumps(hook_payload(fake, "issues", REPO, n, "opened")))
        rc, out, err = cli(root, fake, "webhook", "test", str(event_file), env_extra=secret)
        assert rc == 0 and out.startswith(f"issues -> {r.url}: 200 ok"), err
        wait_until(lambda: len(inbox(root)) == 1)
        wait_until(lambda: "webhook" in json.loads(r.paths.router_status.read_text()))
        # signed with another secret: refused, one line, no traceback
        rc, _, err = cli(root, fake, "webhook", "test", str(event_file),
                         env_extra={"FLEET_WEBHOOK_SECRET": "wrong"})  # fmt: skip
        assert rc == 1 and err.startswith("gh fleet: the receiver answered 401")
        out = wait_until(lambda: (o := cli(root, fake, "webhook", "status")[1]) and
                         "1 refused" in o and o)  # fmt: skip
        assert "healthy, last delivery" in out
        assert "env FLEET_WEBHOOK_SECRET" in out and SECRET not in out

        # healthy webhooks: the stream (poll_sec = 1) now only reconciles, every 600 s
        def period() -> float:
            st = json.loads(r.paths.router_status.read_text())
            return float(st["streams"][f"issues:{REPO}"].get("period_s") or 0)

        wait_until(lambda: period() >= 600)
        rc, out, _ = cli(root, fake, "router", "status")
        assert rc == 0 and "webhooks:" in out and "healthy, last delivery" in out
        rc, out, _ = cli(root, fake, "status")
        assert "webhooks: healthy, last delivery" in out
        rc, out, _ = cli(root, fake, "status", "--json")
        wh = json.loads(out)["router"]["webhooks"]
        assert wh["healthy"] is True and wh["accepted"] == 1 and wh["last_event"] == "issues"
    finally:
        r.stop()
    # the poll of the same version delivers nothing more
    assert cli(root, fake, "router", "run", "--once")[0] == 0
    assert len(inbox(root)) == 1
    rc, out, _ = cli(root, fake, "webhook", "status", "--json")
    st = json.loads(out)
    assert st["enabled"] is True and st["secret"] == "env FLEET_WEBHOOK_SECRET"
    assert st["receiver"]["healthy"] is False  # the router (and its receiver) stopped


def test_webhook_status_when_off_and_test_without_a_receiver(
    tmp_path: Path, fake: FakeGitHub
) -> None:
    write_fleet(tmp_path, ["coder"], [watch("wms", "issues", REPO)], [route(1, "coder")])
    rc, out, _ = cli(tmp_path, fake, "webhook", "status")
    assert rc == 0 and out.startswith("webhooks:") and "off" in out
    f = tmp_path / "ping.json"
    f.write_text(json.dumps(hook_payload(fake, "ping", REPO)))
    rc, _, err = cli(tmp_path, fake, "webhook", "test", str(f))
    assert rc == 1 and "no [webhook] secret" in err


def test_kill_9_between_the_200_and_the_inbox_append_loses_nothing(
    root: Path, fake: FakeGitHub
) -> None:
    r = Router(root, fake, SECRET)
    try:
        r.wait_ready()
        n = fake.open_issue(REPO, "Scanner crash", author="alice")
        # Hold the router's loop inside a poll (the fake answers only after a minute), so the
        # delivery is answered by the receiver but not drained when the router dies.
        before = fake.count(path_prefix=ISSUES)
        fake.slow_next(n=1, delay=60, path_prefix=ISSUES)
        wait_until(lambda: fake.count(path_prefix=ISSUES) > before)
        body = hook_payload(fake, "issues", REPO, n, "opened")
        assert post_hook(r.url, SECRET.encode(), "issues", body)[0] == 200
        r.kill9()
        assert inbox(root) == []
    finally:
        r.stop()
    # The next router cannot learn of the issue by polling (every poll hangs): only the spool
    # can bring it.
    fake.clear_faults()
    fake.slow_next(n=100, delay=60, path_prefix=ISSUES)
    again = Router(root, fake, SECRET)
    try:
        wait_until(lambda: len(inbox(root)) == 1)
        assert "Scanner crash" in str(inbox(root)[0]["body"])
    finally:
        again.kill9()
    fake.clear_faults()
    assert cli(root, fake, "router", "run", "--once")[0] == 0
    assert len(inbox(root)) == 1


def test_router_start_refuses_when_the_secret_cannot_be_read(root: Path, fake: FakeGitHub) -> None:
    rc, _, err = cli(root, fake, "router", "start")  # FLEET_WEBHOOK_SECRET is not set
    assert rc == 1 and "webhook secret: env FLEET_WEBHOOK_SECRET is empty or unset" in err
    assert not FleetPaths(root).router_pid.exists()


def test_a_taken_port_is_one_clear_line(root: Path, fake: FakeGitHub) -> None:
    text = FleetPaths(root).fleet_toml.read_text()
    port = int(text.split('listen = "127.0.0.1:')[1].split('"')[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        rc, _, err = cli(root, fake, "router", "run", env_extra={"FLEET_WEBHOOK_SECRET": SECRET})
    assert rc == 1 and err.startswith(
        f"gh fleet: the webhook receiver cannot listen on 127.0.0.1:{port}"
    )


def test_a_restarted_router_polls_for_what_was_sent_while_it_was_down(
    root: Path, fake: FakeGitHub
) -> None:
    r = Router(root, fake, SECRET)
    try:
        r.wait_ready()
        n = fake.open_issue(REPO, "Scanner crash", author="alice")
        assert post_hook(r.url, SECRET.encode(), "issues",
                         hook_payload(fake, "issues", REPO, n, "opened"))[0] == 200  # fmt: skip
        wait_until(lambda: len(inbox(root)) == 1)
    finally:
        r.stop()
    # GitHub's delivery of this one fails: nobody listens. Its repo was healthy a moment ago,
    # but a receiver that was down cannot vouch for the time it was down.
    fake.open_issue(REPO, "Sent while the router was down", author="alice")
    again = Router(root, fake, SECRET)
    try:
        # poll_sec = 1: the normal cadence, not the 600 s reconciliation (its first slot for
        # this stream would fall 110 s out)
        wait_until(lambda: len(inbox(root)) == 2, timeout=60)
        assert "Sent while the router was down" in str(inbox(root)[1]["body"])
    finally:
        again.stop()
