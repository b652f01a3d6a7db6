"""API cost of the router vs the naive way, over a simulated hour against the fake GitHub.

Fleet: 40 watches over 8 repos, every watch at a 30 s cadence (issues and pulls watches on
every repo, run watches on 2 repos, 5 mention watches). The clock is injected, so an hour takes
seconds. Scenarios: idle (nothing changes), moderate (a change somewhere every ~60 s) and
busy (every ~20 s). Two comments on one issue within one poll period are one version to any
poller, so deliveries can be slightly fewer than changes.

Naive = what the seed does: one `gh issue list --search …` per watch per poll. gh sends those as
GraphQL search queries (research A4): no ETag, no 304, at least 1 point each; so its cost is
computed (40 watches x 120 polls), not measured against the REST fake.

    python benchmarks/api_cost.py
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.fakes.github import FakeGitHub, ManualClock
from tests.router.helpers import config, make_rig, route, watch

REPOS = [f"acme/repo{i}" for i in range(8)]
CADENCE = 30
HOUR = 3600


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


def simulate(change_every: float) -> dict[str, float]:
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
        poller.run_once(cfg)  # snapshot, not counted
        fake.reset_log()
        end = clock() + HOUR
        changes = 0
        while clock() < end:
            if change_every and rng.random() < 5 / change_every:  # a change somewhere
                r = rng.choice(REPOS)
                fake.comment(r, rng.randint(1, 20), "alice", "ping")
                changes += 1
            poller.run_once(cfg)
            clock.advance(5)
        reqs = len(fake.requests)
        return {
            "requests": reqs,
            "not_modified": fake.count(status=304),
            # A 200 costs a primary rate-limit point; a conditional 304 does not (research A1).
            "points": fake.count(status=200),
            "changes": changes,
            "delivered": len(rig.inbox("agent")),
        }


def main() -> None:
    naive = 40 * (HOUR // CADENCE)
    print(f"fleet: 40 watches, {len(REPOS)} repos, {CADENCE}s cadence, simulated 1 hour\n")
    print(f"{'scenario':<10}{'way':<12}{'requests/h':>12}{'304s':>8}{'points/h':>10}"
          f"{'ratio (points)':>16}")  # fmt: skip
    for name, every in (("idle", 0), ("moderate", 60), ("busy", 20)):
        got = simulate(every)
        ratio = naive / max(got["points"], 1)
        ratio_txt = f"{ratio:.0f}x cheaper" if got["points"] else "inf (0 points)"
        print(f"{name:<10}{'naive':<12}{naive:>12}{0:>8}{naive:>10}{'1x':>16}")
        print(f"{'':<10}{'relayfleet':<12}{got['requests']:>12}{got['not_modified']:>8}"
              f"{got['points']:>10}{ratio_txt:>16}")  # fmt: skip
        if every:
            print(f"{'':<10}(a change every ~{every}s: {got['changes']} changes on GitHub, "
                  f"{got['delivered']} deliveries)")  # fmt: skip
    print("\nnaive points are computed: each GraphQL search costs >=1 point and cannot be a 304")


if __name__ == "__main__":
    main()
