"""CLI start-up: wall time of `gh-fleet --help` and `gh-fleet list --json` on a 50-agent fleet,
next to `git --version` in the same run. Goal: under 150 ms warm.

    .venv/bin/python benchmarks/cli_startup.py [-n 15] [--agents 50] [--quick]

Each command runs once to warm the caches (page cache, .pyc files), then N times; the median and
the best of N are reported. The fleet is generated in a temp dir and deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LAUNCHER = PROJECT / "gh-fleet"
FIGURE = r"gh-fleet --help +[\d.]+ms"  # the figure the test suite looks for

GOAL_MS = 150.0


def make_fleet(root: Path, agents: int) -> None:
    fleet = root / ".fleet"
    (fleet / "agents").mkdir(parents=True)
    (fleet / "fleet.toml").write_text('[fleet]\nname = "bench"\n\n[defaults]\nmodel = "sonnet"\n')
    (fleet / ".gitignore").write_text("state/\n")
    routes = []
    for i in range(agents):
        name = f"agent-{i:02d}"
        role = ("coder", "reviewer", "manager")[i % 3]
        d = fleet / "agents" / name
        d.mkdir()
        (d / "agent.toml").write_text(
            f'name = "{name}"\nrole = "{role}"\nrepo = "acme/repo{i % 7}"\nport = {8801 + i}\n'
            'plugins = ["inbox"]\n\n[runtime]\nbackend = "local"\n'
        )
        (d / "CLAUDE.md").write_text(f"# {name}\n")
        routes.append(
            f'# route for {name}\n[[watch]]\nname = "w{i}"\nkind = "issues"\n'
            f'repo = "acme/repo{i % 7}"\nfilter = "--label a{i}"\n\n'
            f'[[route]]\nto = ["{name}"]\n[route.match]\nwatch = "w{i}"\n'
        )
    (fleet / "routes.toml").write_text("\n".join(routes))
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def measure(cmd: list[str], cwd: Path, env: dict[str, str], n: int) -> tuple[float, float]:
    """(median, best) wall time in ms over n runs, after one warm-up run."""
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs per command (default 15)")
    ap.add_argument("--agents", type=int, default=50, help="agents in the fleet (default 50)")
    ap.add_argument("--quick", action="store_true", help="2 runs, 5 agents (the test suite)")
    opts = ap.parse_args()
    if opts.quick:
        opts.n, opts.agents = 2, 5
    env = {k: v for k, v in os.environ.items() if k not in ("FLEET_ROOT", "FLEET_DEBUG")}
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        root = Path(tmp)
        make_fleet(root, opts.agents)
        listed = subprocess.run(
            [str(LAUNCHER), "list", "--json"], cwd=root, env=env, capture_output=True, text=True
        )
        if listed.returncode != 0:
            print(f"gh-fleet list failed: {listed.stderr.strip()}", file=sys.stderr)
            return 1
        rows = [
            ("git --version", measure(["git", "--version"], root, env, opts.n)),
            ("gh-fleet --help", measure([str(LAUNCHER), "--help"], root, env, opts.n)),
            (
                f"gh-fleet list --json ({opts.agents} agents)",
                measure([str(LAUNCHER), "list", "--json"], root, env, opts.n),
            ),
        ]
    git_ms = rows[0][1][0]
    width = max(len(r[0]) for r in rows)
    print(f"CLI start-up, warm, median of {opts.n} (goal < {GOAL_MS:.0f} ms)\n")
    print(f"{'command':<{width}}  {'median':>9}  {'best':>9}  {'× git':>7}  goal")
    for label, (med, best) in rows:
        ok = "" if label.startswith("git") else ("✓" if med < GOAL_MS else "✗")
        print(f"{label:<{width}}  {med:7.1f}ms  {best:7.1f}ms  {med / git_ms:6.1f}×  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
