"""No orphans: a runner killed with `kill -9` leaves a session that ignores SIGHUP; the next
`start` (or `stop`) kills that session's recorded process group, and never a recycled one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fleetkit import PY, FleetDir, make_fleet, pid_alive, run_cli, wait_until

from relayfleet.core.atomic import read_json
from relayfleet.core.procs import GroupRecord, group_record, kill_group, process_start_time
from tests.procfs import group_members

# A session that survives its terminal going away, with a helper in its own process group.
STUBBORN = """\
import os, signal, subprocess, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
helper = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(600)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {helper.pid}")
while True:
    time.sleep(1)
"""


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    f = make_fleet(tmp_path / "fleet")
    yield f
    for name in f.agents:
        run_cli(f, "stop", name)


def stubborn_agent(fleet: FleetDir) -> Path:
    script = fleet.root / "stubborn.py"
    script.write_text(STUBBORN)
    pids = fleet.root / "pids.txt"
    fleet.add_agent("coder", [PY, str(script), str(pids)], plugins=[])
    return pids


def kill_9_runner(fleet: FleetDir, pids: Path) -> tuple[int, list[int]]:
    """Start the agent, kill -9 its runner; (the session's pgid, its processes) still alive."""
    assert run_cli(fleet, "start", "coder")[0] == 0
    wait_until(pids.exists)
    session, helper = map(int, wait_until(lambda: pids.read_text().split()))
    st = read_json(fleet.paths.runner_status("coder"))
    assert st["session_pgid"] == session
    assert st["session_pgid_start"] == process_start_time(session)
    os.kill(st["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(st["pid"]))
    # The orphan this guards against: the session and its helper outlived their runner.
    assert pid_alive(session) and pid_alive(helper)
    assert sorted(group_members(session)) == sorted([session, helper])
    pids.unlink()
    return session, [session, helper]


@pytest.mark.slow
def test_start_after_a_kill_9_kills_the_old_session_group_first(fleet: FleetDir) -> None:
    pids = stubborn_agent(fleet)
    pgid, old = kill_9_runner(fleet, pids)

    rc, out, err = run_cli(fleet, "start", "coder")
    assert rc == 0, err
    assert "coder: killed 2 process(es) left by its previous session" in out
    assert group_members(pgid) == []
    assert not any(pid_alive(p) for p in old)
    # The new session is a different one, recorded in its place.
    new_session = int(wait_until(lambda: pids.exists() and pids.read_text().split())[0])
    assert new_session not in old
    assert read_json(fleet.paths.runner_status("coder"))["session_pgid"] == new_session


@pytest.mark.slow
def test_stop_after_a_kill_9_kills_the_old_session_group(fleet: FleetDir) -> None:
    pids = stubborn_agent(fleet)
    pgid, old = kill_9_runner(fleet, pids)
    rc, out, _ = run_cli(fleet, "stop", "coder")
    assert rc == 0 and "coder: stopped" in out
    assert group_members(pgid) == []
    assert not any(pid_alive(p) for p in old)


def sleeper(new_group: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=new_group
    )


def test_a_recycled_group_id_is_never_killed() -> None:
    """Same pgid, another start time: the pid was reused by a process that is not ours."""
    proc = sleeper()
    try:
        rec = group_record(proc.pid)
        assert rec is not None and rec.pgid == proc.pid
        stale = GroupRecord(pgid=proc.pid, start=str(int(rec.start) - 1))
        assert kill_group(stale) == 0
        assert proc.poll() is None
        assert kill_group(rec) == 1
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_a_group_whose_leader_died_is_still_killed_by_its_members() -> None:
    """The leader exited; a member it started (same group) lives on and is found by group id."""
    code = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(p.pid, flush=True)\n"
    )
    leader = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert leader.stdout is not None
        member = int(leader.stdout.readline())
        rec = GroupRecord(pgid=leader.pid, start=str(process_start_time(leader.pid)))
        leader.wait(10)
        assert pid_alive(member) and group_members(leader.pid) == [member]
        assert kill_group(rec) == 1
        wait_until(lambda: not pid_alive(member))
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def cli_main(fleet: FleetDir, *argv: str) -> tuple[int, str, str]:
    """The full CLI (every command), in-process."""
    from relayfleet.cli.main import main

    ctx, out, err = fleet.ctx()
    rc = main(list(argv), ctx=ctx)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_remove_agent_stops_a_running_agent_first(fleet: FleetDir) -> None:
    fleet.echo_agent("coder")
    assert run_cli(fleet, "start", "coder")[0] == 0
    st = read_json(fleet.paths.runner_status("coder"))
    pgid = st["session_pgid"]
    rc, out, err = cli_main(fleet, "remove-agent", "coder", "--no-commit")
    assert rc == 0, err
    assert out.splitlines()[:3] == [
        "coder is running: stopping it first",
        "coder: stopped",
        "Removed agent coder",
    ]
    assert not fleet.paths.agent_dir("coder").exists()
    assert not pid_alive(st["pid"]) and group_members(pgid) == []
    fleet.agents.remove("coder")  # nothing left for the fixture to stop


def test_remove_agent_of_a_stopped_agent_says_nothing_about_stopping(fleet: FleetDir) -> None:
    fleet.echo_agent("coder")
    rc, out, err = cli_main(fleet, "remove-agent", "coder", "--no-commit")
    assert rc == 0, err
    assert out.splitlines()[0] == "Removed agent coder"
    fleet.agents.remove("coder")


@pytest.mark.slow
def test_remove_agent_refused_for_its_routes_leaves_it_running(fleet: FleetDir) -> None:
    """Refused (routes name it): nothing is stopped either."""
    fleet.echo_agent("coder")
    (fleet.root / ".fleet" / "routes.toml").write_text(
        '[[watch]]\nname = "w"\nkind = "issues"\nrepo = "acme/app"\n\n'
        '[[route]]\nto = ["coder"]\n[route.match]\nwatch = "w"\n'
    )
    assert run_cli(fleet, "start", "coder")[0] == 0
    pid = read_json(fleet.paths.runner_status("coder"))["pid"]
    rc, out, err = cli_main(fleet, "remove-agent", "coder", "--no-commit")
    assert rc == 1 and "named in route #1" in err
    assert "stopping" not in out and pid_alive(pid)
    assert fleet.paths.agent_dir("coder").is_dir()
