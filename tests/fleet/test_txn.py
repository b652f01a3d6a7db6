"""fleet/txn.py and core/fleetlock.py: one lock per edit, commits that hold exactly their
change, HEAD always valid; plus the line numbers and collision names users see."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from relayfleet.core.fleetlock import LockTimeout, fleet_lock, holder_pid
from tests.conftest import CliResult, git

Cli = Callable[..., CliResult]


@pytest.fixture
def fleet(git_repo: Path, cli: Cli) -> Path:
    assert cli("init", "--name", "t", cwd=git_repo).rc == 0
    assert cli("new-agent", "base", "--role", "base", cwd=git_repo).rc == 0
    return git_repo


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def committed_files(repo: Path) -> list[str]:
    return git(repo, "show", "--name-only", "--format=", "HEAD").split()


def head_and_routes(repo: Path) -> tuple[str, str]:
    """What a refused edit must leave as it was."""
    return head(repo), (repo / ".fleet/routes.toml").read_text()


@pytest.fixture
def z_pending(fleet: Path, cli: Cli) -> Path:
    """`new-agent z --no-commit`: z's watch and route pending in routes.toml, its folder
    untracked."""
    argv = ("new-agent", "z", "--role", "coder", "--repo", "a/z", "--no-commit")
    assert cli(*argv, cwd=fleet).rc == 0
    return fleet


HOLD_THE_LOCK = (
    "import sys; from pathlib import Path\n"
    "from relayfleet.core.fleetlock import fleet_lock\n"
    "with fleet_lock(Path(sys.argv[1])):\n"
    "    print('held', flush=True); sys.stdin.readline()\n"
)


@contextmanager
def lock_held_by_another_process(state: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the fleet lock on `state` until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(state)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "held\n"
    try:
        yield holder
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(60)


# -- pending edits -------------------------------------------------------------------------------


def test_pending_edits_of_a_changed_file_are_refused_naming_it_and_both_fixes(
    z_pending: Path, cli: Cli
) -> None:
    """The issue's case: `new-agent z --no-commit` leaves routes.toml pending; a later
    `route add` must not sweep z's watch and route into its own commit."""
    before = head_and_routes(z_pending)
    rc, out, err = cli("route", "add", "--to", "base", "--label", "bug", cwd=z_pending)
    assert rc == 1 and out == ""
    assert err.startswith("gh fleet: .fleet/routes.toml has uncommitted changes")
    assert "git commit / git stash" in err and "--include-pending" in err
    assert head_and_routes(z_pending) == before


def test_include_pending_that_would_leave_head_invalid_is_refused(
    z_pending: Path, cli: Cli
) -> None:
    """z's route is pending but z's folder is untracked: HEAD would route to no agent."""
    before = head_and_routes(z_pending)
    argv = ("route", "add", "--to", "base", "--label", "x", "--include-pending")
    rc, _, err = cli(*argv, cwd=z_pending)
    assert rc == 1
    assert "would leave the committed fleet invalid" in err and "no agent named 'z'" in err
    assert head_and_routes(z_pending) == before


def test_include_pending_takes_them_in_and_says_so_in_the_subject(fleet: Path, cli: Cli) -> None:
    routes = fleet / ".fleet/routes.toml"
    routes.write_text(routes.read_text() + "\n# a hand-written note\n")
    rc, out, _ = cli("watch", "add", "w", "--kind", "issues", "--repo", "a/b", "--include-pending",
                     cwd=fleet)  # fmt: skip
    assert rc == 0
    subject = "fleet: add watch w (issues a/b) + pending edits of routes.toml"
    assert subjects(fleet)[0] == subject and subject in out
    assert "# a hand-written note" in git(fleet, "show", "HEAD:.fleet/routes.toml")
    assert git(fleet, "status", "--porcelain") == ""


def test_pending_edits_of_other_files_stay_out_of_the_commit(fleet: Path, cli: Cli) -> None:
    toml = fleet / ".fleet/fleet.toml"
    toml.write_text(toml.read_text() + "\n# pending, not ours\n")
    assert cli("route", "add", "--to", "base", "--label", "bug", cwd=fleet).rc == 0
    assert committed_files(fleet) == [".fleet/routes.toml"]
    assert git(fleet, "status", "--porcelain").split() == ["M", ".fleet/fleet.toml"]


def test_no_commit_edits_still_accumulate(fleet: Path, cli: Cli) -> None:
    for i in range(2):
        argv = ("watch", "add", f"w{i}", "--kind", "issues", "--repo", "a/b", "--no-commit")
        assert cli(*argv, cwd=fleet).rc == 0
    assert subjects(fleet)[0] == "fleet: +agent base (base)"


