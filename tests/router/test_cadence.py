"""The poller's cadence against the fake GitHub on a manual clock: backoff after transient
errors, jittered and phased schedules, idle stretching, the budget governor. No sleeps."""

from __future__ import annotations

import itertools
import math
import random

import httpx
import pytest

from relayfleet.core.atomic import read_json
from relayfleet.fakes.github import FakeGitHub, ManualClock
from relayfleet.router.poller import Poller
from tests.router.helpers import Rig, config, route, watch

REPO = "acme/wms"

pytestmark = pytest.mark.fake_github(
    repos=[*(f"acme/repo{i}" for i in range(8)), REPO], start=1_800_000_000
)


def poller(rig: Rig, rng: float | random.Random = 0.5) -> Poller:
    p = rig.poller()
    p.schedule.rng = rng.random if isinstance(rng, random.Random) else (lambda: rng)
    return p


def one_watch(poll_sec: int = 30):
    return config([watch("wms", "issues", REPO, "", poll_sec)], [route(1, "coder")], ["coder"])


def tick(p: Poller, cfg, clock: ManualClock, seconds: int) -> None:
    """A cycle every simulated second: the worst case for hammering."""
    for _ in range(seconds):
        clock.advance(1)
        p.run_once(cfg)


def run_for(p: Poller, cfg, clock: ManualClock, seconds: float) -> None:
    """What the daemon loop does: sleep until the next stream is due (whole seconds), poll."""
    end = clock() + seconds
    while True:
        wait = max(1, math.ceil(p.seconds_until_due(cfg, clock())))
        if clock() + wait > end:
            clock.advance(end - clock())
            return
        clock.advance(wait)
        p.run_once(cfg)


def test_a_failing_stream_backs_off_instead_of_polling_every_cycle(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    cfg = one_watch()
    p = poller(rig, rng=1.0)  # the top of the jitter: delays are the ceilings 5, 10, 20, 40…
    p.run_once(cfg)  # snapshot
    fake.reset_log()
    clock.advance(40)
    fake.fail_next(1000, status=502)
    n = fake.open_issue(REPO, "Scanner crash")  # happens during the outage
    tick(p, cfg, clock, 150)
    # Tries at +41, +46, +56, +76, +116 (s): five requests in 150 cycles, not 150.
    assert fake.count(status=502) == 5
    assert p.schedule.state(f"issues:{REPO}").failures == 5
    st = read_json(rig.paths.router_status)
    assert st["streams"][f"issues:{REPO}"]["failures"] == 5
    assert "502" in st["streams"][f"issues:{REPO}"]["error"]

    fake.clear_faults()
    tick(p, cfg, clock, 10)  # the next try (+196: ceiling 80 s) succeeds: nothing was lost
    assert [e["metadata"]["number"] for e in rig.inbox("coder")] == [n]
    assert p.schedule.state(f"issues:{REPO}").failures == 0
    fake.reset_log()
    tick(p, cfg, clock, 70)
    assert fake.count() == 2  # back to the watch's own 30 s cadence (+10% jitter: 33 s)


def test_malformed_json_and_timeouts_back_off_too(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    cfg = one_watch()
    p = poller(rig, rng=1.0)
    p.run_once(cfg)
    clock.advance(40)
    fake.open_issue(REPO, "Crash")  # a 200 (the fake cuts only a 200's JSON short)
    fake.malformed_next(1)
    p.run_once(cfg)
    assert p.schedule.state(f"issues:{REPO}").failures == 1
    assert p.schedule.backing_off(f"issues:{REPO}", clock())
    fake.reset_log()
    p.run_once(cfg)
    p.run_once(cfg)
    assert fake.count() == 0  # not retried within the same backoff window

    clock.advance(10)
    p.client._http.timeout = httpx.Timeout(0.2)  # a timeout, without a long wait
    fake.slow_next(1, delay=1.0)
    report = p.run_once(cfg)
    assert "did not answer" in report.errors[0]
    assert p.schedule.state(f"issues:{REPO}").failures == 2


def test_streams_are_phased_and_jittered_so_they_do_not_burst_together(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    repos = [f"acme/repo{i}" for i in range(8)]
    cfg = config([watch(r, "issues", r) for r in repos], [route(1, "coder")], ["coder"])
    poller(rig).run_once(cfg)  # every watch's snapshot (a new watch polls right away)
    fake.reset_log()

    p = poller(rig, random.Random(5))  # a restarted router
    run_for(p, cfg, clock, 600)
    per_second: dict[int, int] = {}
    for r in fake.requests:
        per_second[int(r.ts)] = per_second.get(int(r.ts), 0) + 1
    # Without phase and jitter all 8 streams would fire in the same second, 20 times over.
    assert max(per_second.values()) <= 2
    assert len(per_second) >= 0.8 * fake.count()
    # …and each stream still polls at its own cadence (10 quiet minutes: no idle stretch yet).
    assert 8 * 600 / (30 * 1.1) - 8 <= fake.count() <= 8 * 600 / (30 * 0.9)


def test_an_idle_stream_stretches_and_snaps_back_on_a_change(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    cfg = one_watch(30)
    p = poller(rig, rng=0.5)  # no jitter: exact periods
    p.run_once(cfg)
    fake.reset_log()
    run_for(p, cfg, clock, 1800)
    polls = [r.ts for r in fake.requests]
    gaps = [round(b - a) for a, b in itertools.pairwise(polls)]
    assert gaps[:29] == [30] * 29  # 15 quiet minutes at the watch's own cadence, then…
    assert gaps[29:33] == [45, 68, 102, 120]  # …x1.5 per quiet poll (whole seconds), up to 4x
    assert max(gaps) == 120
    assert len(polls) < 1800 / 30 * 0.7  # 30% fewer requests than a fixed 30 s cadence

    n = fake.open_issue(REPO, "Crash")
    run_for(p, cfg, clock, 121)  # the change is seen within one stretched period…
    assert [e["metadata"]["number"] for e in rig.inbox("coder")] == [n]
    assert p.schedule.state(f"issues:{REPO}").period == 30.0  # …and the cadence snaps back


def test_the_budget_governor_stretches_periods_when_the_limit_runs_low(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    repos = [f"acme/repo{i}" for i in range(4)]
    cfg = config([watch(r, "issues", r) for r in repos], [route(1, "coder")], ["coder"])
    p = poller(rig)
    fake.set_rate_limit(remaining=60, reset_in=3600)
    p.run_once(cfg)  # 4 x 200: now 56 left; 4 streams x 120 polls/h, all charged so far
    fake.reset_log()
    p.run_once(cfg)
    assert p.schedule.governor == pytest.approx(480 / (0.8 * 56), rel=0.02)
    assert read_json(rig.paths.router_status)["governor"] == round(p.schedule.governor, 2)
    for r in repos:  # one change each keeps the streams "charged" (no idle discount)
        fake.open_issue(r, "x")
    run_for(p, cfg, clock, 600)
    governed = fake.count()
    assert governed <= 4 * 600 / (30 * 10 * 0.9) + 4  # ~x10.7 longer periods: ~2 polls each
    assert fake.points_used <= fake.rate.limit - 56 + 8

    clock.advance(3600)  # the window resets: the governor lets go on the next answer
    run_for(p, cfg, clock, 400)
    assert p.schedule.governor == 1.0
