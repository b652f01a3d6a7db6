"""Workspaces: clone vs worktree for a fleet of agents on one repo, side by side.

A local bare repository (400 files of 4 KiB, 30 commits) stands in for GitHub, through a
file:// URL (so git copies objects as from a network remote, never hard-links them). For 6 agents
it measures, per mode, the time to make every workspace and the bytes on disk they take (the
worktree mode's shared bare clone included), then the cost of the on-event fetch with nothing new
(what a delivery pays when the remote has not moved), and what `status` pays per workspace
next to one plain `git status`.

    python benchmarks/workspaces.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet
from relayfleet.runner import workspace as ws

AGENTS = 6
FILES, COMMITS, SIZE = 400, 30, 4096
FETCHES = 20


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def origin(root: Path) -> None:
    bare = root / "gh" / "acme" / "WMS.git"
    bare.parent.mkdir(parents=True)
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = root / "seed"
    git(root, "clone", "-q", str(bare), str(seed))
    git(seed, "switch", "-q", "-c", "main")
    for c in range(COMMITS):
        for i in range(FILES // COMMITS + 1):
            (seed / f"f{c}_{i}.txt").write_bytes(os.urandom(SIZE // 2).hex().encode())
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", f"c{c}")
    git(seed, "push", "-q", "origin", "main")


def fleet(root: Path, mode: str) -> FleetPaths:
    f = root / mode
    (f / ".fleet").mkdir(parents=True)
    (f / ".fleet" / "fleet.toml").write_text(
        f'[fleet]\nname = "b"\n[github]\nclone_url = "file://{root}/gh/{{repo}}.git"\n'
    )
    for i in range(AGENTS):
        d = f / ".fleet" / "agents" / f"a{i}"
        d.mkdir(parents=True)
        (d / "agent.toml").write_text(
            f'name = "a{i}"\nrole = "coder"\nrepo = "acme/WMS"\nport = {8801 + i}\n'
            f'[workspace]\nmode = "{mode}"\n'
        )
    return FleetPaths(f)


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    for k, v in {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                 "GIT_COMMITTER_EMAIL": "b@b"}.items():  # fmt: skip
        os.environ.setdefault(k, v)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        origin(root)
        rows = {}
        plans: dict[str, list[ws.Plan]] = {}
        for mode in ("clone", "worktree"):
            paths = fleet(root, mode)
            model = load_fleet(paths)
            plans[mode] = [ws.plan(paths, model, a) for a in model.agents.values()]
            t0 = time.perf_counter()
            for p in plans[mode]:
                ws.ensure(p)
            rows[mode] = (time.perf_counter() - t0, disk(paths.state))
        c, w = rows["clone"], rows["worktree"]
        print(f"{AGENTS} agents on one repo ({FILES} files, {COMMITS} commits):")
        print(f"  clone:    made in {c[0]:.2f}s, {c[1] / 1e6:.1f} MB on disk")
        print(f"  worktree: made in {w[0]:.2f}s, {w[1] / 1e6:.1f} MB on disk")
        print(f"  worktree/clone: time {w[0] / c[0]:.2f}x, disk {w[1] / c[1]:.2f}x")
        p = plans["clone"][0]
        t0 = time.perf_counter()
        for _ in range(FETCHES):
            ws.fetch(p)
        fetch = (time.perf_counter() - t0) / FETCHES
        print(f"  on-event fetch with nothing new: {fetch * 1000:.1f} ms per batch (local remote)")
        t0 = time.perf_counter()
        for _ in range(FETCHES):
            ws.inspect(p)
        look = (time.perf_counter() - t0) / FETCHES
        t0 = time.perf_counter()
        for _ in range(FETCHES):
            subprocess.run(["git", "status", "--porcelain"], cwd=p.path, capture_output=True)
        plain = (time.perf_counter() - t0) / FETCHES
        print(
            f"  status's look at one workspace: {look * 1000:.1f} ms"
            f" ({look / plain:.1f}x one `git status --porcelain`)"
        )


if __name__ == "__main__":
    main()
