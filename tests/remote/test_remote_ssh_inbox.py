"""The `ssh` inbox transport's long-lived worker, against a real sshd: one worker per pooled
connection, appends land exactly once and in order, a killed worker is replaced without loss or
duplicate, and the host's own writers (which flock the same file) interleave safely."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.ssh import SshBackend
from relayfleet.backends.sshpool import SshPool
from relayfleet.backends.transports import DeliveringTransport, SshInbox, outbox_backlog
from relayfleet.core.inboxfile import append_once
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet
from relayfleet.fleet.model import Fleet

pytestmark = pytest.mark.slow


@dataclass
class Host:
    paths: FleetPaths
    fleet: Fleet
    workdir: Path

    def inbox(self, agent: str = "coder") -> Path:
        return (
            rs.remote_state(self.workdir, self.paths.root, self.fleet.name, agent) / "inbox.jsonl"
        )

    def ids(self, agent: str = "coder") -> list[str]:
        try:
            return [json.loads(x)["id"] for x in self.inbox(agent).read_text().splitlines()]
        except FileNotFoundError:
            return []


@pytest.fixture(scope="module")
def host(sshd: rs.Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """An ssh host with the runner installed (once for the module: the install is the slow part)."""
    tmp = tmp_path_factory.mktemp("sshinbox")
    root, workdir = tmp / "op", tmp / "w"
    agents = {"coder": rs.fake_claude_agent(tmp / "t.jsonl", "ssh", "vm", "ssh", 8801)}
    rs.write_fleet(root, name="ib", hosts={"vm": rs.ssh_host(sshd, workdir)}, agents=agents)
    paths = FleetPaths(root)
    paths.state.mkdir(parents=True)
    (paths.state / "known_hosts").write_text(sshd.known_hosts.read_text())
    rs.seed_remote_venv(workdir, root, "ib")
    fleet = load_fleet(paths)
    pool = SshPool()
    try:
        backend = SshBackend(pool=pool)
        backend.ensure_installed(backend.remote(paths, fleet, fleet.agent("coder")))
    finally:
        pool.close()
    yield Host(paths, fleet, workdir)


@pytest.fixture
def pool() -> Iterator[SshPool]:
    p = SshPool()
    yield p
    p.close()


def ev(i: int | str) -> dict:
    return {"id": f"evt_{i}", "source": "operator", "body": f"message {i}", "metadata": {}}


def fresh_agent(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("test_", "")[:40]


def test_appends_land_once_in_order_through_one_worker(
    host: Host, pool: SshPool, request: pytest.FixtureRequest
) -> None:
    agent = fresh_agent(request)
    inbox = SshInbox(host.fleet, "vm", host.paths.state, pool=pool)
    for i in range(20):
        inbox.append(agent, ev(i))
    inbox.append(agent, ev(3))  # a retry of a landed id
    assert host.ids(agent) == [f"evt_{i}" for i in range(20)]
    assert inbox.has(agent, "evt_19") and not inbox.has(agent, "evt_99")
    # One connection, one remote command (the worker), however many appends.
    assert pool.opened == 1
    assert pool.commands == 1  # the worker's exec (the workdir is absolute: no $HOME lookup)
    pid = inbox.worker_pid()
    assert pid is not None and Path(f"/proc/{pid}").exists()  # the host is this machine
    assert "inboxfile" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()


def test_a_killed_worker_is_replaced_without_loss_or_duplicate(
    host: Host, pool: SshPool, request: pytest.FixtureRequest
) -> None:
    agent = fresh_agent(request)
    inbox = SshInbox(host.fleet, "vm", host.paths.state, pool=pool)
    inbox.append(agent, ev(1))
    first = inbox.worker_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    rs.wait_until(lambda: not Path(f"/proc/{first}").exists() or _zombie(first), 10)
    inbox.append(agent, ev(2))  # transparently on a new worker
    second = inbox.worker_pid()
    assert second is not None and second != first
    # The reply to an append was lost (the worker died after writing): the re-send is a no-op.
    append_once(host.inbox(agent), ev(3))
    inbox.append(agent, ev(3))
    inbox.append(agent, ev(4))
    # Killed in the middle of a request (blocked on the host's inbox lock): the client sees the
    # channel close and re-sends to a new worker.
    done = threading.Event()
    with open(host.inbox(agent), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        t = threading.Thread(target=lambda: (inbox.append(agent, ev(5)), done.set()))
        t.start()
        third = inbox.worker_pid()
        assert third is not None
        rs.wait_until(lambda: _blocked(third), 10)  # it read the request and waits for flock
        os.kill(third, signal.SIGKILL)
    t.join(30)
    assert done.is_set() and inbox.worker_pid() not in (None, third)
    assert host.ids(agent) == ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5"]


def _blocked(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/wchan").read_text() in (
            "flock_lock_inode_wait",
            "locks_lock_inode_wait",
        )
    except FileNotFoundError:
        return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def test_local_writers_on_the_host_interleave_safely(
    host: Host, pool: SshPool, request: pytest.FixtureRequest
) -> None:
    agent = fresh_agent(request)
    inbox = SshInbox(host.fleet, "vm", host.paths.state, pool=pool)
    inbox.append(agent, ev("warm"))
    path = host.inbox(agent)

    def local_writer(prefix: str) -> None:  # the runner's hand-offs and HTTP inbox on the host
        for i in range(30):
            append_once(path, ev(f"{prefix}{i}"))

    threads = [threading.Thread(target=local_writer, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for i in range(30):
        inbox.append(agent, ev(f"s{i}"))
        inbox.append(agent, ev(f"a{i}"))  # the same ids as a local writer: never twice
    for t in threads:
        t.join(30)
    ids = host.ids(agent)
    assert len(ids) == len(set(ids)) == 1 + 90  # every line whole and each id once
    assert [x for x in ids if x.startswith("evt_s")] == [f"evt_s{i}" for i in range(30)]
    assert {x for x in ids if x.startswith("evt_b")} == {f"evt_b{i}" for i in range(30)}


def test_the_worker_waits_for_the_hosts_inbox_lock(
    host: Host, pool: SshPool, request: pytest.FixtureRequest
) -> None:
    agent = fresh_agent(request)
    inbox = SshInbox(host.fleet, "vm", host.paths.state, pool=pool)
    inbox.append(agent, ev(1))
    done = threading.Event()
    with open(host.inbox(agent), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a local writer on the host holds the inbox
        t = threading.Thread(target=lambda: (inbox.append(agent, ev(2)), done.set()))
        t.start()
        assert not done.wait(0.5)  # it waits for the lock, it does not write past it
        assert host.ids(agent) == ["evt_1"]
    t.join(30)
    assert done.is_set() and host.ids(agent) == ["evt_1", "evt_2"]


def test_a_worker_that_cannot_start_queues_in_the_outbox_and_lands_later(
    host: Host, request: pytest.FixtureRequest
) -> None:
    agent = fresh_agent(request)
    pool = SshPool(connect_timeout=3)
    try:
        inbox = SshInbox(host.fleet, "vm", host.paths.state, pool=pool)
        t = DeliveringTransport(inbox, host.paths)
        assert t.append(agent, ev(1)) is True
        wid = inbox.worker_pid()
        assert wid is not None
        # The worker is gone and no new one can start (its python is missing for a moment).
        python = Path(inbox._layout().python)
        hidden = python.with_name("python.hidden")
        python.rename(hidden)
        try:
            os.kill(wid, signal.SIGKILL)
            assert t.append(agent, ev(2)) is False  # waits in the outbox
            assert t.append(agent, ev(3)) is False
            assert outbox_backlog(host.paths, agent) == 2
        finally:
            hidden.rename(python)
        assert t.flush(agent, force=True) == 0
        assert host.ids(agent) == ["evt_1", "evt_2", "evt_3"]
    finally:
        pool.close()


def test_an_idle_worker_exits_and_the_next_append_starts_another(
    host: Host, pool: SshPool, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relayfleet.backends import inboxworker

    monkeypatch.setattr(inboxworker, "IDLE_EXIT", 0.5)
    agent = fresh_agent(request)
    inbox = SshInbox(host.fleet, "vm", host.paths.state, pool=pool)
    inbox.append(agent, ev(1))
    first = inbox.worker_pid()
    assert first is not None
    rs.wait_until(lambda: _zombie(first), 10)  # nothing lingers on a quiet host
    inbox.append(agent, ev(2))
    assert inbox.worker_pid() not in (None, first)
    assert host.ids(agent) == ["evt_1", "evt_2"]
