"""The real Claude Code 2.1.331 under a real runner, offline: a second turn after `kill -9` of the
runner. The next `start` kills whatever the dead runner left of its session, resumes the same
conversation, and the model gets the second event with the first still in its context. Nothing
of either session is left afterwards."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from claudekit import claude_fleet
from fleetkit import FleetDir, pid_alive, run_cli, wait_until

from relayfleet.core.atomic import read_json
from relayfleet.fakes.messages_api import FakeMessagesAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realclaude import API_KEY

from tests.procfs import group_members

pytestmark = pytest.mark.slow


@pytest.fixture
def offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FleetDir, FakeMessagesAPI]]:
    """`coder` on the real client, its API key handed over as a fleet credential."""
    monkeypatch.setenv("OFFLINE_TEST_KEY", API_KEY)
    credential = (
        '[credentials.anthropic]\nfrom_env = "OFFLINE_TEST_KEY"\nas_env = "ANTHROPIC_API_KEY"\n'
    )
    with claude_fleet(tmp_path, "Noted.", credential) as offline:
        yield offline


def test_a_second_turn_after_the_runner_is_killed_with_kill_9(
    offline: tuple[FleetDir, FakeMessagesAPI],
) -> None:
    fleet, api = offline
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
