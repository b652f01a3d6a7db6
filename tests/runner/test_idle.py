"""Idle sleep: an idle session is stopped; the next event resumes the same conversation."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sessionkit import wait_until

from relayfleet.core.atomic import append_json
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, ClaudeConfig, Fleet, Runtime
from relayfleet.runner.supervisor import Runner

FAKE = (sys.executable, "-m", "relayfleet.fakes.fake_claude")


def records(transcript: Path, kind: str) -> list[dict[str, Any]]:
    if not transcript.exists():
        return []
    rows = [json.loads(line) for line in transcript.read_text().splitlines()]
    return [r for r in rows if r["type"] == kind]


def test_an_idle_session_sleeps_and_the_next_event_resumes_it(tmp_path: Path) -> None:
    transcript = tmp_path / "transcript.jsonl"
    (tmp_path / ".fleet").mkdir()
    agent = Agent(
        name="coder",
        role="coder",
        claude=ClaudeConfig(engine="claude", command=FAKE, args=("--transcript", str(transcript))),
        runtime=Runtime(idle_stop_min=30),
    )
    paths, fleet = FleetPaths(tmp_path), Fleet(name="t", agents={"coder": agent})

    async def main() -> tuple[dict[str, Any], Runner]:
        r = Runner(paths, fleet, agent, backoff=(0.1, 0.2))
        r.idle.after = 1.0  # the test's "30 minutes"
        task = asyncio.create_task(r.run())
        await wait_until(lambda: r._ready.is_set(), timeout=60)
        append_json(paths.inbox("coder"), {"id": "e1", "source": "operator", "body": "first"})
        await wait_until(lambda: records(transcript, "ack"), timeout=60)
        pty = r.engine.pty  # type: ignore[union-attr]
        await wait_until(lambda: r.idle.asleep and not r._ready.is_set(), timeout=60)
        assert not pty.alive()  # the session process is gone
        r.write_status()
        asleep = json.loads(paths.runner_status("coder").read_text())
        assert r.restarts == 0
        append_json(paths.inbox("coder"), {"id": "e2", "source": "operator", "body": "second"})
        await wait_until(lambda: len(records(transcript, "ack")) == 2, timeout=60)
        r.request_stop()
        await task
        return asleep, r

    asleep, r = asyncio.run(main())
    assert asleep["session"] == "asleep" and asleep["running"] is True
    launches = records(transcript, "launch")
    assert [x["resumed"] for x in launches] == [False, True]  # the same conversation, resumed
    assert len({x["session_id"] for x in launches}) == 1
    assert [t["text"] for t in records(transcript, "turn")] == [
        "[FROM operator] first",
        "[FROM operator] second",
    ]
    assert r.restarts == 0 and r.idle.slept >= 1
