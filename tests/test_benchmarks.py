"""Every script in benchmarks/ runs (with `--quick`) and prints its figure: a broken benchmark
fails the suite. Scripts are found by glob, so a new benchmark is covered the day it lands.

The convention (benchmarks/README.md): `python benchmarks/<name>.py --quick` exits 0 within a
few seconds and prints the figure its module-level `FIGURE` regex names (a script without a
`FIGURE` must at least print a number); exit 77 means it cannot run on this machine (no sshd,
…) and is a skip. The scripts run side by side, a few at a time.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 240.0
SKIPPED = 77  # a script that cannot run here (no sshd, …) exits with this


def figure_of(script: Path) -> str | None:
    """The script's `FIGURE = r"…"` (read without importing it)."""
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "FIGURE" for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    return None


def _run(script: Path) -> subprocess.CompletedProcess[str]:
    # From the checkout, as a user would run it; nothing of the test session leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "GH_", "PYTEST"))}
    env.pop("PYTHONPATH", None)
    try:
        return subprocess.run(
            [sys.executable, str(script), "--quick"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(exc.cmd, -9, out, f"timed out after {TIMEOUT:.0f}s")


SLOW_FIRST = ("api_cost.py", "remote.py")  # started first, so the others fill in around them


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    order = sorted(SCRIPTS, key=lambda s: (s.name not in SLOW_FIRST, s.name))
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip([s.name for s in order], pool.map(_run, order), strict=True))
    return done


def test_the_benchmarks_are_found() -> None:
    assert len(SCRIPTS) >= 8
    assert {"api_cost.py", "matching.py"} <= {s.name for s in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_benchmark_runs_quick_and_prints_its_figure(
    script: Path, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    proc = results[script.name]
    if proc.returncode == SKIPPED:
        pytest.skip(f"{script.name}: {proc.stdout.strip() or 'cannot run on this machine'}")
    assert proc.returncode == 0, f"{script.name} --quick: exit {proc.returncode}\n{proc.stderr}"
    pattern = figure_of(script)
    if pattern is None:
        assert re.search(r"\d", proc.stdout), f"{script.name} printed no figure:\n{proc.stdout}"
    else:
        assert re.search(pattern, proc.stdout), (
            f"{script.name} did not print its FIGURE {pattern!r}:\n{proc.stdout}"
        )


def test_api_cost_idle_is_free(results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    # Its idle scenario: a fleet on repos with 100+ runs and long jobs costs no point when idle.
    out = results["api_cost.py"].stdout
    assert re.search(r"^idle: 0 rate-limit points", out, re.M), out
