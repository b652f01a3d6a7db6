"""The real Claude Code 2.1.331 under a real runner, offline: a second turn after `kill -9` of the
runner. The next `start` kills whatever the dead runner left of its session, resumes the same
conversation, and the model gets the second event with the first still in its context. Nothing
of either session is left afterwards."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from fleetkit import FleetDir, make_fleet, pid_alive, run_cli, wait_until

from relayfleet.core.atomic import read_json
from relayfleet.fakes.messages_api import FakeMessagesAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realclaude import claude_binary, why_unavailable

from tests.procfs import group_members

pytestmark = pytest.mark.slow

API_KEY = "sk-ant-api03-relayfleet-offline-test-key-0123456789abcdef"


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    binary = claude_binary()
    if binary is None:
        pytest.skip(f"real Claude Code unavailable: {why_unavailable()}")
    api = FakeMessagesAPI(default_text="Noted.")
    url = api.start()
    monkeypatch.setenv("OFFLINE_TEST_KEY", API_KEY)
    f = make_fleet(tmp_path / "fleet")
    f.add_agent(
        "coder",
        [str(binary)],
        engine="claude",
        extra=(
            f'[claude.endpoint]\nmode = "custom"\nurl = {json.dumps(url)}\n'
            '[credentials.anthropic]\nfrom_env = "OFFLINE_TEST_KEY"\n'
            'as_env = "ANTHROPIC_API_KEY"\n'
        ),
    )
    f.api = api  # type: ignore[attr-defined]
    yield f
    run_cli(f, "stop", "coder")
    api.stop()


def test_a_second_turn_after_the_runner_is_killed_with_kill_9(fleet: FleetDir) -> None:
    api: FakeMessagesAPI = fleet.api  # type: ignore[attr-defined]
    rc, out, err = run_cli(fleet, "start", "coder", "--timeout", "180")
    assert rc == 0, err + out
    assert run_cli(fleet, "tell", "coder", "Fix the scanner crash")[0] == 0
    wait_until(lambda: api.saw("Fix the scanner crash"), 120)
    # The turn is over once the client has written it to its own transcript (what --resume
    # reads); a kill before that leaves nothing to resume, and the runner starts afresh.
    projects = fleet.paths.agent_state("coder") / "claude-config" / "projects"

    def recorded() -> bool:
        return any(
            "Fix the scanner crash" in f.read_text(errors="replace") and "Noted." in f.read_text()
            for f in projects.rglob("*.jsonl")
        )

    wait_until(recorded, 120)

    st = read_json(fleet.paths.runner_status("coder"))
    first = group_members(st["session_pgid"])
    assert first
    os.kill(st["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(st["pid"]))

    rc, out, err = run_cli(fleet, "start", "coder", "--timeout", "180")
    assert rc == 0, err + out
    assert group_members(st["session_pgid"]) == [] and not any(pid_alive(p) for p in first)
    again = read_json(fleet.paths.runner_status("coder"))
    assert again["session_id"] == st["session_id"]  # the same conversation, resumed
    assert run_cli(fleet, "tell", "coder", "Any news on the crash?")[0] == 0

    def main_turn() -> object:  # not the title-generation call, which carries no tools
        reqs = api.messages_requests()
        return next((r for r in reqs if "Any news on the crash?" in r.text() and r.tool_names), 0)

    resumed = wait_until(main_turn, 120)
    assert "Fix the scanner crash" in resumed.text()

    second = group_members(again["session_pgid"])
    rc, out, _ = run_cli(fleet, "stop", "coder")
    assert (rc, out) == (0, "coder: stopped\n")
    assert not any(pid_alive(p) for p in [again["pid"], *first, *second])
    assert group_members(again["session_pgid"]) == []
