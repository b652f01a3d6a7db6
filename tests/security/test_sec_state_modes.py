"""Session text on disk is for the operator only: an agent's logs, transcript, inbox and status
are 0600 files in a 0700 directory, including files an earlier version left world-readable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from relayfleet.core.atomic import write_atomic
from tests.cli.fleetkit import FleetDir, make_fleet, run_cli, turns
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    f = make_fleet(tmp_path / "fleet")
    yield f
    run_cli(f, "stop", "--all")


def test_an_agents_state_is_0600_files_in_a_0700_directory(fleet: FleetDir) -> None:
    transcript = fleet.echo_agent("coder")
    state = fleet.paths.agent_state("coder")
    # What an older version left behind: a world-readable directory, log and inbox.
    state.mkdir(parents=True, mode=0o755)
    os.chmod(state, 0o755)
    old_log = fleet.paths.session_log("coder")
    old_log.write_text("an earlier transcript\n")
    os.chmod(old_log, 0o644)
    assert run_cli(fleet, "tell", "coder", "hello")[0] == 0
    os.chmod(fleet.paths.inbox("coder"), 0o644)

    rc, _, err = run_cli(fleet, "start", "coder")
    assert rc == 0, err
    wait_until(lambda: turns(transcript))
    wait_until(lambda: json.loads(fleet.paths.runner_status("coder").read_text())["delivered"])

    assert mode(state) == 0o700
    files = {p.name: mode(p) for p in state.iterdir() if p.is_file() and not p.is_socket()}
    for name in ("session.log", "runner.log", "runner.out", "inbox.jsonl", "runner.json"):
        assert name in files, sorted(files)
    assert {n: m for n, m in files.items() if m & 0o077} == {}
    dirs = {p.name: mode(p) for p in state.iterdir() if p.is_dir() and not p.is_symlink()}
    assert {n: m for n, m in dirs.items() if m & 0o077} == {}


def test_write_atomic_honours_the_process_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    write_atomic(tmp_path / "shared.json", "{}")
    assert mode(tmp_path / "private.json") == 0o600
    assert mode(tmp_path / "shared.json") == 0o644 & ~old


def test_an_inbox_made_before_the_runner_ever_ran_is_private(fleet: FleetDir) -> None:
    fleet.echo_agent("coder")
    assert run_cli(fleet, "tell", "coder", "hello")[0] == 0
    assert mode(fleet.paths.agent_state("coder")) == 0o700
    assert mode(fleet.paths.inbox("coder")) == 0o600
