"""Runs streams on repositories with real CI history: free when idle, nothing lost off the page."""

from __future__ import annotations

from relayfleet.fakes.github import FakeGitHub, ManualClock
from tests.router.helpers import Rig, config, route, watch

REPO = "acme/wms"
RUNS = f"/repos/{REPO}/actions/runs"


def ci_config():  # type: ignore[no-untyped-def]
    return config([watch("ci", "runs", REPO, "--status failure")], [route(1, "ci", watch="ci")],
                  ["ci"])  # fmt: skip


def test_idle_cycle_on_a_repo_with_a_hundred_runs_is_all_304(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    seeded = fake.seed_repo(REPO, runs=120, in_progress=3, issues=0)
    assert len(seeded["in_progress"]) == 3
    p = rig.poller()
    p.run_once(ci_config(), force=True)  # snapshot
    clock.advance(60)
    p.run_once(ci_config(), force=True)  # the long jobs' first GET by id (their validators)
    fake.reset_log()
    points = fake.points_used
    for _ in range(3):
        clock.advance(60)
        p.run_once(ci_config(), force=True)
    # Each cycle: the newest page, and the 3 long jobs (off the page) by id; all free.
    assert fake.count(RUNS) == 3 * (1 + 3)
    assert {r.status for r in fake.requests} == {304}
    assert fake.points_used == points  # an idle cycle costs nothing


def test_a_long_run_that_fails_after_30_newer_runs_is_delivered(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    fake.seed_repo(REPO, runs=50, in_progress=0, issues=0)
    long_run = fake.add_run(REPO, "Nightly", status="in_progress")
    p = rig.poller()
    p.run_once(ci_config(), force=True)  # snapshot: the long run is seen running
    for _ in range(35):  # a busy repo: 35 newer runs push it off the first page
        clock.advance(5)
        fake.add_run(REPO, "CI", status="completed", conclusion="success")
    p.run_once(ci_config(), force=True)
    fake.reset_log()
    clock.advance(60)
    p.run_once(ci_config(), force=True)
    assert fake.count(f"{RUNS}/{long_run}", status=304) == 1  # followed by id, for free
    assert fake.count(status=200) == 0

    clock.advance(600)
    fake.update_run(REPO, long_run, "completed", "failure")
    p.run_once(ci_config(), force=True)
    [event] = rig.inbox("ci")
    assert event["metadata"]["number"] == long_run
    assert "run failed" in event["body"]
    assert fake.count(f"{RUNS}/{long_run}", status=200) == 1  # one point for the completion

    # Finished: no longer followed, and not delivered again.
    fake.reset_log()
    clock.advance(60)
    p.run_once(ci_config(), force=True)
    assert fake.count(f"{RUNS}/{long_run}") == 0
    assert len(rig.inbox("ci")) == 1


def test_a_tracked_run_still_on_the_page_costs_no_extra_request(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    fake.add_repo(REPO)
    run = fake.add_run(REPO, "CI", status="in_progress")
    p = rig.poller()
    p.run_once(ci_config(), force=True)
    fake.reset_log()
    clock.advance(60)
    p.run_once(ci_config(), force=True)
    assert fake.count(f"{RUNS}/{run}") == 0 and fake.count(RUNS, status=304) == 1
    fake.update_run(REPO, run, "completed", "failure")
    p.run_once(ci_config(), force=True)
    assert [e["metadata"]["number"] for e in rig.inbox("ci")] == [run]


def test_tracking_survives_a_restart(rig: Rig, fake: FakeGitHub, clock: ManualClock) -> None:
    fake.add_repo(REPO)
    run = fake.add_run(REPO, "Deploy", status="queued")
    rig.poller().run_once(ci_config(), force=True)
    for _ in range(31):
        clock.advance(2)
        fake.add_run(REPO, "CI", status="completed", conclusion="success")
    rig.poller().run_once(ci_config(), force=True)
    fake.update_run(REPO, run, "completed", "failure")
    rig.poller().run_once(ci_config(), force=True)  # a fresh poller: state from the cursor
    assert [e["metadata"]["number"] for e in rig.inbox("ci")] == [run]


def test_a_deleted_tracked_run_is_dropped(rig: Rig, fake: FakeGitHub, clock: ManualClock) -> None:
    fake.add_repo(REPO)
    run = fake.add_run(REPO, "CI", status="in_progress")
    p = rig.poller()
    p.run_once(ci_config(), force=True)
    for _ in range(31):
        fake.add_run(REPO, "CI", status="completed", conclusion="success")
    p.run_once(ci_config(), force=True)
    fake.repos[REPO].runs = [r for r in fake.repos[REPO].runs if r.id != run]
    report = p.run_once(ci_config(), force=True)
    assert report.errors == []
    fake.reset_log()
    p.run_once(ci_config(), force=True)
    assert fake.count(f"{RUNS}/{run}") == 0


def test_jobs_already_running_off_the_page_at_the_first_poll_are_followed(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    seeded = fake.seed_repo(REPO, runs=120, in_progress=3, issues=0)
    p = rig.poller()
    p.run_once(ci_config(), force=True)  # snapshot: also asks once which runs are unfinished
    assert fake.count(RUNS) == 3  # the page, ?status=in_progress, ?status=queued
    clock.advance(60)
    for rid in seeded["in_progress"]:
        fake.update_run(REPO, rid, "completed", "failure")
    p.run_once(ci_config(), force=True)
    assert sorted(e["metadata"]["number"] for e in rig.inbox("ci")) == sorted(seeded["in_progress"])