# -- the lock ------------------------------------------------------------------------------------


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across_processes(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    told: list[str] = []
    with fleet_lock(state), fleet_lock(state, wait=0):  # nested: no self-deadlock
        assert holder_pid(state) is not None
        code = (
            "import sys; from pathlib import Path\n"
            "from relayfleet.core.fleetlock import fleet_lock, LockTimeout\n"
            "try:\n"
            "    with fleet_lock(Path(sys.argv[1]), wait=0.2): print('got it')\n"
            "except LockTimeout as e: print('timeout:', e)\n"
        )
        p = subprocess.run([sys.executable, "-c", code, str(state)], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
        assert p.stdout.startswith("timeout: another gh fleet edit (pid "), p.stderr
    with fleet_lock(state, wait=0, notify=told.append):
        pass  # free again, and no waiting line when there was no wait
    assert told == []


def test_a_waiter_is_told_once_then_proceeds_when_the_holder_finishes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    told: list[str] = []
    entered = threading.Event()

    def wait_for_it() -> None:
        with fleet_lock(state, wait=60, notify=told.append):
            entered.set()

    with lock_held_by_another_process(state) as holder:
        t = threading.Thread(target=wait_for_it)
        t.start()
        while not told:  # the notice comes after a second of waiting, before the lock is free
            assert not entered.is_set()
            t.join(0.05)
    t.join(60)
    assert entered.is_set()
    assert told == [f"gh fleet: waiting for another gh fleet edit (pid {holder.pid})…"]


def test_wait_zero_fails_at_once_with_the_holder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with (
        lock_held_by_another_process(state) as holder,
        pytest.raises(LockTimeout, match=rf"\(pid {holder.pid}\)"),
        fleet_lock(state, wait=0),
    ):
        pass


# -- what the user reads -------------------------------------------------------------------------


def test_a_syntax_error_at_the_end_of_a_file_names_its_last_line(fleet: Path, cli: Cli) -> None:
    routes = fleet / ".fleet/routes.toml"
    text = routes.read_text() + '\n[[watch]]\nname = "x\n'
    routes.write_text(text)
    n = len(text.splitlines())
    rc, out, _ = cli("validate", cwd=fleet)
    assert rc == 1 and out.startswith(f".fleet/routes.toml:{n}: error: TOML syntax error")
    routes.write_text(text.rstrip("\n").rsplit("\n", 1)[0] + '\nname = ["x",\n')
    rc, _, err = cli("watch", "add", "y", "--kind", "issues", "--repo", "a/b", cwd=fleet)
    assert rc == 1 and err.startswith(f"gh fleet: .fleet/routes.toml:{n}: TOML syntax error")


def test_a_port_collision_names_the_file_changed_last_then_the_other(fleet: Path, cli: Cli) -> None:
    """`base` (8801) is committed; `a` comes later and its port is then hand-edited onto
    8801: the error is on a's file (even though `a` sorts first), naming base's."""
    assert cli("new-agent", "a", "--role", "base", cwd=fleet).rc == 0
    toml = fleet / ".fleet/agents/a/agent.toml"
    toml.write_text(toml.read_text().replace("port = 8802", "port = 8801"))
    rc, out, _ = cli("validate", cwd=fleet)
    assert rc == 1
    [line] = [x for x in out.splitlines() if "port 8801" in x]
    assert line.startswith(".fleet/agents/a/agent.toml:")
    assert line.endswith("port 8801 is also used by base (.fleet/agents/base/agent.toml)")


def test_a_head_already_broken_does_not_block_the_edits_that_fix_it(fleet: Path, cli: Cli) -> None:
    routes = fleet / ".fleet/routes.toml"
    routes.write_text(
        routes.read_text() + '\n[[route]]\nto = ["ghost"]\n[route.match]\nlabel = "x"\n'
    )
    git(fleet, "commit", "-qam", "a route to nobody, committed by hand")
    assert cli("validate", cwd=fleet).rc == 1
    rc, _, err = cli("route", "add", "--to", "base", "--label", "y", cwd=fleet)
    assert rc == 0, err  # not a new error: allowed
    rc, _, err = cli("route", "remove", "1", cwd=fleet)
    assert rc == 0, err
    assert cli("validate", cwd=fleet).rc == 0


def test_every_mutating_command_takes_wait_and_include_pending() -> None:
    """A command that can commit (it has --no-commit) must also take the lock's flags."""
    import argparse

    from relayfleet.cli.main import build_parser

    def walk(p: argparse.ArgumentParser, name: str) -> list[tuple[str, set[str]]]:
        flags = {o for a in p._actions for o in a.option_strings}
        out = [(name, flags)]
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub, child in a.choices.items():
                    out += walk(child, f"{name} {sub}".strip())
        return out

    mutating = [(n, f) for n, f in walk(build_parser(), "") if "--no-commit" in f]
    assert {n for n, _ in mutating} >= {"init", "new-agent", "remove-agent", "route add",
                                       "route remove", "watch add", "watch remove", "host add",
                                       "host remove"}  # fmt: skip
    for name, flags in mutating:
        assert {"--wait", "--include-pending"} <= flags, name
