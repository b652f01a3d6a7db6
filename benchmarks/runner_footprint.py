"""Runner memory (RSS) and the time `gh fleet start --all` takes for 20 agents.

Each runner is a real detached process (local backend) with its MCP channel server, the bundled
inbox plugin and a tiny session program in a PTY. RSS is read from /proc for the runner alone
(its session is a separate process). Goal: runner RSS < 100 MB.

    .venv/bin/python benchmarks/runner_footprint.py [--agents 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # fleetkit imports tests.*
from fleetkit import make_fleet, run_cli

FIGURE = r"runner RSS +[\d.]+"  # the figure the test suite looks for


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="2 agents (the test suite)")
    args = ap.parse_args()
    if args.quick:
        args.agents = 2
    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp) / "fleet")
        names = [f"agent-{i:02d}" for i in range(args.agents)]
        for n in names:
            fleet.echo_agent(n)
        t0 = time.monotonic()
        rc, _out, err = run_cli(fleet, "start", "--all")
        took = time.monotonic() - t0
        try:
            assert rc == 0, err
            st = {n: json.loads(fleet.paths.runner_status(n).read_text()) for n in names}
            # Let start-up garbage settle, then measure steady state after a few deliveries.
            for n in names:
                run_cli(fleet, "tell", n, "hello")
            time.sleep(2)
            rss = [rss_mb(s["pid"]) for s in st.values()]
            session_rss = [rss_mb(s["session_pid"]) for s in st.values()]
        finally:
            t1 = time.monotonic()
            run_cli(fleet, "stop", "--all")
            stop_took = time.monotonic() - t1
        print(f"agents: {args.agents}")
        print(
            f"start --all (until every session is up): {took:.2f}s "
            f"({took / args.agents * 1000:.0f} ms/agent)"
        )
        print(f"stop --all: {stop_took:.2f}s")
        print(f"{'process':<22} {'median MB':>10} {'max MB':>8}   goal")
        print(f"{'runner RSS':<22} {statistics.median(rss):>10.1f} {max(rss):>8.1f}   < 100 MB")
        print(
            f"{'session (echo) RSS':<22} {statistics.median(session_rss):>10.1f} "
            f"{max(session_rss):>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
