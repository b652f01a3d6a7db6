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


def test_a_runner_reaches_each_target_from_where_it_runs(tmp_path: Path) -> None:
    """`transport_from`: the direct inbox where the runner can reach it, else the relay, which
    the router carries on through the target's own transport (each event once)."""
    from relayfleet.backends.relay import collect_relays
    from relayfleet.backends.transports import RelayOut, SshInbox, relay_path, transport_from
    from relayfleet.fleet.model import Host

    def agent(name: str, backend: str, host: str = "", transport: str = "file") -> Agent:
        return Agent(
            name, "coder", runtime=Runtime(backend=backend, host=host, inbox_transport=transport)
        )

    fleet = Fleet(
        name="f",
        hosts={
            "vm": Host("vm", "ssh", "me@127.0.0.1", workdir="/srv"),
            "vm2": Host("vm2", "ssh", "me@127.0.0.2", workdir="/srv"),
            "engine": Host("engine", "docker"),
        },
        agents={
            a.name: a
            for a in (
                agent("here", "local"),
                agent("box", "docker", "engine"),
                agent("far", "ssh", "vm", "ssh"),
                agent("near", "ssh", "vm", "ssh"),
                agent("other", "ssh", "vm2", "ssh"),
            )
        },
    )
    paths = FleetPaths(tmp_path / "op")

    def kind(sender: str, target: str) -> type:
        t = transport_from(paths, fleet, sender, target)
        return type(getattr(t, "inner", t))

    assert kind("here", "far") is SshInbox  # this machine: the target's own transport
    assert kind("here", "box") is FileInbox
    assert kind("box", "here") is RelayOut  # only its own state dir is in the container
    assert kind("box", "box") is FileInbox
    assert kind("box", "far") is RelayOut
    assert kind("far", "near") is FileInbox  # same fleet, same host
    assert kind("far", "other") is RelayOut
    assert kind("far", "here") is RelayOut
    assert kind("far", "far") is FileInbox  # a plugin's emit: its own inbox

    # What a relay file holds is carried on once, through the target's transport (the ssh
    # agents are left out here: no host to read their relay files from).
    small = Fleet(name="f", agents={k: fleet.agents[k] for k in ("here", "box")})
    RelayOut(paths, "box").append("here", ev(7))
    RelayOut(paths, "box").append("here", ev(7))  # a retried hand-off: one line
    assert len(read_jsonl(relay_path(paths, "box"))) == 1
    assert collect_relays(paths, small) == {"box": 1}
    RelayOut(paths, "box").append("here", ev(8))
    assert collect_relays(paths, small) == {"box": 1}  # only what is new
    assert collect_relays(paths, small) == {}
    assert [e["id"] for e in read_jsonl(paths.inbox("here"))] == ["evt_7", "evt_8"]
