"""Latency from `tell` (the inbox append) to the session write, vs a 2 s polling tail.

Real detached runners (local backend) drive session programs in real PTYs, side by side in one
run, each told the same events:

- `bench` (command engine): a program that puts its terminal in raw mode and stamps the arrival
  of each event's first byte;
- `typed` (claude engine, fake `claude` without channels): the typed path with the neutraliser
  on, typed only into the idle prompt and confirmed on screen; the fake stamps each terminal read;
- `chan` (claude engine, fake `claude` with channels): the channel path; the fake stamps each
  `notifications/claude/channel` on arrival.

The figure is append -> bytes (or notification) in the session, without the Enter delay of the
typed path. A 2 s stat-polling tail (the seed's design) watches the same inbox file in the same
run for the baseline.

    .venv/bin/python benchmarks/delivery_latency.py [--events 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # fleetkit: tests.waiting
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cli"))
from fleetkit import make_fleet, run_cli, wait_until

from relayfleet.backends.transports import transport_for
from relayfleet.cli.commands.tell import operator_event
from relayfleet.fleet.load import load_fleet

FIGURE = (
    r"claude engine, typed \+ neutraliser \(->PTY\) +[\d.]+"  # the figure the test suite looks for
)

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


FAKE = [sys.executable, "-m", "relayfleet.fakes.fake_claude"]


def stamped(path: Path) -> dict[int, float]:
    """{event number: first arrival} from a fake claude's `--fake-input-stamps` file."""
    found: dict[int, float] = {}
    try:
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except FileNotFoundError:
        return found
    for r in rows:
        for m in re.finditer(r"bench-(\d+)", r["data"]):
            found.setdefault(int(m.group(1)), r["t"])
    return found


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument(
        "--gap-ms",
        default="350,550",
        help="random spacing between tells (min,max); a confirmed typed delivery into a "
        "claude session takes ~300 ms (paste shown, Enter delay, submit seen, the turn), so "
        "gaps below that measure queueing, not latency",
    )
    ap.add_argument("--burst", type=int, default=50, help="then append this many at once")
    ap.add_argument("--quick", action="store_true", help="10 events, a burst of 5 (test suite)")
    args = ap.parse_args()
    if args.quick:
        args.events, args.burst, args.gap_ms = 10, 5, "350,450"
    lo, hi = (float(x) for x in args.gap_ms.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp) / "fleet")
        script = fleet.root / "session.py"
        script.write_text(SESSION)
        arrivals = fleet.root / "arrivals.jsonl"
        fleet.add_agent("bench", [sys.executable, str(script), str(arrivals)])
        stamps = {a: fleet.root / f"{a}.stamps.jsonl" for a in ("typed", "chan")}
        fleet.add_agent(
            "typed",
            [*FAKE, "--fake-no-channels", "--fake-input-stamps", str(stamps["typed"])],
            engine="claude",
        )
        fleet.add_agent(
            "chan", [*FAKE, "--fake-input-stamps", str(stamps["chan"])], engine="claude"
        )
        for agent in ("bench", "typed", "chan"):
            rc, _out, err = run_cli(fleet, "start", agent)
            assert rc == 0, err
        paths = fleet.paths
        model = load_fleet(paths)
        transport = transport_for(paths, model, "bench")
        others = {a: transport_for(paths, model, a) for a in ("typed", "chan")}

        def ready(agent: str) -> bool:
            try:
                st = json.loads(paths.runner_status(agent).read_text())
            except (FileNotFoundError, ValueError):
                return False
            return st.get("session") == "up"

        wait_until(lambda: ready("typed") and ready("chan"), timeout=60)
        want = {"typed": "pty", "chan": "channel"}
        for agent, path in want.items():
            got_path = json.loads(paths.runner_status(agent).read_text())["delivery"]
            assert got_path == path, f"{agent} delivers via {got_path}, not {path}"
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
                for agent, tr in others.items():
                    tr.append(agent, ev)
                sent[i] = t0
                time.sleep(random.uniform(lo / 1000, hi / 1000))

            def got() -> dict[int, float]:
                try:
                    rows = [json.loads(x) for x in arrivals.read_text().splitlines()]
                except FileNotFoundError:
                    rows = []
                return {r["i"]: r["t"] for r in rows}

            wait_until(lambda: len(got()) >= args.events, timeout=60)
            for agent in others:
                wait_until(lambda a=agent: len(stamped(stamps[a])) >= args.events, timeout=120)
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
            for agent in ("bench", "typed", "chan"):
                run_cli(fleet, "stop", agent)
        arrived = {i: t for i, t in got().items() if i < args.events}
        lat = [(arrived[i] - sent[i]) * 1000 for i in sent]
        base = [(polled[i] - sent[i]) * 1000 for i in sent]
        typed_at, chan_at = stamped(stamps["typed"]), stamped(stamps["chan"])
        typed = [(typed_at[i] - sent[i]) * 1000 for i in sent]
        chan = [(chan_at[i] - sent[i]) * 1000 for i in sent]
        print(f"events: {len(lat)} (runner pid {st['pid']}, delivery {st['delivery']})")
        print(f"{'path':<44} {'median ms':>10} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9}")
        rows = (
            ("command engine, typed (append->session)", lat),
            ("claude engine, typed + neutraliser (->PTY)", typed),
            ("claude engine, channel (->notification)", chan),
            ("2 s polling baseline", base),
        )
        for name, xs in rows:
            print(
                f"{name:<44} {statistics.median(xs):>10.2f} {pct(xs, 90):>9.2f} "
                f"{pct(xs, 99):>9.2f} {max(xs):>9.2f}"
            )
        verdict = "under" if statistics.median(typed) < 20 else "OVER"
        print(f"typed path with the neutraliser: median {verdict} the 20 ms target")
        print(f"order kept: {sorted(arrived, key=arrived.get) == sorted(arrived)}")
        print(
            f"burst: {args.burst} events appended at once reached the session in {burst_s:.2f}s "
            f"({args.burst / burst_s:.0f} events/s, typed path)"
        )
        print(f"cpus: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
