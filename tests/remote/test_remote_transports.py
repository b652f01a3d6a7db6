"""Inbox transports (file, shared, http) and the outbox: exactly once, never dropped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.transports import (
    DeliveringTransport,
    FileInbox,
    HttpInbox,
    SharedInbox,
    drain_outboxes,
    local_http_endpoint,
    outbox_backlog,
)
from relayfleet.core.atomic import read_jsonl
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet, Runtime


def ev(i: int) -> dict:
    return {
        "id": f"evt_{i}",
        "ts": "2026-01-01T00:00:00Z",
        "source": "operator",
        "body": f"message {i}",
        "metadata": {},
    }


def test_file_transport_appends_each_id_once(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    t = DeliveringTransport(FileInbox(paths), paths)
    for e in (ev(1), ev(2), ev(1)):
        assert t.append("coder", e) is True
    assert [e["id"] for e in read_jsonl(paths.inbox("coder"))] == ["evt_1", "evt_2"]
    assert t.has("coder", "evt_2") and not t.has("coder", "evt_3")


def test_an_unmounted_share_queues_in_order_and_lands_when_it_returns(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path / "op")
    share = tmp_path / "mnt" / "coder"  # not there yet: the share is "down"
    fleet = Fleet(
        name="f",
        agents={
            "coder": Agent(
                "coder", "coder", runtime=Runtime(inbox_transport="shared", shared_path=str(share))
            )
        },
    )
    t = DeliveringTransport(SharedInbox(share), paths)
    assert t.append("coder", ev(1)) is False
    assert t.append("coder", ev(2)) is False
    assert t.append("coder", ev(1)) is False  # a retry of a queued id is not queued twice
    assert outbox_backlog(paths, "coder") == 2
    assert t.has("coder", "evt_2")  # accepted: it will land
    share.mkdir(parents=True)  # the share is back
    assert drain_outboxes(paths, fleet, force=True) == {"coder": 0}
    assert outbox_backlog(paths, "coder") == 0
    assert [e["id"] for e in read_jsonl(share / "inbox.jsonl")] == ["evt_1", "evt_2"]
    assert t.append("coder", ev(3)) is True


def test_http_transport_posts_to_the_runners_inbox_and_queues_while_it_is_down(
    tmp_path: Path,
) -> None:
    paths = FleetPaths(tmp_path)
    state = paths.agent_state("coder")
    state.mkdir(parents=True)
    t = DeliveringTransport(HttpInbox(local_http_endpoint(paths)), paths)
    assert t.append("coder", ev(1)) is False  # no runner yet: waits in the outbox
    server = subprocess.Popen([sys.executable, "-m", "relayfleet.runner.http_inbox", str(state)])
    try:
        rs.wait_until(lambda: (state / "http-inbox.json").exists(), 20)
        assert (state / "http-inbox.json").stat().st_mode & 0o777 == 0o600
        assert t.flush("coder", force=True) == 0
        assert t.append("coder", ev(2)) is True
        assert t.append("coder", ev(2)) is True  # idempotent on the server side too
        assert t.has("coder", "evt_1") and not t.has("coder", "evt_9")
        # A wrong token is refused.
        bad = HttpInbox(lambda a: (local_http_endpoint(paths)(a)[0], "nope"))
        with pytest.raises(Exception, match="401"):
            bad.append("coder", ev(3))
    finally:
        server.terminate()
        server.wait(10)
    assert [e["id"] for e in read_jsonl(paths.inbox("coder"))] == ["evt_1", "evt_2"]
