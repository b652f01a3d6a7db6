"""API cost of the router vs the naive way, over a simulated hour against the fake GitHub.

Fleet: 40 watches over 8 repos, every watch at a 30 s cadence (issues and pulls watches on
every repo, run watches on 2 repos, 5 notification watches, one more issues watch). The clock is
injected, so an hour takes seconds; the loop does what `router run` does (sleep until the next
stream is due, at most 5 s, then poll what is due), with the real jittered schedule, backoff,
idle stretching and budget governor.

Scenarios (the changes are Poisson arrivals: a comment on a random issue of a random repo):
- idle: nothing changes for the whole hour;
- moderate: a change every ~60 s on average across the fleet (~60/h);
- busy: a change every ~20 s on average (~180/h, ~22 per repo per hour): most 30 s polls of a
  repo's issues stream then see something new.
Two changes to one issue within one poll period are one version to any poller, so deliveries can
be slightly fewer than changes.

Naive = what the seed does: one `gh issue list --search …` per watch per poll. gh sends those as
GraphQL search queries (research A4): no ETag, no 304, at least 1 point each; so its cost is
computed (40 watches x 120 polls), not measured against the REST fake.

    python benchmarks/api_cost.py
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.fakes.github import FakeGitHub, ManualClock
from relayfleet.router.schedule import Cadence
from tests.router.helpers import config, make_rig, route, watch

REPOS = [f"acme/repo{i}" for i in range(8)]
CADENCE = 30
HOUR = 3600
IDLE_MAX = 5.0  # router/daemon.py: the loop wakes at least this often
SCENARIOS = (("idle", 0), ("moderate", 60), ("busy", 20))


def fleet_watches() -> list:
    ws = []
    for r in REPOS:  # 8 repos x (2 issues + 2 pulls) = 32
        ws += [
            watch(f"{r}-assigned", "issues", r, "--search assignee:@me --state open", CADENCE),
            watch(f"{r}-open", "issues", r, "--state open", CADENCE),
            watch(f"{r}-prs", "pulls", r, "--state open", CADENCE),
            watch(f"{r}-human", "pulls", r, "--label needs-human", CADENCE),
        ]
    ws += [watch(f"{r}-ci", "runs", r, "--status failure", CADENCE) for r in REPOS[:2]]  # 34
    reasons = ["mention", "review_requested", "assign", "team_mention", "comment"]
    ws += [watch(f"mentions-{i}", "notifications", "", f"--reason {x}", CADENCE)
           for i, x in enumerate(reasons)]  # fmt: skip
    ws += [watch(f"{r}-docs", "issues", r, "--label docs", CADENCE) for r in REPOS[:1]]
    assert len(ws) == 40, len(ws)
    return ws


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def simulate(change_every: float, cadence: Cadence | None = None) -> dict[str, float]:
    clock = ManualClock()
    rng = random.Random(3)
    with FakeGitHub(clock=clock, poll_interval=60) as fake, tempfile.TemporaryDirectory() as tmp:
        for r in REPOS:
            fake.add_repo(r)
            for i in range(20):
                fake.open_issue(r, f"issue {i}")
            fake.add_run(r, "CI", status="completed", conclusion="success")
        ws = fleet_watches()
        cfg = config(ws, [route(1, "agent", repo=r) for r in REPOS], ["agent"])
        rig = make_rig(Path(tmp), fake, clock)
        poller = rig.poller()
        poller.min_period = 10
        poller.schedule = replace(poller.schedule, rng=random.Random(7).random)
        if cadence is not None:
            poller.schedule.cadence = cadence
        poller.run_once(cfg)  # snapshot, not counted
        fake.reset_log()
        end = clock() + HOUR
        next_change = clock() + rng.expovariate(1 / change_every) if change_every else end + 1
        changes = 0
        while True:
            wake = clock() + max(0.1, min(IDLE_MAX, poller.seconds_until_due(cfg, clock())))
            while next_change <= min(wake, end):
                clock.advance(next_change - clock())
                fake.comment(rng.choice(REPOS), rng.randint(1, 20), "alice", "ping")
                changes += 1
                next_change += rng.expovariate(1 / change_every)
            if wake > end:
                break
            clock.advance(wake - clock())
            poller.run_once(cfg)
        events = rig.inbox("agent")
        latency = [_ts(e["ts"]) - _ts(e["metadata"]["updated_at"]) for e in events]
        return {
            "requests": len(fake.requests),
            "not_modified": fake.count(status=304),
            # A 200 costs a primary rate-limit point; a conditional 304 does not (research A1).
            "points": fake.count(status=200),
            "changes": changes,
            "delivered": len(events),
            "latency_p50": statistics.median(latency) if latency else 0.0,
            "latency_max": max(latency, default=0.0),
        }


def _ratio(naive: int, ours: int) -> str:
    return f"{naive / ours:.0f}x" if ours else "inf"


def main() -> None:
    naive = 40 * (HOUR // CADENCE)
    print(f"fleet: 40 watches over {len(REPOS)} repos, every watch at {CADENCE}s, "
          "one simulated hour against the fake GitHub")  # fmt: skip
    print("scenarios (Poisson arrivals of a comment on a random issue of a random repo):")
    print("  idle     = nothing changes all hour")
    print("  moderate = a change every ~60 s on average across the fleet (~60 changes/h)")
    print("  busy     = a change every ~20 s on average (~180 changes/h, ~22 per repo per hour)")
    print("naive = the seed: one `gh issue list --search` per watch per poll (GraphQL search:")
    print("        no 304 possible, >=1 point each), computed as 40 watches x 120 polls/h")
    print("points = primary rate-limit points (a 200 costs 1, a conditional 304 costs 0)\n")
    head = (f"{'scenario':<10}{'way':<22}{'requests/h':>11}{'304s':>7}{'points/h':>10}"
            f"{'requests':>10}{'points':>9}{'latency':>14}{'delivered':>11}")  # fmt: skip
    print(head)
    print(f"{'':<10}{'':<22}{'':>11}{'':>7}{'':>10}{'vs naive':>10}{'vs naive':>9}"
          f"{'p50/max s':>14}{'/changes':>11}")  # fmt: skip
    print("-" * len(head))
    no_stretch = Cadence(idle_max_factor=1.0)
    for name, every in SCENARIOS:
        print(f"{name:<10}{'naive':<22}{naive:>11}{0:>7}{naive:>10}{'1x':>10}{'1x':>9}"
              f"{'-':>14}{'-':>11}")  # fmt: skip
        for label, cadence in (("relayfleet", None), ("relayfleet, no stretch", no_stretch)):
            got = simulate(every, cadence)
            lat = f"{got['latency_p50']:.0f}/{got['latency_max']:.0f}" if got["delivered"] else "-"
            done = f"{got['delivered']}/{got['changes']}" if every else "-"
            print(f"{'':<10}{label:<22}{got['requests']:>11}{got['not_modified']:>7}"
                  f"{got['points']:>10}{_ratio(naive, got['requests']):>10}"
                  f"{_ratio(naive, got['points']):>9}{lat:>14}{done:>11}")  # fmt: skip
    print("\n'no stretch' = the same router with idle stretching off (FLEET_ROUTER_IDLE_STRETCH=1):"
          "\nidle stretching trades request volume for latency on quiet streams (capped at 4x"
          "\nthe watch's poll_sec and at 5 minutes). 304s cost no points either way.")  # fmt: skip


if __name__ == "__main__":
    main()
