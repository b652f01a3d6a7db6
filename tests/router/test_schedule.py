"""The cadence algebra (router/schedule.py), with a fixed rng: no clock, no sleeps."""

from __future__ import annotations

import pytest

from relayfleet.router.schedule import Cadence, Schedule, phase


def fixed(value: float) -> Schedule:
    return Schedule(Cadence(), rng=lambda: value)


def test_the_next_poll_is_jittered_within_ten_percent_of_the_period() -> None:
    assert fixed(0.0).succeeded("s", 1000.0, 30.0, 200) == pytest.approx(1027.0)
    assert fixed(0.5).succeeded("s", 1000.0, 30.0, 200) == pytest.approx(1030.0)
    assert fixed(1.0).succeeded("s", 1000.0, 30.0, 200) == pytest.approx(1033.0)


def test_the_first_slot_is_a_stable_phase_per_stream_key() -> None:
    keys = [f"issues:acme/repo{i}" for i in range(8)]
    slots = [fixed(0.5).due_at(k, 1000.0, 30.0) for k in keys]
    assert slots == [fixed(0.0).due_at(k, 1000.0, 30.0) for k in keys]  # not random: a hash
    assert all(1000.0 <= s < 1030.0 for s in slots)
    assert len({round(s, 3) for s in slots}) == 8  # no two streams burst together
    assert max(slots) - min(slots) > 15.0  # spread over the period
    assert phase("notifications", 60.0) == phase("notifications", 60.0)


def test_transient_failures_back_off_exponentially_with_full_jitter() -> None:
    worst = fixed(1.0)  # the rng's top: each delay is the ceiling itself
    assert [worst.failed("s", 0.0) for _ in range(10)] == [
        5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 900.0, 900.0,
    ]  # fmt: skip
    half = fixed(0.5)
    assert [half.failed("s", 0.0) for _ in range(3)] == [2.5, 5.0, 10.0]
    assert fixed(0.0).failed("s", 0.0) == 1.0  # a floor: never a zero-delay spin
    s = fixed(1.0)
    s.failed("s", 0.0)
    s.failed("s", 0.0)
    assert s.backing_off("s", 9.0) and not s.backing_off("s", 10.0)
    s.succeeded("s", 10.0, 30.0, 200)  # the first success resets the backoff
    assert s.state("s").failures == 0 and s.failed("s", 50.0) == 5.0


def idle_factors(base: float, polls: int) -> list[float]:
    s = fixed(0.5)
    out = []
    for _ in range(polls):
        s.succeeded("s", 0.0, base, 304)
        out.append(round(s.state("s").period / base, 3))
    return out


def test_idle_streams_stretch_up_to_four_times_or_five_minutes() -> None:
    # 30 quiet polls (15 minutes) at the watch's own cadence, then x1.5 per quiet poll.
    assert idle_factors(30, 35) == [1] * 29 + [1.5, 2.25, 3.375, 4, 4, 4]
    assert idle_factors(120, 15)[-1] == 2.5  # 300 s ceiling
    assert idle_factors(240, 15)[-1] == 1.25
    assert idle_factors(600, 15) == [1] * 15  # a slow watch is never stretched
    s = fixed(0.5)
    for _ in range(35):
        s.succeeded("s", 0.0, 30.0, 304)
    s.succeeded("s", 0.0, 30.0, 200)  # a change: back to the watch's own cadence
    assert s.state("s").period == 30.0


def test_the_governor_stretches_every_period_by_the_overspend_ratio() -> None:
    bases = {"issues:a": 30.0, "issues:b": 30.0}  # 240 polls/h, all assumed charged at first
    s = fixed(0.5)
    assert s.govern(bases, remaining=5000, reset=3600.0, now=0.0) == 1.0
    # 240 projected until the reset vs 80% of 100 left: stretch x3.
    assert s.govern(bases, remaining=100, reset=3600.0, now=0.0) == pytest.approx(3.0)
    assert s.succeeded("issues:a", 0.0, 30.0, 200) == pytest.approx(90.0)
    # Half an hour left: half the spend.
    assert s.govern(bases, remaining=100, reset=1800.0, now=0.0) == pytest.approx(1.5)
    assert s.govern(bases, remaining=0, reset=3600.0, now=0.0) == Cadence().governor_max
    assert s.govern(bases, remaining=10, reset=3600.0, now=3600.0) == 1.0  # window rolled over
    assert s.govern(bases, remaining=None, reset=None, now=0.0) == 1.0  # GHES: no limit sent


def test_free_304s_lower_the_projected_spend() -> None:
    s = fixed(0.5)
    before = s.projected_charged_per_hour({"k": 30.0})
    for _ in range(15):
        s.succeeded("k", 0.0, 30.0, 304)
    assert s.projected_charged_per_hour({"k": 30.0}) < before * 0.05


def test_a_stream_that_fails_for_weeks_keeps_backing_off_at_the_cap() -> None:
    s = fixed(1.0)
    delays = [s.failed("s", 0.0) for _ in range(2000)]  # 2**1024 once overflowed a float
    assert delays[-1] == pytest.approx(Cadence().backoff_cap)


def test_a_reload_that_makes_a_watch_faster_pulls_its_next_poll_in() -> None:
    s = fixed(0.5)
    assert s.succeeded("s", 1000.0, 240.0, 200) == pytest.approx(1240.0)
    assert s.due_at("s", 1005.0, 240.0) == pytest.approx(1240.0)  # unchanged watch: same slot
    assert s.due_at("s", 1005.0, 10.0) == pytest.approx(1010.0)  # poll_sec 240 -> 10
    assert s.due_at("s", 1006.0, 600.0) == pytest.approx(1010.0)  # slower: the next poll decides
    fresh = fixed(0.5)  # a router that restarted: its first slot is a phase of the old period
    assert fresh.due_at("t", 1000.0, 240.0) == pytest.approx(1000.0 + phase("t", 240.0))
    assert fresh.due_at("t", 1001.0, 10.0) == pytest.approx(1000.0 + phase("t", 10.0))
