"""The supervisor in-process: re-send on ack timeout, resume on restart, attach holds typing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from pathlib import Path
from typing import Any

from sessionkit import echo_runner_setup, wait_until

from relayfleet.core.atomic import append_json
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, ClaudeConfig, Credential, Fleet
from relayfleet.runner.engine import EngineSpec
from relayfleet.runner.engine_command import RESEND_MARK, CommandEngine
from relayfleet.runner.supervisor import Runner


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


class Recorder:
    """An engine factory that records every spec it was given (and runs the real engine)."""

    def __init__(self) -> None:
        self.specs: list[EngineSpec] = []

    def __call__(self, spec: EngineSpec, channel: Any) -> CommandEngine:
        self.specs.append(spec)
        return CommandEngine(spec, channel)


def test_unacked_events_are_resent_marked_then_given_up(tmp_path: Path) -> None:
    paths, fleet, agent, typed = echo_runner_setup(tmp_path, ack_timeout_sec=1)

    async def main() -> Runner:
        r = Runner(paths, fleet, agent, backoff=(0.1, 0.2))
        task = asyncio.create_task(r.run())
        await wait_until(lambda: r._ready.is_set())
        append_json(paths.inbox("coder"), {"id": "e1", "body": "do the thing"})
        append_json(paths.inbox("coder"), {"id": "e2", "body": "and this"})
        await wait_until(lambda: len(lines(typed)) >= 2)
        assert await r.tools.ack_event("e2", "done") == "acknowledged e2"
        # e1 is never acked: re-sent (marked) after each timeout, then given up on.
        await wait_until(lambda: "e1" in r.ledger.given_up, timeout=30)
        r.request_stop()
        await task
        return r

    r = asyncio.run(main())
    assert lines(typed) == [
        "do the thing",
        "and this",
        RESEND_MARK + "do the thing",
        RESEND_MARK + "do the thing",
        RESEND_MARK + "do the thing",
    ]
    assert r.ledger.pending == {}
    assert "giving up on e1" in paths.runner_log("coder").read_text()


def test_a_session_that_exits_is_restarted_resuming_the_same_conversation(tmp_path: Path) -> None:
    paths, fleet, agent, typed = echo_runner_setup(tmp_path)
    rec = Recorder()

    async def main() -> Runner:
        r = Runner(paths, fleet, agent, engine_factory=rec, backoff=(0.1, 0.2))
        task = asyncio.create_task(r.run())
        await wait_until(lambda: r._ready.is_set())
        append_json(paths.inbox("coder"), {"id": "e1", "body": "first"})
        append_json(paths.inbox("coder"), {"id": "e2", "body": "CRASH-NOW"})
        await wait_until(lambda: r.restarts == 1 and r._ready.is_set())
        append_json(paths.inbox("coder"), {"id": "e3", "body": "after"})
        await wait_until(lambda: "after" in lines(typed))
        r.request_stop()
        await task
        return r

    r = asyncio.run(main())
    assert [s.resume for s in rec.specs] == [False, True]
    assert len({s.session_id for s in rec.specs}) == 1
    assert r.last_exit == 4 or r.last_exit is not None
    assert lines(typed) == ["first", "CRASH-NOW", "after"]
    status = json.loads(paths.runner_status("coder").read_text())
    assert status["running"] is False and status["restarts"] == 1


def test_attach_mirrors_the_session_and_holds_typed_deliveries(tmp_path: Path) -> None:
    paths, fleet, agent, typed = echo_runner_setup(tmp_path)

    async def main() -> tuple[bytes, list[str], list[str]]:
        r = Runner(paths, fleet, agent, backoff=(0.1, 0.2))
        task = asyncio.create_task(r.run())
        await wait_until(lambda: r._ready.is_set())
        sock_path = r.attach.path
        assert oct(sock_path.stat().st_mode & 0o777) == "0o600"
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        await wait_until(lambda: r.attach.clients == 1)
        from relayfleet.runner.attach_server import data_frames

        writer.write(data_frames(b"typed by a human\r"))  # keystrokes travel framed
        await writer.drain()
        await wait_until(lambda: "typed by a human" in lines(typed))
        # While attached, a delivery waits: it must not land in a half-typed prompt.
        append_json(paths.inbox("coder"), {"id": "e1", "body": "from the inbox"})
        await asyncio.sleep(0.5)
        held = lines(typed)
        seen = await reader.read(65536)  # the session's echo of what we typed
        writer.close()
        await wait_until(lambda: "from the inbox" in lines(typed))
        status_attached = r.status()["attached"]
        r.request_stop()
        await task
        return seen, held, [str(status_attached)]

    seen, held, attached_after = asyncio.run(main())
    assert b"typed by a human" in seen
    assert held == ["typed by a human"]
    assert attached_after == ["0"]


def test_a_stale_or_missing_socket_does_not_stop_the_runner(tmp_path: Path) -> None:
    paths, fleet, agent, _ = echo_runner_setup(tmp_path)
    stale = paths.agent_state("coder") / "attach.sock"
    stale.parent.mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX)
    with contextlib.chdir(stale.parent):  # relative: a deep tmp dir exceeds AF_UNIX's path limit
        s.bind(stale.name)  # a socket file left by a killed runner
    s.close()

    async def main() -> bool:
        r = Runner(paths, fleet, agent)
        task = asyncio.create_task(r.run())
        await wait_until(lambda: r._ready.is_set())
        ok = r.attach._server is not None
        r.request_stop()
        await task
        return ok

    assert asyncio.run(main())


def test_a_dialog_without_a_rule_blocks_the_runner_without_retrying(tmp_path: Path) -> None:
    """The runner never answers it, never restarts the session, and says why in status; once a
    human answers through attach, the session comes up and events are delivered."""
    transcript = tmp_path / "transcript.jsonl"
    (tmp_path / ".fleet").mkdir()
    env = {
        "FAKE_CLAUDE_TRANSCRIPT": str(transcript),
        "FAKE_CLAUDE_UNKNOWN_DIALOG": "1",
        "FAKE_CLAUDE_UNNUMBERED": "1",
        "FAKE_CLAUDE_NO_CHANNELS": "1",
    }
    # Sessions see only allowlisted and declared variables: the fake's switches are declared.
    agent = Agent(
        name="coder",
        role="coder",
        claude=ClaudeConfig(
            engine="claude", command=(sys.executable, "-m", "relayfleet.fakes.fake_claude")
        ),
        credentials=tuple(Credential(name=k.lower(), from_env=k, as_env=k) for k in env),
    )
    paths, fleet = FleetPaths(tmp_path), Fleet(name="t", agents={"coder": agent})

    def records(kind: str) -> list[dict[str, Any]]:
        if not transcript.exists():
            return []
        return [
            r for r in map(json.loads, transcript.read_text().splitlines()) if r["type"] == kind
        ]

    async def main() -> dict[str, Any]:
        import os

        os.environ.update(env)
        try:
            from relayfleet.backends.local import prepare_credentials

            r = Runner(paths, fleet, agent, backoff=(0.1, 0.2), credentials=prepare_credentials)
            task = asyncio.create_task(r.run())
            await wait_until(lambda: r.blocked is not None, timeout=30)
            r.write_status()
            blocked = json.loads(paths.runner_status("coder").read_text())
            await asyncio.sleep(1.0)
            assert r.restarts == 0 and len(records("launch")) == 1
            assert records("unknown_dialog") == []  # never answered by the runner
            pty = r._current_pty()  # what `gh fleet attach` reaches while blocked
            assert pty is not None
            pty.write(b"\r")  # the human's answer
            await wait_until(lambda: r._ready.is_set(), timeout=30)
            append_json(
                paths.inbox("coder"),
                {"id": "e1", "source": "operator", "body": "[FROM operator] go on"},
            )
            await wait_until(lambda: records("turn"), timeout=30)
            r.request_stop()
            await task
            return blocked
        finally:
            for k in env:
                os.environ.pop(k, None)

    blocked = asyncio.run(main())
    assert blocked["session"] == "blocked"
    assert blocked["error"] == (
        "blocked: Pick a release channel (answer it: gh fleet attach coder)"
    )
    assert [t["text"] for t in records("turn")] == ["[FROM operator] go on"]
