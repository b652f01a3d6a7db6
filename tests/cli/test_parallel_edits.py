"""Many `gh fleet` edits at once, each its own process: none is lost, each commit holds
exactly its change, ports stay unique and HEAD always validates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet
from tests.cli.edit_checks import check_repo, reported, spawn
from tests.conftest import git_env


def test_sixteen_parallel_edits_all_land_each_in_its_own_commit(git_repo: Path, home: Path) -> None:
    env = git_env(home)
    env.pop("FLEET_ROOT", None)
    for argv in (["init", "--name", "par"], ["new-agent", "base", "--role", "base"]):
        assert spawn(git_repo, env, *argv).wait(timeout=120) == 0
    jobs = (
        [["new-agent", f"a{i}", "--role", "coder", "--repo", f"acme/r{i}"] for i in range(6)]
        + [["watch", "add", f"w{i}", "--kind", "issues", "--repo", "acme/WMS"] for i in range(5)]
        + [["route", "add", "--to", "base", "--label", f"l{i}"] for i in range(5)]
    )
    assert len(jobs) == 16
    procs = [spawn(git_repo, env, *argv, "--wait", "300") for argv in jobs]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        results.append((p.returncode, out, err))
    for (rc, out, err), argv in zip(results, jobs, strict=True):
        assert rc == 0, (argv, out, err)
    done = [r for _, out, _ in results for r in reported(out)]
    assert len(done) == 16, done
    assert len({sha for sha, _ in done}) == 16  # sixteen distinct commits
    route_numbers = sorted(s.split("#")[1].split()[0] for _, s in done if "add route" in s)
    assert len(set(route_numbers)) == 5, route_numbers  # no two "Added route #N" alike
    check_repo(git_repo, done)
    subjects = subprocess.run(
        ["git", "log", "--format=%s"], cwd=git_repo, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(subjects) == 2 + 16


def test_a_waiting_edit_says_so_and_gives_up_after_wait(git_repo: Path, home: Path) -> None:
    """A held lock: the second edit prints who holds it once, then fails after --wait."""
    from relayfleet.core.fleetlock import fleet_lock

    env = git_env(home)
    env.pop("FLEET_ROOT", None)
    assert spawn(git_repo, env, "init").wait(timeout=120) == 0
    state = git_repo / ".fleet" / "state"
    with fleet_lock(state):
        p = spawn(git_repo, env, "watch", "add", "w", "--kind", "issues", "--repo", "a/b",
                  "--wait", "1.5")  # fmt: skip
        _, err = p.communicate(timeout=120)
    assert p.returncode == 1
    lines = err.splitlines()
    assert lines[0] == f"gh fleet: waiting for another gh fleet edit (pid {os.getpid()})…"
    assert lines[1].startswith(f"gh fleet: another gh fleet edit (pid {os.getpid()}) held")
    assert load_fleet(FleetPaths(git_repo)).watches == ()  # nothing was written
    p = spawn(git_repo, env, "watch", "add", "w", "--kind", "issues", "--repo", "a/b")
    assert p.wait(timeout=120) == 0  # the lock is free again
