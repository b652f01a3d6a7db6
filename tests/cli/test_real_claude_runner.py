"""A detached runner with the REAL Claude Code (offline, research/real-claude-offline.md):
a second turn after `kill -9` of the runner. The restarted runner resumes the conversation, and
the first event is delivered once (the model sees it once in the resumed history)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from claudekit import claude_fleet
from fleetkit import pid_alive, run_cli, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realclaude import user_texts

from relayfleet.core.atomic import read_json
from relayfleet.runner.supervisor import runner_state_file

pytestmark = pytest.mark.slow


def test_a_second_turn_after_kill_9_of_the_runner(tmp_path: Path) -> None:
    with claude_fleet(tmp_path, "Understood.") as (fleet, api):
        status = fleet.paths.runner_status("coder")

        def up() -> bool:
            st = read_json(status, default=None) or {}
            return st.get("session") == "up" and pid_alive(int(st.get("pid") or 0))

        def delivered() -> int:
            return int(
                (read_json(runner_state_file(fleet.paths, "coder"), default={}) or {}).get(
                    "delivered_count", 0
                )
            )

        assert run_cli(fleet, "start", "coder")[0] == 0
        wait_until(up, timeout=180)
        assert run_cli(fleet, "tell", "coder", "first turn: note the scanner crash")[0] == 0
        wait_until(lambda: api.saw("first turn: note the scanner crash"), timeout=120)
        wait_until(lambda: delivered() == 1, timeout=60)
        wait_until(lambda: api.saw("Understood.") or len(api.messages_requests()) >= 2, timeout=60)
        # The turn is over once the client has written it to its own transcript (what
        # --resume reads); a kill before that leaves nothing to resume.
        projects = fleet.paths.agent_state("coder") / "claude-config" / "projects"
        wait_until(
            lambda: any(
                "first turn: note the scanner crash" in f.read_text(errors="replace")
                for f in projects.rglob("*.jsonl")
            ),
            timeout=120,
        )

        st = read_json(status)
        os.kill(st["pid"], signal.SIGKILL)  # the runner dies without cleaning up
        wait_until(lambda: not pid_alive(st["pid"]), timeout=30)
        if st.get("session_pid") and pid_alive(st["session_pid"]):
            # An orphaned session is another concern; this test is about the second turn.
            wait_until(lambda: not pid_alive(st["session_pid"]), timeout=30)

        assert run_cli(fleet, "start", "coder")[0] == 0
        wait_until(lambda: up() and read_json(status)["pid"] != st["pid"], timeout=180)
        assert run_cli(fleet, "tell", "coder", "second turn: any news?")[0] == 0
        wait_until(lambda: api.saw("second turn: any news?"), timeout=120)
        wait_until(lambda: delivered() == 2, timeout=60)

    second = [r for r in api.messages_requests() if "second turn: any news?" in r.text()]
    main = [r for r in second if r.tool_names]  # the turn itself, not the title call
    assert main, [r.text()[:200] for r in second]
    history = [t for t in user_texts(main[-1]) if "first turn: note the scanner crash" in t]
    assert len(history) == 1, history  # resumed, and the first event was not typed again
    assert not any(t.startswith("[re-send]") for t in user_texts(main[-1]))
    log = fleet.paths.runner_log("coder").read_text()
    assert log.count("session up (resumed") >= 1, log[-2000:]
