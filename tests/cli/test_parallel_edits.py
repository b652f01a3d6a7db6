"""Many `gh fleet` edits at once, each its own process: none is lost, each commit holds
exactly its change, ports stay unique and HEAD always validates."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.gitops import fleet_texts_at
from relayfleet.fleet.load import load_fleet
from relayfleet.fleet.schema import load_fleet_from_texts
from tests.cli.edit_checks import check_repo, reported, spawn
from tests.conftest import git, git_env


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


# -- random sequences of parallel edits (hypothesis, stateful) ----------------------------------

OPS = ("new-agent", "new-coder", "watch add", "route add", "watch remove", "route remove",
       "remove-agent")  # fmt: skip


class ParallelEdits(RuleBasedStateMachine):
    """Each step runs 1-4 random mutating commands at once, each in its own process; after
    each step every change reported as done is in HEAD, each commit's semantic diff is exactly
    what its subject says, ports are unique, and HEAD validates."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="fleet-edits-"))
        self.root = self.tmp / "repo"
        self.root.mkdir()
        (self.tmp / "home").mkdir()
        self.env = git_env(self.tmp / "home")
        git(self.root, "init", "-q", "-b", "main", env=self.env)
        git(self.root, "config", "user.name", "Prop", env=self.env)
        git(self.root, "config", "user.email", "prop@example.com", env=self.env)
        for argv in (["init", "--name", "prop"], ["new-agent", "base", "--role", "base"]):
            assert spawn(self.root, self.env, *argv).wait(timeout=120) == 0
        self.done: list[tuple[str, str]] = []
        self.n = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _argv(self, op: str, pick: int) -> list[str]:
        fleet = load_fleet_from_texts(fleet_texts_at(self.root, "HEAD"))
        self.n += 1
        n = self.n
        agents = sorted(fleet.agents)
        if op == "new-agent":
            return ["new-agent", f"b{n}", "--role", "base"]
        if op == "new-coder":
            return ["new-agent", f"c{n}", "--role", "coder", "--repo", f"acme/r{n}"]
        if op == "watch add":
            return ["watch", "add", f"w{n}", "--kind", "issues", "--repo", "acme/x"]
        if op == "route add":
            return ["route", "add", "--to", agents[pick % len(agents)], "--label", f"l{n}"]
        if op == "watch remove" and fleet.watches:
            return ["watch", "remove", fleet.watches[pick % len(fleet.watches)].name]
        if op == "route remove" and fleet.routes:
            return ["route", "remove", str(pick % len(fleet.routes) + 1)]
        if op == "remove-agent" and len(agents) > 1:
            return ["remove-agent", agents[pick % len(agents)], "--prune-routes"]
        return ["watch", "add", f"w{n}", "--kind", "pulls", "--repo", "acme/y"]

    @rule(batch=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 999)), min_size=1,
                         max_size=4))  # fmt: skip
    def edit_in_parallel(self, batch: list[tuple[str, int]]) -> None:
        argvs = [self._argv(op, pick) for op, pick in batch]
        procs = [spawn(self.root, self.env, *argv, "--wait", "300") for argv in argvs]
        for argv, p in zip(argvs, procs, strict=True):
            out, err = p.communicate(timeout=600)
            # Racing edits may find their target gone (rc 1), never a crash or a half-edit.
            assert p.returncode in (0, 1), (argv, p.returncode, err)
            assert "Traceback" not in err and "internal error" not in err, (argv, err)
            if p.returncode == 0:
                done = reported(out)
                assert len(done) == 1, (argv, out)
                self.done += done

    @invariant()
    def head_holds_every_reported_change_and_validates(self) -> None:
        check_repo(self.root, self.done)


TestParallelEdits = ParallelEdits.TestCase
TestParallelEdits.settings = settings(
    max_examples=4,
    stateful_step_count=3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
