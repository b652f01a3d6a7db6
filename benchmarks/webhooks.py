"""Webhooks against polling, in the same run.

1. Latency: a real router process (`router run`, `[webhook]` on) against the fake GitHub on
   loopback. For each event an issue is opened in the fake and its signed `issues` delivery is
   POSTed to the receiver; the figure is POST -> the line appearing in the agent's
   `inbox.jsonl` (seen by inotify). Then the same router with webhooks off: change -> inbox
   line, which waits on the poll (about half a period on average).
2. Rate-limit points per hour for `api_cost.py`'s busy scenario (40 watches on 8 repos, a
   comment every ~20 s), simulated on an injected clock: the naive way (one GraphQL search per
   watch per poll), the poller alone, and the poller with every change also arriving as a
   webhook (healthy webhooks: each stream of a repo is polled every `reconcile_sec`).

    .venv/bin/python benchmarks/webhooks.py [--quick] [--events 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inotify_simple import INotify, flags

from benchmarks.api_cost import CADENCE, HOUR, IDLE_MAX, REPOS, fleet_watches, simulate
from relayfleet.fakes.github import FakeGitHub, ManualClock
from relayfleet.fakes.github_hooks import hook_payload, post_hook
from tests.ports import free_port
from tests.router.helpers import config, deliver_hook, make_rig, route, watch, write_fleet
from tests.router.process import Router, enable_webhooks
from tests.waiting import wait_until

SECRET = "bench-webhook-secret"
REPO = "acme/wms"


# -- 1. latency --------------------------------------------------------------------------------
class InboxClock(threading.Thread):
    """Stamps each new inbox line (by issue number) the moment inotify reports the write."""

    def __init__(self, inbox: Path) -> None:
        super().__init__(daemon=True)
        self.inbox = inbox
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        inbox.parent.mkdir(parents=True, exist_ok=True)
        self.ino = INotify()
        self.ino.add_watch(str(inbox.parent), flags.MODIFY | flags.CREATE)
        self.offset = 0

    def _scan(self, now: float) -> None:
        try:
            with open(self.inbox, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            n = json.loads(line).get("metadata", {}).get("number")
            if isinstance(n, int):
                self.seen.setdefault(n, now)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.ino.read(timeout=100):
                self._scan(time.time())


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def latency(events: int, poll_events: int, poll_sec: int) -> dict[str, Any]:
    with FakeGitHub() as fake, tempfile.TemporaryDirectory() as tmp:
        fake.add_repo(REPO)
        root = Path(tmp)
        paths = write_fleet(root, ["coder"], [watch("wms", "issues", REPO, "", poll_sec)],
                            [route(1, "coder", watch="wms")])  # fmt: skip
        base_toml = paths.fleet_toml.read_text()
        enable_webhooks(paths, free_port())
        clock = InboxClock(paths.inbox("coder"))
        clock.start()
        router = Router(root, fake, SECRET, min_period=poll_sec)
        hook: list[float] = []
        acked: list[float] = []  # POST -> 200 (the delivery is durable in the spool)
        try:
            wait_until(router.cycled, timeout=60)
            for i in range(events):
                n = fake.open_issue(REPO, f"webhook {i}", author="alice")
                body = json.dumps(hook_payload(fake, "issues", REPO, n, "opened")).encode()
                t0 = time.time()
                status, _ = post_hook(router.url, SECRET.encode(), "issues", body)
                acked.append(time.time() - t0)
                assert status == 200, status
                wait_until(lambda n=n: n in clock.seen, timeout=30, step=0.001)
                hook.append(clock.seen[n] - t0)
        finally:
            router.stop(timeout=60)
        # The same fleet, webhooks off: the poll is the only way in.
        paths.fleet_toml.write_text(base_toml)
        router = Router(root, fake, SECRET, min_period=poll_sec)
        polled: list[float] = []
        rng = random.Random(5)
        try:
            time.sleep(poll_sec)  # past the first cycles (the snapshot) before measuring
            for i in range(poll_events):
                time.sleep(rng.uniform(0, poll_sec))  # changes arrive at random phases
                t0 = time.time()
                n = fake.open_issue(REPO, f"polled {i}", author="alice")
                wait_until(lambda n=n: n in clock.seen, timeout=poll_sec * 6 + 30, step=0.005)
                polled.append(clock.seen[n] - t0)
        finally:
            router.stop(timeout=60)
            clock.stop.set()
        return {"hook": hook, "acked": acked, "polled": polled}


# -- 2. rate-limit points ----------------------------------------------------------------------
def simulate_with_webhooks(change_every: float, hours: float, reconcile: int) -> dict[str, Any]:
    """`api_cost.simulate`'s loop, with every change also delivered as a webhook. Counting starts
    after a warm-up of one `reconcile` period, by which every stream has left its first slot
    (phased at random within a period) behind: the figure is the steady state."""
    clock = ManualClock()
    rng = random.Random(3)
    with FakeGitHub(clock=clock, poll_interval=60) as fake, tempfile.TemporaryDirectory() as tmp:
        for r in REPOS:
            fake.add_repo(r)
            for i in range(20):
                fake.open_issue(r, f"issue {i}")
            fake.add_run(r, "CI", status="completed", conclusion="success")
        cfg = config(fleet_watches(), [route(1, "agent", repo=r) for r in REPOS], ["agent"])
        rig = make_rig(Path(tmp), fake, clock)
        poller = rig.poller()
        poller.min_period = 10
        poller.schedule = replace(poller.schedule, rng=random.Random(7).random)
        poller.reconcile_sec = reconcile
        poller.run_once(cfg)  # snapshot, not counted
        fake.reset_log()
        last_hook: dict[str, float] = {r: clock() for r in REPOS}  # the webhook was just pinged
        counted_from = clock() + reconcile
        end = counted_from + HOUR * hours
        next_change = clock() + rng.expovariate(1 / change_every)
        changes, before, counting = 0, 0, False
        while True:
            now = clock()
            if not counting and now >= counted_from:
                fake.reset_log()
                changes, before, counting = 0, len(rig.inbox("agent")), True
            poller.reconcile_repos = {r for r, t in last_hook.items() if now - t <= reconcile}
            wake = now + max(0.1, min(IDLE_MAX, poller.seconds_until_due(cfg, now)))
            while next_change <= min(wake, end):
                clock.advance(next_change - clock())
                repo = rng.choice(REPOS)
                n = rng.randint(1, 20)
                fake.comment(repo, n, "alice", "NONE", "ping")
                deliver_hook(poller, cfg, fake, "issue_comment", repo, n, "created")
                last_hook[repo] = clock()
                changes += 1
                next_change += rng.expovariate(1 / change_every)
            if wake > end:
                break
            clock.advance(wake - clock())
            poller.run_once(cfg)
        return {
            "requests": len(fake.requests) / hours,
            "not_modified": fake.count(status=304) / hours,
            "points": fake.count(status=200) / hours,
            "changes": changes,
            "delivered": len(rig.inbox("agent")) - before,
            "by_stream": _points_by_kind(fake, hours),
        }


def _points_by_kind(fake: FakeGitHub, hours: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in fake.requests:
        if r.status != 200:
            continue
        kind = "notifications" if r.path.startswith("/notifications") else r.path.split("/")[-1]
        out[kind] = out.get(kind, 0) + 1 / hours
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = "20 webhooks, 4 polled changes at a 2 s period, a quarter simulated hour"
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--events", type=int, default=0, help="webhook deliveries to time")
    args = ap.parse_args()
    events = args.events or (20 if args.quick else 200)
    poll_events, poll_sec = (4, 2) if args.quick else (20, 10)
    hours = 0.25 if args.quick else 1.0

    print(f"1. latency: change -> inbox append, real router process, fake GitHub on loopback "
          f"({events} webhooks; {poll_events} polled changes at poll_sec={poll_sec})")  # fmt: skip
    lat = latency(events, poll_events, poll_sec)
    h, p = lat["hook"], lat["polled"]
    print(f"{'way':<34}{'n':>5}{'median':>12}{'p99':>12}{'max':>12}")
    for label, xs in (("webhook (POST -> 200, durable)", lat["acked"]),
                      ("webhook (POST -> inbox append)", h)):  # fmt: skip
        print(f"{label:<34}{len(xs):>5}{statistics.median(xs) * 1000:>10.1f}ms"
              f"{pct(xs, 0.99) * 1000:>10.1f}ms{max(xs) * 1000:>10.1f}ms")  # fmt: skip
    print(f"{f'polling every {poll_sec}s (change -> append)':<34}{len(p):>5}"
          f"{statistics.median(p) * 1000:>10.0f}ms{pct(p, 0.99) * 1000:>10.0f}ms"
          f"{max(p) * 1000:>10.0f}ms")  # fmt: skip
    half = poll_sec / 2
    faster = statistics.median(p) / statistics.median(h)
    print(f"half a poll period: {half * 1000:.0f} ms at {poll_sec} s, 5000-15000 ms at the usual "
          f"10-30 s; the webhook median is {faster:.0f}x below polling's here\n")  # fmt: skip

    naive = 40 * (HOUR // CADENCE)
    print(f"2. rate-limit points per hour, busy scenario of api_cost.py (40 watches, 8 repos, "
          f"a change every ~20 s), {hours:g} simulated hour(s) scaled to 1 h")  # fmt: skip
    polled = simulate(20)
    print(f"{'way':<40}{'requests/h':>12}{'304s/h':>9}{'points/h':>10}{'vs naive':>10}"
          f"{'delivered':>11}")  # fmt: skip
    print(f"{'naive (GraphQL search per watch)':<40}{naive:>12}{0:>9}{naive:>10}{'1x':>10}"
          f"{'-':>11}")  # fmt: skip
    print(f"{'polling (router alone)':<40}{polled['requests']:>12}{polled['not_modified']:>9}"
          f"{polled['points']:>10}{naive / max(1, polled['points']):>9.0f}x"
          f"{polled['delivered']:>6}/{polled['changes']}")  # fmt: skip
    for reconcile in (600, 3600, 7200) if not args.quick else (600,):
        got = simulate_with_webhooks(20, hours, reconcile)
        ratio = naive / got["points"] if got["points"] else float("inf")
        label = f"webhooks + reconcile every {reconcile}s"
        done = f"{got['delivered']:>6}/{got['changes']}"
        print(f"{label:<40}{got['requests']:>12.0f}{got['not_modified']:>9.0f}"
              f"{got['points']:>10.0f}{ratio:>9.0f}x{done}")  # fmt: skip
        split = ", ".join(f"{k} {v:.0f}" for k, v in sorted(got["by_stream"].items()))
        print(f"{'':<40}points by endpoint: {split or 'none'}")
    cap = naive / 1000
    print(f"1,000x leaves {cap:.1f} points/h for the whole fleet: with {len(REPOS)} repos that "
          f"each change within any\nreconciliation window, at most one reconciliation per repo "
          f"every {len(REPOS) * HOUR / cap:.0f} s.")  # fmt: skip
    print("\npoints: a 200 costs 1, a conditional 304 costs 0. With webhooks, the points left are")
    print("reconciliation polls of issue lists that changed since the last poll (a changed list")
    print("cannot be a 304); quiet repos and run lists reconcile for free.")


if __name__ == "__main__":
    main()
