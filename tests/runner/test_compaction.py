"""Bounded inboxes: the acked prefix of `inbox.jsonl` moves to `inbox.jsonl.1` without losing,
duplicating or mis-addressing a single event, whoever appends meanwhile and whenever we die."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sessionkit import wait_until

from relayfleet.core.atomic import append_json, read_json, read_jsonl
from relayfleet.core.inboxfile import append_once
from relayfleet.runner.compaction import (
    CRASH_ENV,
    STEPS,
    CompactionConfig,
    Compactor,
    archive_path,
    archives,
    recover,
)
from relayfleet.runner.engine_command import RESEND_MARK
from relayfleet.runner.inbox_tail import InboxTail
from relayfleet.runner.ledger import Ledger
from relayfleet.runner.supervisor import runner_state_file
from relayfleet.runner.tools import read_event_at

SMALL = CompactionConfig(max_bytes=2000, keep_bytes=400, archives=3)


def event(i: int) -> dict[str, object]:
    return {"id": f"e{i:04d}", "source": "github", "body": f"event {i} " + "x" * 60}


def all_ids(inbox: Path) -> list[str]:
    """Every id kept anywhere (archives oldest first, then the live file)."""
    out: list[str] = []
    for p in [*reversed(archives(inbox)), inbox]:
        out += [str(e["id"]) for e in read_jsonl(p)]
    return out


def deliver_all(ledger: Ledger, tail: InboxTail, *, ack_before: int) -> None:
    """What the supervisor does: every line read is delivered; ids below `ack_before` acked."""
    for item in tail.read_available():
        eid = str(item.event["id"])
        ledger.begin(eid, item.start, item.end, resend=False)
        ledger.delivered(eid, item.start, item.end)
        if int(eid[1:]) < ack_before:
            ledger.ack(eid, "done")


def compacted_rounds(tmp_path: Path, rounds: int) -> Path:
    """`rounds` times over: 40 more events arrive, all are delivered and acked, and a compaction
    cuts something (asserted). Returns the inbox."""
    inbox = tmp_path / "inbox.jsonl"
    ledger = Ledger(path=tmp_path / "runner-state.json")
    tail = InboxTail(inbox)
    comp = Compactor(inbox, ledger, SMALL)
    n = 0
    for _ in range(rounds):
        for _ in range(40):
            append_json(inbox, event(n))
            n += 1
        deliver_all(ledger, tail, ack_before=n)
        assert comp.compact_now(tail=tail) > 0
    return inbox


def test_compaction_archives_only_the_acked_prefix_and_rebases_the_ledger(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    ledger = Ledger(path=tmp_path / "runner-state.json")
    tail = InboxTail(inbox)
    for i in range(60):
        append_json(inbox, event(i))
    deliver_all(ledger, tail, ack_before=40)  # 40..59 delivered, still pending
    for i in range(60, 70):
        append_json(inbox, event(i))  # not delivered yet
    comp = Compactor(inbox, ledger, SMALL)
    assert comp.due()

    cut = comp.compact_now(tail=tail)

    assert cut > 0 and comp.compactions == 1
    live = [e["id"] for e in read_jsonl(inbox)]
    assert live == [f"e{i:04d}" for i in range(40, 70)]  # pending and undelivered stay live
    assert all_ids(inbox) == [f"e{i:04d}" for i in range(70)]  # nothing lost, nothing twice
    # Every byte position the ledger holds still addresses the same event.
    for p in ledger.pending.values():
        assert read_event_at(inbox, p.start, p.end)["id"] == p.id  # type: ignore[index]
    reloaded = Ledger.load(ledger.path)
    assert reloaded.offset == ledger.offset and reloaded.compaction is None
    # The tail carries on from where it was: only the undelivered ones, once.
    assert [i.event["id"] for i in tail.read_available()] == [f"e{i:04d}" for i in range(60, 70)]
    append_json(inbox, event(70))
    assert [i.event["id"] for i in tail.read_available()] == ["e0070"]


def test_nothing_is_cut_while_the_oldest_event_is_pending(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    ledger = Ledger(path=tmp_path / "runner-state.json")
    tail = InboxTail(inbox)
    for i in range(60):
        append_json(inbox, event(i))
    deliver_all(ledger, tail, ack_before=0)  # an agent that never acks
    comp = Compactor(inbox, ledger, SMALL)
    assert not comp.due()
    assert comp.compact_now(tail=tail) == 0
    ledger.give_up("e0000")  # given up counts as done; e0001 still holds the rest
    assert comp.compact_now(tail=tail) == 0
    for i in range(30):
        ledger.ack(f"e{i:04d}")
    assert comp.compact_now(tail=tail) > 0
    assert read_jsonl(inbox)[0]["id"] == "e0030"


def test_archives_are_bounded_newest_first(tmp_path: Path) -> None:
    inbox = compacted_rounds(tmp_path, 6)
    assert [p.name for p in archives(inbox)] == [f"inbox.jsonl.{i}" for i in (1, 2, 3)]
    newest = read_jsonl(archive_path(inbox, 1))
    older = read_jsonl(archive_path(inbox, 2))
    assert older[-1]["id"] < newest[0]["id"]
    assert inbox.stat().st_size < SMALL.max_bytes
    assert all_ids(inbox) == sorted(set(all_ids(inbox)))  # ordered, no duplicates


WRITER = """
import sys
from pathlib import Path
from relayfleet.core.atomic import append_json
from relayfleet.core.inboxfile import append_once
inbox, n = Path(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    ev = {"id": f"w{i:05d}", "source": "operator", "body": "from another process " + "y" * 40}
    if i % 2:
        append_once(inbox, ev)  # the router's / http inbox's idempotent append
    else:
        append_json(inbox, ev)  # tell / handoff / api.emit
"""


def test_a_writer_in_another_process_loses_nothing_while_we_compact(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    ledger = Ledger(path=tmp_path / "runner-state.json")
    ledger.writer = lambda path, data: None  # type: ignore[method-assign]  # speed: no fsync
    config = CompactionConfig(max_bytes=3000, keep_bytes=600, archives=1000)
    comp = Compactor(inbox, ledger, config)
    n = 3000
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(inbox), str(n)])
    seen: list[str] = []

    async def runner() -> None:
        tail = InboxTail(inbox)

        async def on_idle() -> None:
            comp.compact_now(tail=tail)
            if seen and seen[-1] == "last":
                tail.close()

        tail.on_idle = on_idle
        async for item in tail:
            eid = str(item.event["id"])
            seen.append(eid)
            ledger.begin(eid, item.start, item.end, resend=False)
            ledger.delivered(eid, item.start, item.end)
            ledger.ack(eid)

    async def main() -> None:
        task = asyncio.create_task(runner())
        await wait_until(lambda: writer.poll() is not None, timeout=120)
        append_json(inbox, {"id": "last", "body": "wake the tail"})
        await asyncio.wait_for(task, 60)

    asyncio.run(main())
    assert writer.returncode == 0
    expected = [f"w{i:05d}" for i in range(n)] + ["last"]
    assert seen == expected  # the tail saw each exactly once, in order
    assert all_ids(inbox) == expected  # and the files kept each exactly once
    assert comp.compactions >= 10
    assert not append_once(inbox, {"id": "last", "body": "again"})  # idempotence still holds


CRASHER = """
import json, sys
from pathlib import Path
from relayfleet.core.atomic import append_json
from relayfleet.runner.compaction import CompactionConfig, Compactor
from relayfleet.runner.engine_command import RESEND_MARK
from relayfleet.runner.inbox_tail import InboxTail
from relayfleet.runner.ledger import Ledger
inbox, state = Path(sys.argv[1]), Path(sys.argv[2])
ledger = Ledger.load(state)
tail = InboxTail(inbox, ledger.offset)
for item in tail.read_available():
    eid = item.event["id"]
    if not ledger.already_delivered(eid):
        ledger.begin(eid, item.start, item.end, resend=False)
        ledger.delivered(eid, item.start, item.end)
    if int(eid[1:]) < int(sys.argv[3]):
        ledger.ack(eid)
Compactor(inbox, ledger, CompactionConfig(2000, 400, 3)).compact_now(tail=tail)
print("survived")
"""


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_of_a_compaction_is_recovered(tmp_path: Path, step: str) -> None:
    inbox, state = tmp_path / "inbox.jsonl", tmp_path / "runner-state.json"
    for i in range(60):
        append_json(inbox, event(i))
    env = {**os.environ, CRASH_ENV: step}
    r = subprocess.run(
        [sys.executable, "-c", CRASHER, str(inbox), str(state), "45"], env=env, capture_output=True
    )
    assert r.returncode == -9, r.stderr  # it died at `step`, holding the flock
    append_once(inbox, event(60))  # the router appends right after (the lock died with it)

    ledger = Ledger.load(state)
    outcome = recover(ledger, inbox)

    # Before the intent (and after the rebase) there is nothing to do; between, undo or finish.
    expected = {"archive-tmp": None, "compact-tmp": None, "intent": "undone", "rebased": None}
    assert outcome == expected.get(step, "finished")
    assert all_ids(inbox) == [f"e{i:04d}" for i in range(61)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert sorted(ledger.pending) == [f"e{i:04d}" for i in range(45, 60)]
    for p in ledger.pending.values():
        assert read_event_at(inbox, p.start, p.end)["id"] == p.id  # type: ignore[index]
    # The runner resumes right after the last delivered line: e0060 next, nothing before it.
    tail = InboxTail(inbox, ledger.offset)
    assert [i.event["id"] for i in tail.read_available()] == ["e0060"]
    assert Ledger.load(state).compaction is None
    # And the next compaction works from the recovered state.
    for eid in list(ledger.pending):
        ledger.ack(eid)
    for i in range(61, 90):
        append_json(inbox, event(i))
    deliver_all(ledger, tail, ack_before=80)
    assert Compactor(inbox, ledger, SMALL).compact_now(tail=tail) > 0
    assert all_ids(inbox) == [f"e{i:04d}" for i in range(90)]


def test_from_env_reads_the_runner_environment() -> None:
    cfg = CompactionConfig.from_env(
        {"RELAYFLEET_INBOX_MAX_BYTES": "1000", "RELAYFLEET_INBOX_ARCHIVES": "0"}
    )
    assert (cfg.max_bytes, cfg.archives) == (1000, 1)
    assert CompactionConfig.from_env({}) == CompactionConfig()
    assert CompactionConfig.from_env({"RELAYFLEET_INBOX_KEEP_BYTES": "x"}).keep_bytes > 0


# -- a real runner, killed -9 mid-compaction and at random ---------------------------------


class Acker:
    """Acks whatever the runner has pending, over its MCP channel, as a session would."""

    def __init__(self, fleet: Any, name: str) -> None:
        self.fleet, self.name = fleet, name
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from fastmcp import Client

        state = runner_state_file(self.fleet.paths, self.name)
        cfg_path = self.fleet.paths.agent_state(self.name) / "mcp.json"

        async def once() -> None:
            (server,) = json.loads(cfg_path.read_text())["mcpServers"].values()
            token = server["headers"]["Authorization"].removeprefix("Bearer ")
            async with Client(server["url"], auth=token, timeout=5) as c:
                while not self.stop.is_set():
                    for p in (read_json(state, {}) or {}).get("pending", []):
                        await c.call_tool("ack_event", {"event_id": p["id"]})
                    await asyncio.sleep(0.05)

        while not self.stop.is_set():
            try:
                asyncio.run(once())
            except Exception:  # the runner died or restarts: connect to the next one
                self.stop.wait(0.1)


@pytest.mark.slow
def test_kill_9_of_a_real_runner_during_compactions_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.fleetkit import make_fleet, pid_alive, run_cli, turns

    monkeypatch.setenv("RELAYFLEET_INBOX_MAX_BYTES", "3000")
    monkeypatch.setenv("RELAYFLEET_INBOX_KEEP_BYTES", "600")
    monkeypatch.setenv("RELAYFLEET_INBOX_ARCHIVES", "1000")  # keep all: the test counts them
    fleet = make_fleet(tmp_path / "fleet")
    transcript = fleet.echo_agent("coder")
    inbox = fleet.paths.inbox("coder")
    told: list[str] = []
    acker = Acker(fleet, "coder")
    acker.thread.start()
    rng = random.Random(7)
    pid: int | None = None
    # Four runners die inside a compaction (one per step that matters), two at a random instant.
    crashes = ["compact-tmp", "intent", "replaced", "archived", None, None]
    try:
        for round_, step in enumerate(crashes):
            if step is None:
                monkeypatch.delenv(CRASH_ENV, raising=False)
            else:
                monkeypatch.setenv(CRASH_ENV, step)
            rc, out, err = run_cli(fleet, "start", "coder")
            if rc != 0 and step is not None and "exited during start-up" in err:
                continue  # it caught up on its backlog and died at `step` before start returned
            assert rc == 0, (round_, out, err)
            st = wait_until_status(fleet, pid)
            pid = st["pid"]
            deadline = time.monotonic() + (rng.uniform(0.5, 2.0) if step is None else 60)
            i = 0
            # At most 40 per round, slower than the session takes them: the tail goes idle
            # (where compaction runs) and the test stays short.
            while pid_alive(pid) and time.monotonic() < deadline and i < 40:
                body = f"r{round_}-{i:03d} " + "z" * 60
                run_cli(fleet, "tell", "coder", body)
                told.append(f"[FROM operator] {body}")
                i += 1
                time.sleep(0.05)
            if step is None:
                os.kill(pid, signal.SIGKILL)
            for gone in (pid, st.get("session_pid")):  # the runner, then its session (PTY closed)
                if gone:
                    wait_until_sync(lambda g=gone: not pid_alive(g), timeout=30)
        monkeypatch.delenv(CRASH_ENV, raising=False)
        # The last runner first works through every backlog the crashes left: on a loaded
        # machine that takes longer than start's default wait.
        rc, out, err = run_cli(fleet, "start", "coder", "--timeout", "180")
        assert rc == 0, (out, err)
        wait_until_status(fleet, pid)

        def all_in() -> bool:
            seen = {t.removeprefix(RESEND_MARK) for t in turns(transcript)}
            return set(told) <= seen

        wait_until_sync(all_in, timeout=60)
        seen = turns(transcript)
        plain = [t for t in seen if not t.startswith(RESEND_MARK)]
        marked = [t.removeprefix(RESEND_MARK) for t in seen if t.startswith(RESEND_MARK)]
        assert len(plain) == len(set(plain)), "an event was silently delivered twice"
        assert set(plain) | set(marked) == set(told), "an event was lost"
        assert list(dict.fromkeys(t.removeprefix(RESEND_MARK) for t in seen)) == told
        kept = all_ids(inbox)
        assert len(kept) == len(set(kept)) == len(told)  # archives + live: each once
        assert len(archives(inbox)) >= 2  # compactions did happen (2 finished by recovery)
        # bounded (threshold + one round of slack) once the caught-up runner next goes idle:
        # compaction waits for that, so the last delivery can come a moment before it
        wait_until_sync(lambda: inbox.stat().st_size < 3000 + 2000, timeout=60)
        assert len(all_ids(inbox)) == len(told)  # the compaction kept every event, once
        n_arch = len(archives(inbox))
        print(f"\n{len(told)} events, {len(marked)} marked re-sends, {n_arch} archives")
    finally:
        acker.stop.set()
        run_cli(fleet, "stop", "coder")
        acker.thread.join(10)


def wait_until_sync(pred: Callable[[], object], timeout: float = 20.0) -> None:
    from tests.waiting import wait_until as wait

    wait(pred, timeout)


def wait_until_status(fleet: Any, prev: int | None) -> dict[str, Any]:
    """The new runner's status (its pid: not `prev`), once its session is up."""
    path = fleet.paths.runner_status("coder")

    def up() -> dict[str, Any] | None:
        st = read_json(path, {}) or {}
        ok = st.get("pid") != prev or prev is None
        return st if ok and st.get("session") == "up" and st.get("running") else None

    wait_until_sync(up, timeout=30)
    return read_json(path)


def test_get_event_finds_events_compaction_moved_into_the_archives(tmp_path: Path) -> None:
    from relayfleet.runner.tools import find_event

    inbox = compacted_rounds(tmp_path, 3)
    assert len(archives(inbox)) == 3
    oldest = read_jsonl(archive_path(inbox, 3))[0]["id"]
    newest_archived = read_jsonl(archive_path(inbox, 1))[-1]["id"]
    live = read_jsonl(inbox)[-1]["id"]

    for eid in (live, newest_archived, oldest):
        found = find_event(inbox, str(eid))
        assert found is not None and found["id"] == eid
    # Bounded: only the newest archives are searched.
    assert find_event(inbox, str(oldest), max_archives=2) is None
    assert find_event(inbox, "e9999") is None
