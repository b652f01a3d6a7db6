"""`kill -9` of a real runner in the middle of a stream of tells: nothing lost, nothing silently
delivered twice (an event caught in flight is re-sent *marked* as a re-send)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from fleetkit import make_fleet, pid_alive, run_cli, turns, wait_until

from relayfleet.core.atomic import read_json
from relayfleet.runner.engine_command import RESEND_MARK
from relayfleet.runner.supervisor import runner_state_file

pytestmark = pytest.mark.slow
N = 60


def test_kill_9_during_a_stream_of_tells_loses_nothing_and_marks_resends(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    transcript = fleet.echo_agent("coder")
    try:
        assert run_cli(fleet, "start", "coder")[0] == 0
        told: list[str] = []

        def tell_all() -> None:
            for i in range(N):
                run_cli(fleet, "tell", "coder", f"event-{i:03d}")
                told.append(f"[FROM operator] event-{i:03d}")
                time.sleep(0.01)

        teller = threading.Thread(target=tell_all)
        teller.start()
        wait_until(lambda: len(turns(transcript)) >= N // 3)
        st = read_json(fleet.paths.runner_status("coder"))
        os.kill(st["pid"], signal.SIGKILL)  # mid-stream, no chance to clean up
        wait_until(lambda: not pid_alive(st["pid"]))
        wait_until(lambda: not pid_alive(st["session_pid"]))  # its PTY closed: the session ends
        teller.join(60)
        assert len(told) == N

        assert run_cli(fleet, "start", "coder")[0] == 0
        wait_until(
            lambda: read_json(runner_state_file(fleet.paths, "coder"))["delivered_count"] >= N
        )
        # the ledger counts a turn once it is submitted; the session writes it down just after
        wait_until(lambda: {t.removeprefix(RESEND_MARK) for t in turns(transcript)} >= set(told))

        seen = turns(transcript)
        plain = [t for t in seen if not t.startswith(RESEND_MARK)]
        marked = [t.removeprefix(RESEND_MARK) for t in seen if t.startswith(RESEND_MARK)]
        assert len(plain) == len(set(plain)), "an event was silently delivered twice"
        assert set(plain) | set(marked) == set(told), "an event was lost"
        assert len(marked) <= 1  # at most the one that was in flight
        # And in order: the inbox order is the session's order.
        assert list(dict.fromkeys(t.removeprefix(RESEND_MARK) for t in seen)) == told
        state = read_json(runner_state_file(fleet.paths, "coder"))
        assert state["delivering"] is None
        assert state["offset"] == fleet.paths.inbox("coder").stat().st_size
    finally:
        run_cli(fleet, "stop", "coder")
