"""Config commands on a large fleet: 200 agents, 1,000 watches and 1,000 routes.

    .venv/bin/python benchmarks/config_scale.py [--agents 200] [--watches 1000] [--routes 1000]
                                                [--findings] [-n 3] [--commands validate,route]

Builds the fleet in a temp git repo (committed), then times each config command (wall, and the
child's CPU, which other load on the machine does not inflate) as a real
`python -m relayfleet` process (median of N after one warm-up), printed next to `git status` on
the same repository so the figures travel between machines as ratios. `--findings` gives every
watch `poll_sec = 30` (a warning each: the worst case for locating lines). Mutating commands run
against a fresh copy of the repo each time so every run does the same work.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
GOAL_S = 2.0

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def make_fleet(root: Path, agents: int, watches: int, routes: int, findings: bool) -> None:
    fleet = root / ".fleet"
    (fleet / "agents").mkdir(parents=True)
    (fleet / "plugins").mkdir()
    (fleet / "plugins" / ".gitkeep").write_text("")
    (fleet / "fleet.toml").write_text(
        '[fleet]\nname = "bench"\n\n[defaults]\nmodel = "sonnet"\n\n'
        '[hosts.vm]\nbackend = "ssh"\nhost = "me@10.0.0.5"\n'
    )
    (fleet / ".gitignore").write_text("state/\n")
    for i in range(agents):
        name = f"agent-{i:03d}"
        d = fleet / "agents" / name
        d.mkdir()
        (d / "agent.toml").write_text(
            f'name = "{name}"\nrole = "coder"\nrepo = "acme/repo{i % 40}"\nmodel = "sonnet"\n'
            f'port = {8801 + i}\nplugins = ["inbox"]\n\n[runtime]\nbackend = "local"\n\n'
            '[claude]\nengine = "command"\ncommand = ["sleep", "1000"]\n'
        )
        (d / "CLAUDE.md").write_text(f"# {name}\n")
    poll = 30 if findings else 240
    parts = ["# the gate of a large fleet\n"]
    for i in range(watches):
        parts.append(
            f'# watch {i}\n[[watch]]\nname = "w{i}"\nkind = "issues"\nrepo = "acme/repo{i % 40}"\n'
            f'filter = "--label a{i} --state open"\npoll_sec = {poll}\n'
        )
    for i in range(routes):
        parts.append(
            f'[[route]]\nto = ["agent-{i % agents:03d}"]\n[route.match]\nwatch = "w{i % watches}"\n'
            'association = ["OWNER", "MEMBER"]\n'
        )
    (fleet / "routes.toml").write_text("\n".join(parts))
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "bench fleet"], cwd=root, check=True, env=env)


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; cpu (user + sys of the child) does not grow when other
    work shares the machine, so it is the figure to compare between runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1) or "internal error" in proc.stderr:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[:400]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


FLEET = [sys.executable, "-m", "relayfleet"]

# (label, argv, mutates)
COMMANDS: list[tuple[str, list[str], bool]] = [
    ("validate", ["validate"], False),
    ("route --json", ["route", "--json"], False),
    (
        "route test",
        ["route", "test", "--repo", "acme/repo3", "--kind", "issues", "--watch", "w3"],
        False,
    ),
    ("list --json", ["list", "--json"], False),
    ("status --json", ["status", "--json"], False),
    ("watch add", ["watch", "add", "wnew", "--kind", "issues", "--repo", "acme/new"], True),
    ("watch remove", ["watch", "remove", "w999", "--prune-routes"], True),
    ("route add", ["route", "add", "--to", "agent-001", "--watch", "w5", "--label", "x"], True),
    ("route remove", ["route", "remove", "500"], True),
    ("host add", ["host", "add", "vm2", "--backend", "ssh", "--host", "me@10.0.0.6"], True),
    ("new-agent", ["new-agent", "zz-new", "--role", "coder", "--repo", "acme/new"], True),
    ("remove-agent", ["remove-agent", "agent-199", "--prune-routes"], True),
]


def old_line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """The earlier lookup, kept here as the reference: a scan of the whole text per call."""
    from relayfleet.fleet import toml_read

    toml_read._line_index.cache_clear()
    return toml_read.line_of(text, path)


def side_by_side(root: Path) -> None:
    """The two paths this fleet used to be slow on, old and new, in this process."""
    import tomlkit

    from relayfleet.fleet import toml_read, toml_splice
    from relayfleet.fleet.toml_io import aot_append, dump_doc, parse_doc

    text = (root / ".fleet" / "routes.toml").read_text()
    wanted = [("watch", i, "poll_sec") for i in range(0, 1000, 10)]  # 100 findings
    t0 = time.perf_counter()
    for p in wanted:
        old_line_of(text, p)
    old = (time.perf_counter() - t0) * 10  # scaled to 1,000 findings
    toml_read._line_index.cache_clear()
    t0 = time.perf_counter()
    for p in wanted * 10:
        toml_read.line_of(text, p)
    new = time.perf_counter() - t0
    print(
        f"{'line_of x1000':<16}{new:>10.3f}   old (rescan per finding) {old:8.3f} s"
        f"   x{old / new:,.0f}"
    )

    def table() -> tomlkit.items.Table:  # a fresh one per edit: an appended table is adopted
        t = tomlkit.table()
        t.update({"name": "wx", "kind": "issues", "repo": "acme/x"})
        return t

    t0 = time.perf_counter()
    doc = parse_doc(text, "routes.toml")
    aot_append(doc, "watch", table())
    whole = dump_doc(doc)
    old = time.perf_counter() - t0
    t0 = time.perf_counter()
    spliced = toml_splice.append(text, "routes.toml", "watch", table())
    new = time.perf_counter() - t0
    assert spliced == whole, "splice and whole-document edits differ"
    print(
        f"{'append a watch':<16}{new:>10.3f}   old (whole document)     {old:8.3f} s"
        f"   x{old / new:,.0f}"
    )


FIGURE = r"slowest: [\d.]+ s"  # the figure the test suite looks for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--watches", type=int, default=1000)
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--findings", action="store_true", help="poll_sec = 30 on every watch")
    ap.add_argument("-n", type=int, default=3, help="runs per command (median)")
    ap.add_argument("--commands", default="", help="comma-separated labels to run (default all)")
    ap.add_argument(
        "--quick", action="store_true", help="20 agents, 100 watches and routes, one run each"
    )
    opts = ap.parse_args()
    if opts.quick:
        opts.agents, opts.watches, opts.routes, opts.n = 20, 100, 100, 1
    wanted = {c.strip() for c in opts.commands.split(",") if c.strip()}
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(PROJECT)}
    env.pop("FLEET_ROOT", None)
    with tempfile.TemporaryDirectory(prefix="fleet-scale-") as tmp:
        base = Path(tmp) / "base"
        make_fleet(base, opts.agents, opts.watches, opts.routes, opts.findings)
        lines = (base / ".fleet" / "routes.toml").read_text().count("\n")
        git_status = statistics.median(
            run(["git", "status", "--porcelain"], base, env)[0] for _ in range(max(3, opts.n))
        )
        print(
            f"fleet: {opts.agents} agents, {opts.watches} watches, {opts.routes} routes "
            f"(routes.toml {lines} lines), findings on every watch: {opts.findings}"
        )
        print(
            f"{'command':<16}{'median s':>10}{'cpu s':>8}{'x git status':>14}"
            f"   goal < {GOAL_S:.0f} s"
        )
        print(f"{'git status':<16}{git_status:>10.3f}{'':>8}{1.0:>14.1f}")
        worst = 0.0
        for label, argv, mutates in COMMANDS:
            if wanted and label not in wanted:
                continue
            times, cpus = [], []
            for i in range(opts.n + 1):
                cwd = base
                if mutates:
                    cwd = Path(tmp) / f"copy-{label.replace(' ', '-')}-{i}"
                    shutil.copytree(base, cwd, symlinks=True)
                t, cpu = run([*FLEET, *argv], cwd, env)
                if i:  # the first run warms the page cache and .pyc files
                    times.append(t)
                    cpus.append(cpu)
                if mutates:
                    shutil.rmtree(cwd)
            med, cpu = statistics.median(times), statistics.median(cpus)
            worst = max(worst, med)
            mark = "" if med < GOAL_S else "  OVER"
            print(f"{label:<16}{med:>10.3f}{cpu:>8.3f}{med / git_status:>14.1f}{mark}")
        print(f"slowest: {worst:.3f} s ({'within' if worst < GOAL_S else 'over'} the goal)")
        print()
        print("in-process, old path next to new (same text):")
        sys.path.insert(0, str(PROJECT))
        side_by_side(base)


if __name__ == "__main__":
    main()
