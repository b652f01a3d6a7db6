"""runner/fleet_bin.py: `gh fleet` is the runner's own relayfleet; other `gh` is the real gh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from relayfleet import __version__
from relayfleet.runner.fleet_bin import session_path


def run(path: str, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_gh_fleet_is_the_launcher_and_other_gh_commands_reach_the_real_gh(tmp_path: Path) -> None:
    real = tmp_path / "real-bin"
    real.mkdir()
    (real / "gh").write_text('#!/bin/sh\necho "real gh: $*"\n')
    (real / "gh").chmod(0o755)
    state = tmp_path / "state"
    path = session_path(state, {"PATH": f"{real}{os.pathsep}/usr/bin{os.pathsep}/bin"})
    assert path.split(os.pathsep)[:2] == [str(state / "bin"), str(real)]
    # A checkout of relayfleet itself in the cwd is never what `gh fleet` runs.
    (tmp_path / "relayfleet").mkdir()
    (tmp_path / "relayfleet" / "__main__.py").write_text("raise SystemExit('the cwd copy')\n")
    for argv in (["gh", "fleet", "--version"], ["gh-fleet", "--version"], ["fleet", "--version"]):
        res = run(path, tmp_path, *argv)
        assert res.returncode == 0, res.stderr
        assert __version__ in res.stdout
    res = run(path, tmp_path, "gh", "pr", "create", "--title", "x y")
    assert res.stdout == "real gh: pr create --title x y\n"
    # Written again (a restart), never nested: the bin dir appears once.
    again = session_path(state, {"PATH": path})
    assert again.split(os.pathsep).count(str(state / "bin")) == 1


def test_without_a_real_gh_only_gh_fleet_works(tmp_path: Path) -> None:
    path = session_path(tmp_path / "state", {"PATH": "/nonexistent"})
    res = run(path, tmp_path, "gh", "issue", "list")
    assert res.returncode == 127 and "only `gh fleet` is available" in res.stderr
    assert run(path, tmp_path, "gh", "fleet", "--version").returncode == 0
