"""Latency from `tell` (the inbox append) to the session write, vs a 2 s polling tail.

A real detached runner (local backend) drives a session program in a real PTY. The program puts
its terminal in raw mode and stamps the arrival of each event's first byte, so the figure is
append -> bytes in the session, without the Enter delay of the typed path. A 2 s stat-polling
tail (the seed's design) watches the same inbox file in the same run for the baseline.

    .venv/bin/python benchmarks/delivery_latency.py [--events 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # fleetkit imports tests.*
from fleetkit import make_fleet, run_cli, wait_until

from relayfleet.backends.transports import transport_for
from relayfleet.cli.commands.tell import operator_event
from relayfleet.fleet.load import load_fleet

FIGURE = r"inotify runner \(append->session\) +[\d.]+"  # the figure the test suite looks for

SESSION = r"""
import os, re, sys, time, tty, json
tty.setraw(0)
out = open(sys.argv[1], "a")
buf = b""
seen = set()
while True:
    data = os.read(0, 65536)
    now = time.time()
    if not data:
        break
    buf = (buf + data)[-256:]
    for m in re.finditer(rb"bench-(\d+)", buf):
        i = int(m.group(1))
        if i not in seen:
            seen.add(i)
            out.write(json.dumps({"i": i, "t": now}) + "\n")
            out.flush()
"""


def poll_baseline(inbox: Path, stop: threading.Event, found: dict[int, float]) -> None:
    """The seed's way: stat the inbox every 2 s and read what was appended."""
    offset = 0
    while not stop.is_set():
        try:
            size = inbox.stat().st_size
        except FileNotFoundError:
            size = 0
        if size > offset:
            with open(inbox, "rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            now = time.time()
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].splitlines():
                body = json.loads(line)["body"]
                found.setdefault(int(body.rsplit("bench-", 1)[1]), now)
            offset += end
        stop.wait(2.0)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument(
        "--gap-ms",
        default="100,300",
        help="random spacing between tells (min,max); a typed delivery takes ~55 ms "
        "(paste, Enter delay), so gaps below that measure queueing, not latency",
    )
    ap.add_argument("--burst", type=int, default=50, help="then append this many at once")
    ap.add_argument("--quick", action="store_true", help="10 events, a burst of 5 (test suite)")
    args = ap.parse_args()
    if args.quick:
        args.events, args.burst, args.gap_ms = 10, 5, "60,80"
    lo, hi = (float(x) for x in args.gap_ms.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp) / "fleet")
        script = fleet.root / "session.py"
        script.write_text(SESSION)
        arrivals = fleet.root / "arrivals.jsonl"
        fleet.add_agent("bench", [sys.executable, str(script), str(arrivals)])
        rc, _out, err = run_cli(fleet, "start", "bench")
        assert rc == 0, err
        paths = fleet.paths
        model = load_fleet(paths)
        transport = transport_for(paths, model, "bench")
        sent: dict[int, float] = {}
        polled: dict[int, float] = {}
        stop = threading.Event()
        poller = threading.Thread(target=poll_baseline, args=(paths.inbox("bench"), stop, polled))
        poller.start()
        try:
            for i in range(args.events):
                ev = operator_event(f"bench-{i}")
                t0 = time.time()
                transport.append("bench", ev)
                sent[i] = t0
                time.sleep(random.uniform(lo / 1000, hi / 1000))

            def got() -> dict[int, float]:
                try:
                    rows = [json.loads(x) for x in arrivals.read_text().splitlines()]
                except FileNotFoundError:
                    rows = []
                return {r["i"]: r["t"] for r in rows}

            wait_until(lambda: len(got()) >= args.events, timeout=60)
            wait_until(lambda: len(polled) >= args.events, timeout=10)
            # Burst: many events at once (a router cycle fanning out): drain throughput.
            t_burst = time.time()
            for j in range(args.burst):
                transport.append("bench", operator_event(f"bench-{args.events + j}"))
            wait_until(lambda: len(got()) >= args.events + args.burst, timeout=120)
            burst_s = max(got().values()) - t_burst
        finally:
            stop.set()
            poller.join()
            st = json.loads(paths.runner_status("bench").read_text())
            run_cli(fleet, "stop", "bench")
        arrived = {i: t for i, t in got().items() if i < args.events}
        lat = [(arrived[i] - sent[i]) * 1000 for i in sent]
        base = [(polled[i] - sent[i]) * 1000 for i in sent]
        print(f"events: {len(lat)} (runner pid {st['pid']}, delivery {st['delivery']})")
        print(f"{'path':<34} {'median ms':>10} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9}")
        for name, xs in (("inotify runner (append->session)", lat), ("2 s polling baseline", base)):
            print(
                f"{name:<34} {statistics.median(xs):>10.2f} {pct(xs, 90):>9.2f} "
                f"{pct(xs, 99):>9.2f} {max(xs):>9.2f}"
            )
        print(f"order kept: {sorted(arrived, key=arrived.get) == sorted(arrived)}")
        print(
            f"burst: {args.burst} events appended at once reached the session in {burst_s:.2f}s "
            f"({args.burst / burst_s:.0f} events/s, typed path)"
        )
        print(f"cpus: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
