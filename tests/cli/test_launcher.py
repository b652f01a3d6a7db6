"""The `gh-fleet` launcher's venv bookkeeping, with a stand-in python that records its calls."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import PROJECT

FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
"""


def launch(checkout: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GH_FLEET_VENV": str(venv)}
    return subprocess.run(
        [str(checkout / "gh-fleet"), "list"], env=env, capture_output=True, text=True, timeout=30
    )


def test_a_moved_checkout_reinstalls_into_its_venv(tmp_path: Path) -> None:
    first = tmp_path / "relayfleet"
    first.mkdir()
    shutil.copy(PROJECT / "gh-fleet", first / "gh-fleet")
    shutil.copy(PROJECT / "pyproject.toml", first / "pyproject.toml")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PYTHON)
    (venv / "bin" / "python").chmod(0o755)
    calls = venv / "bin" / "calls"

    assert launch(first, venv).returncode == 0
    assert "pip install" in calls.read_text()  # first run: installs
    calls.unlink()
    assert launch(first, venv).returncode == 0
    assert calls.read_text() == "-m relayfleet list\n"  # second run: straight in

    moved = tmp_path / "gh-fleet"  # what `gh extension install .` wants the directory called
    first.rename(moved)
    calls.unlink()
    proc = launch(moved, venv)

    assert proc.returncode == 0, proc.stderr
    assert f"-e {moved}" in calls.read_text()  # the editable install follows the checkout
    assert "setting up" in proc.stderr
