"""API cost of the router vs the naive way, over a simulated hour against the fake GitHub.

Fleet: 40 watches over 8 repos, every watch at a 30 s cadence (issues and pulls watches on
every repo, run watches on 4 repos, 3 notification watches, one more issues watch). Every repo
has the history of a real busy one (`FakeGitHub.seed_repo`: 200 issues and PRs, 120 workflow
runs, 3 of them long jobs still in progress although dozens of newer runs came after them). The
clock is injected, so an hour takes seconds; the loop does what `router run` does (sleep until
the next stream is due, at most 5 s, then poll what is due), with the real jittered schedule,
backoff, idle stretching and budget governor.

Scenarios (the changes are Poisson arrivals: a comment on a random issue of a random repo):
- idle: nothing changes for the whole hour;
- moderate: a change every ~60 s on average across the fleet (~60/h);
- busy: a change every ~20 s on average (~180/h, ~22 per repo per hour): most 30 s polls of a
  repo's issues stream then see something new.
In moderate and busy, the long CI jobs also finish during the hour (off the runs page: each is
followed by a conditional GET of the run, free until it completes).
Two changes to one issue within one poll period are one version to any poller, so deliveries can
be slightly fewer than changes.

Naive = what the seed does: one `gh issue list --search …` per watch per poll. gh sends those as
GraphQL search queries (research A4): no ETag, no 304, at least 1 point each; so its cost is
computed (40 watches x 120 polls), not measured against the REST fake.

    python benchmarks/api_cost.py [--quick]      (--quick: 5 simulated minutes, one variant)
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
RUN_REPOS = REPOS[:4]
FIGURE = r"busy: (\d+)x fewer rate-limit points than the naive way"


def fleet_watches() -> list:
    ws = []
    for r in REPOS:  # 8 repos x (2 issues + 2 pulls) = 32
        ws += [
            watch(f"{r}-assigned", "issues", r, "--search assignee:@me --state open", CADENCE),
            watch(f"{r}-open", "issues", r, "--state open", CADENCE),
            watch(f"{r}-prs", "pulls", r, "--state open", CADENCE),
            watch(f"{r}-human", "pulls", r, "--label needs-human", CADENCE),
        ]
    ws += [watch(f"{r}-ci", "runs", r, "--status failure", CADENCE) for r in RUN_REPOS]  # 36
    reasons = ["mention", "review_requested", "assign"]
    ws += [watch(f"mentions-{i}", "notifications", "", f"--reason {x}", CADENCE)
           for i, x in enumerate(reasons)]  # fmt: skip
    ws += [watch(f"{r}-docs", "issues", r, "--label docs", CADENCE) for r in REPOS[:1]]
    assert len(ws) == 40, len(ws)
    return ws


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def simulate(
    change_every: float, cadence: Cadence | None = None, hour: float = HOUR, issues: int = 200
) -> dict[str, float]:
    clock = ManualClock()
    rng = random.Random(3)
    with FakeGitHub(clock=clock, poll_interval=60) as fake, tempfile.TemporaryDirectory() as tmp:
        long_runs: list[tuple[str, int]] = []
        open_items: dict[str, list[int]] = {}
        for r in REPOS:
            seeded = fake.seed_repo(r, issues=issues, runs=120, in_progress=3, spread=60)
            long_runs += [(r, rid) for rid in seeded["in_progress"]]
            # Changes land on open items (what the watches are about), as in a real busy repo.
            open_items[r] = [n for n, i in fake.repos[r].issues.items() if i.state == "open"]
        ws = fleet_watches()
        cfg = config(ws, [route(1, "agent", repo=r) for r in REPOS], ["agent"])
        rig = make_rig(Path(tmp), fake, clock)
        poller = rig.poller()
        poller.min_period = 10
        poller.schedule = replace(poller.schedule, rng=random.Random(7).random)
        if cadence is not None:
            poller.schedule.cadence = cadence
        # Not counted: the snapshot, and the settling poll after it (the watermark moved past the
        # snapshot's history, a new URL: one 200 per repo; the long jobs' first GET by id).
        poller.run_once(cfg, force=True)
        clock.advance(CADENCE)
        poller.run_once(cfg, force=True)
        fake.reset_log()
        end = clock() + hour
        next_change = clock() + rng.expovariate(1 / change_every) if change_every else end + 1
        # The long CI jobs finish at random instants of the hour (only when something happens).
        finishes = sorted(
            (clock() + rng.uniform(0, hour), r, rid) for r, rid in long_runs if change_every
        )
        changes = 0
        while True:
            wake = clock() + max(0.1, min(IDLE_MAX, poller.seconds_until_due(cfg, clock())))
            while finishes and finishes[0][0] <= min(wake, end):
                at, r, rid = finishes.pop(0)
                clock.advance(max(0.0, at - clock()))
                fake.update_run(r, rid, "completed", "failure")
                changes += r in RUN_REPOS  # a failure the runs watches must deliver
            while next_change <= min(wake, end):
                clock.advance(next_change - clock())
                repo = rng.choice(REPOS)
                fake.comment(repo, rng.choice(open_items[repo]), "alice", "ping")
                changes += 1
                next_change += rng.expovariate(1 / change_every)
            if wake > end:
                break
            clock.advance(wake - clock())
            poller.run_once(cfg)
        events = rig.inbox("agent")
        latency = [_ts(e["ts"]) - _ts(e["metadata"]["updated_at"]) for e in events]
        run_events = [e for e in events if e["metadata"]["kind"] == "runs"]
        return {
            "run_failures_delivered": len(run_events),
            "run_requests": sum(1 for q in fake.requests if "/actions/runs" in q.path),
            "run_points": sum(
                1 for q in fake.requests if "/actions/runs" in q.path and q.status == 200
            ),
            "issue_points": sum(
                1 for q in fake.requests if q.path.endswith("/issues") and q.status == 200
            ),
            "issue_polls_with_change": len(
                {
                    (q.path, q.ts)
                    for q in fake.requests
                    if q.path.endswith("/issues") and q.status == 200
                }
            ),
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
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="5 simulated minutes, 60 issues a repo, one variant"
    )
    quick = ap.parse_args().quick
    hour = 300.0 if quick else float(HOUR)
    issues = 60 if quick else 200
    polls = int(hour // CADENCE)
    naive = 40 * polls
    span = "5 simulated minutes" if quick else "one simulated hour"
    print(f"fleet: 40 watches over {len(REPOS)} repos (runs watches on {len(RUN_REPOS)}), every "
          f"watch at {CADENCE}s, {span} against the fake GitHub")  # fmt: skip
    print(f"repos: {issues} issues/PRs and 120 workflow runs each, 3 long CI jobs still running")
    print("scenarios (Poisson arrivals of a comment on a random issue of a random repo):")
    print("  idle     = nothing changes (the long CI jobs keep running)")
    print("  moderate = a change every ~60 s on average across the fleet (~60 changes/h)")
    print("  busy     = a change every ~20 s on average (~180 changes/h, ~22 per repo per hour)")
    print("  (moderate and busy: the long CI jobs also fail at random instants)")
    print("naive = the seed: one `gh issue list --search` per watch per poll (GraphQL search:")
    print(f"        no 304 possible, >=1 point each), computed as 40 watches x {polls} polls")
    print("points = primary rate-limit points (a 200 costs 1, a conditional 304 costs 0)\n")
    head = (f"{'scenario':<10}{'way':<24}{'requests':>9}{'304s':>7}{'points':>8}"
            f"{'requests':>10}{'points':>9}{'latency':>12}{'delivered':>11}{'CI':>8}")  # fmt: skip
    print(head)
    print(f"{'':<10}{'':<24}{'':>9}{'':>7}{'':>8}{'vs naive':>10}{'vs naive':>9}"
          f"{'p50/max s':>12}{'/changes':>11}{'fails':>8}")  # fmt: skip
    print("-" * len(head))
    variants: list[tuple[str, Cadence | None]] = [("relayfleet", None)]
    if not quick:
        variants.append(("relayfleet, no stretch", Cadence(idle_max_factor=1.0)))
    results: dict[str, dict[str, float]] = {}
    for name, every in SCENARIOS:
        if quick and name == "moderate":
            continue  # the smoke test keeps the two ends
        print(f"{name:<10}{'naive':<24}{naive:>9}{0:>7}{naive:>8}{'1x':>10}{'1x':>9}"
              f"{'-':>12}{'-':>11}{'-':>8}")  # fmt: skip
        for label, cadence in variants:
            got = simulate(every, cadence, hour, issues)
            results.setdefault(name, got)
            lat = f"{got['latency_p50']:.0f}/{got['latency_max']:.0f}" if got["delivered"] else "-"
            done = f"{got['delivered']}/{got['changes']}" if every else "-"
            print(f"{'':<10}{label:<24}{got['requests']:>9}{got['not_modified']:>7}"
                  f"{got['points']:>8}{_ratio(naive, got['requests']):>10}"
                  f"{_ratio(naive, got['points']):>9}{lat:>12}{done:>11}"
                  f"{got['run_failures_delivered']:>8}")  # fmt: skip
    busy, idle = results["busy"], results["idle"]
    print(f"\nidle: {idle['points']} rate-limit points ({idle['requests']} requests, all 304)")
    print(f"busy: {_ratio(naive, busy['points']).rstrip('x')}x fewer rate-limit points than the "
          f"naive way ({busy['points']} vs {naive}; goal 50x = at most {naive // 50})")  # fmt: skip
    print(f"  of which issues streams {busy['issue_points']} (one per 30 s poll that saw a "
          f"change), runs {busy['run_points']} (one per finished long job, "
          f"{busy['run_requests']} runs requests in all), notifications "
          f"{busy['points'] - busy['issue_points'] - busy['run_points']}")  # fmt: skip
    floor = busy["issue_points"]
    print(f"  polling floor: every 30 s poll of a repo that had a change since the last one must"
          f"\n  cost a point ({floor} here for {busy['changes']} changes); 50x would need at most "
          f"{naive // 50}, i.e. fewer points than\n  polls-with-a-change, which polling per repo "
          f"cannot do. Webhooks (no polling) are the other half.")  # fmt: skip
    if not quick:
        print("\n'no stretch' = the same router with idle stretching off "
              "(FLEET_ROUTER_IDLE_STRETCH=1):\nidle stretching trades request volume for "
              "latency on quiet streams (capped at 4x\nthe watch's poll_sec and at 5 minutes). "
              "304s cost no points either way.")  # fmt: skip


if __name__ == "__main__":
    main()
