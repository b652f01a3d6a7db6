"""`gh fleet stop|start|restart|remove-agent` while `gh fleet up` runs: `up` honours them. A
stopped agent is held stopped (not restarted 4 s later) until `start`; nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from upkit import Fleet, Up, cli, env_for, pid_alive, wait_until

from relayfleet.core.atomic import read_json
from relayfleet.up.supervisor import up_state_path
from tests.procfs import group_members

pytestmark = pytest.mark.slow


def procs_of(fleet: Fleet, name: str) -> tuple[list[int], int]:
    st = fleet.runner(name)
    return [st["pid"], st["session_pid"]], st["session_pgid"]


def gone(fleet: Fleet, pids: list[int], pgid: int) -> bool:
    return not any(pid_alive(p) for p in pids) and group_members(pgid) == []


def test_stop_and_start_while_up_runs_are_honoured(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    fleet.write_agent("reviewer", 8802)
    fleet.commit("fleet: two agents")
    home = tmp_path / "home"
    home.mkdir()
    up = Up(fleet, env_for(fleet.root, home), "--no-router")
    seen: list[int] = []
    try:
        wait_until(lambda: fleet.session_up("coder") and fleet.session_up("reviewer"), 30)
        up_pid = read_json(up_state_path(fleet.paths))["pid"]
        coder, coder_pgid = procs_of(fleet, "coder")
        reviewer, _ = procs_of(fleet, "reviewer")
        seen += coder + reviewer

        # stop: up stops it and holds it stopped; the other agent is untouched.
        rc, out, err = cli(fleet.root, "stop", "coder")
        assert rc == 0, err
        assert out == f"coder: stopped (held by up (pid {up_pid}) until `gh fleet start coder`)\n"
        assert gone(fleet, coder, coder_pgid)
        assert read_json(up_state_path(fleet.paths))["held"] == ["coder"]
        assert "coder" not in read_json(up_state_path(fleet.paths))["agents"]
        assert "exited with" not in up.output  # stopped on purpose: no restart was scheduled
        assert fleet.runner_pid("reviewer") == reviewer[0]

        # start: up runs it again, and the command returns once its session is up.
        rc, out, err = cli(fleet.root, "start", "coder")
        assert rc == 0, err
        assert out.startswith(f"coder: started by up (pid {up_pid}) (pid ")
        assert fleet.session_up("coder") and fleet.runner_pid("coder") not in coder
        assert read_json(up_state_path(fleet.paths))["held"] == []
        rc, out, _ = cli(fleet.root, "start", "coder")
        assert (rc, out) == (0, f"coder: already running (managed by up (pid {up_pid}))\n")

        # restart: a new runner, through up.
        before, before_pgid = procs_of(fleet, "coder")
        seen += before
        rc, out, err = cli(fleet.root, "restart", "coder")
        assert rc == 0, err
        assert gone(fleet, before, before_pgid) and fleet.session_up("coder")

        # stop --all, then start --all.
        everything = [procs_of(fleet, n) for n in ("coder", "reviewer")]
        seen += [p for pids, _ in everything for p in pids]
        rc, out, err = cli(fleet.root, "stop", "--all")
        assert rc == 0, err
        assert all(gone(fleet, pids, pgid) for pids, pgid in everything)
        assert pid_alive(up_pid) and "exited with" not in up.output
        rc, out, err = cli(fleet.root, "start", "--all")
        assert rc == 0, err
        assert fleet.session_up("coder") and fleet.session_up("reviewer")

        # remove-agent of an agent up runs: up stops it first, then forgets the hold.
        last, last_pgid = procs_of(fleet, "coder")
        seen += last
        rc, out, err = cli(fleet.root, "remove-agent", "coder", "--no-commit")
        assert rc == 0, err
        assert out.startswith(f"coder is run by up (pid {up_pid}): stopping it first\n")
        assert gone(fleet, last, last_pgid)
        wait_until(lambda: read_json(up_state_path(fleet.paths)).get("held") == [], 20)
        assert read_json(up_state_path(fleet.paths))["agents"].keys() == {"reviewer"}
        seen += procs_of(fleet, "reviewer")[0]
    finally:
        rc = up.interrupt()
    assert rc == 130
    assert [p for p in seen if pid_alive(p)] == []


def test_stop_without_up_is_unchanged(tmp_path: Path) -> None:
    """No `up`, or an `up` that is gone (a stale up.json): stop and start act directly."""
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    fleet.commit("fleet: coder")
    fleet.paths.state.mkdir(parents=True)
    (fleet.paths.state / "up.json").write_text('{"pid": 999999999, "agents": {"coder": "x"}}\n')
    try:
        rc, out, err = cli(fleet.root, "start", "coder")
        assert rc == 0 and out.startswith("coder: started (pid "), err
        rc, out, err = cli(fleet.root, "stop", "coder")
        assert (rc, out) == (0, "coder: stopped\n"), err
    finally:
        cli(fleet.root, "stop", "coder")


STUBBORN = """\
import signal, subprocess, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(600)"])
while True:
    time.sleep(1)
"""


def test_up_kills_what_a_kill_9_runner_left_before_it_starts(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    d = fleet.paths.agent_dir("coder")
    d.mkdir(parents=True)
    (d / "agent.toml").write_text(
        'name = "coder"\nrole = "coder"\nport = 8801\nplugins = []\n'
        '[claude]\nengine = "command"\n'
        f"command = {json.dumps([sys.executable, str(script)])}\nremote_control = false\n"
    )
    fleet.commit("fleet: a stubborn coder")
    home = tmp_path / "home"
    home.mkdir()
    rc, _, err = cli(fleet.root, "start", "coder")
    assert rc == 0, err
    st = fleet.runner("coder")
    pgid = st["session_pgid"]
    wait_until(lambda: len(group_members(pgid)) == 2)
    os.kill(st["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(st["pid"]))
    left = group_members(pgid)
    assert len(left) == 2  # the session and its helper outlived their runner

    up = Up(fleet, env_for(fleet.root, home), "--no-router")
    try:
        wait_until(lambda: fleet.session_up("coder") and fleet.runner("coder")["pid"] != st["pid"])
        assert "killed 2 process(es) left by coder's last session" in up.output
        assert group_members(pgid) == [] and not any(pid_alive(p) for p in left)
        now = procs_of(fleet, "coder")
    finally:
        rc = up.interrupt()
    assert rc == 130
    assert gone(fleet, *now)
