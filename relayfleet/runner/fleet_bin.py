"""`gh fleet` on every session's PATH, whether or not relayfleet was installed through gh.

The runner writes `state/agents/<name>/bin/` and puts it first on the session's PATH:
- `gh`: `gh fleet …` runs the launcher that started this runner (its Python, `-m relayfleet`);
  any other `gh …` goes on to the real gh found on the rest of the PATH.
- `gh-fleet` and `fleet`: the same launcher under the names `pip install` gives it.
So an agent uses the very relayfleet its runner runs, never another installed version.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from relayfleet.core.atomic import write_atomic


def bin_dir(state_dir: Path) -> Path:
    return state_dir / "bin"


def _script(body: str) -> str:
    head = "#!/bin/sh\n# Written by the runner: `gh fleet` is the launcher that started it.\n"
    return head + body


def write_bin(state_dir: Path, env: Mapping[str, str], python: str | None = None) -> Path:
    """Write the wrappers; returns the directory (to put first on PATH)."""
    d = bin_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    # -P: never import a relayfleet/ that happens to be in the cwd (a checkout of this repo).
    launcher = f"exec {shlex.quote(python or sys.executable)} -P -m relayfleet"
    rest = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != str(d))
    real_gh = shutil.which("gh", path=rest)
    other = (
        f'exec {shlex.quote(real_gh)} "$@"\n'
        if real_gh
        else "echo 'gh: not installed here (only `gh fleet` is available)' >&2\nexit 127\n"
    )
    gh = f'if [ "${{1:-}}" = fleet ]; then\n  shift\n  {launcher} "$@"\nfi\n{other}'
    plain = f'{launcher} "$@"\n'
    for name, body in (("gh", gh), ("gh-fleet", plain), ("fleet", plain)):
        write_atomic(d / name, _script(body), mode=0o755)
    return d


def session_path(state_dir: Path, env: Mapping[str, str]) -> str:
    """PATH for the session: the wrappers first, then the runner's own PATH."""
    d = write_bin(state_dir, env)
    rest = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != str(d)]
    return os.pathsep.join([str(d), *rest])
