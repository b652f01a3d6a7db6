"""More changes between two polls than one page holds: every one delivered once, none lost,
within the rate-limit budget, with the watermark never moving past an unread item."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub, ManualClock
from relayfleet.router.poller import Poller
from tests.router.helpers import Rig, cli, config, route, watch, write_fleet

REPO = "acme/wms"
ISSUES = f"/repos/{REPO}/issues"


def triage_config():  # type: ignore[no-untyped-def]
    ws = [watch("all-issues", "issues", REPO, "--state all"),
          watch("all-prs", "pulls", REPO, "--state all")]  # fmt: skip
    return config(ws, [route(1, "triage", repo=REPO)], ["triage"])


def seeded(fake: FakeGitHub, clock: ManualClock, n: int) -> list[int]:
    fake.seed_repo(REPO, issues=n, runs=0, spread=10)
    clock.advance(60)
    return sorted(fake.repos[REPO].issues)


def triaged_a_minute_later(fake: FakeGitHub, clock: ManualClock) -> int:
    """A minute on, every issue gets the label `triaged`: how many changed."""
    clock.advance(60)
    return fake.bulk_label(REPO, "triaged")


def assert_each_once(rig: Rig, numbers: list[int], label: str) -> None:
    events = [e for e in rig.inbox("triage") if label in e["body"].split("]")[0]]
    counts = Counter(e["metadata"]["number"] for e in events)
    assert sorted(counts) == numbers
    assert set(counts.values()) == {1}
    keys = [e["metadata"]["dedup_key"] for e in rig.inbox("triage")]
    assert len(keys) == len(set(keys))


def test_2500_changes_between_two_polls_give_2500_events_each_once(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    numbers = seeded(fake, clock, 2500)
    p = rig.poller()
    p.run_once(triage_config(), force=True)  # snapshot (reads every page too)
    since = p.cursor.stream(f"issues:{REPO}")["since"]
    assert triaged_a_minute_later(fake, clock) == 2500
    fake.reset_log()
    p.run_once(triage_config(), force=True)
    assert fake.count(ISSUES) == 25  # 2,500 items, 100 a page: page 1 + 24 more
    assert_each_once(rig, numbers, "triaged")
    assert p.catching_up() == {}
    assert p.cursor.stream(f"issues:{REPO}")["since"] > since  # all read: the watermark moves
    p.run_once(triage_config(), force=True)  # the moved watermark's URL: one more full read
    fake.reset_log()
    p.run_once(triage_config(), force=True)
    assert fake.count(ISSUES, status=304) == 1 and fake.count(ISSUES) == 1
    assert len(rig.inbox("triage")) == 2500


def test_a_low_budget_stops_the_read_keeps_the_watermark_and_resumes(
    rig: Rig, fake: FakeGitHub, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    numbers = seeded(fake, clock, 900)
    p = rig.poller()
    p.run_once(triage_config(), force=True)
    since = p.cursor.stream(f"issues:{REPO}")["since"]
    triaged_a_minute_later(fake, clock)
    # 1,005 points left of 5,000: the floor (20 %, 1,000) is hit after a few pages.
    fake.set_rate_limit(remaining=1005, reset_in=1800)
    fake.reset_log()
    with caplog.at_level(logging.WARNING, logger="relayfleet.router"):
        p.run_once(triage_config(), force=True)
    read_pages = fake.count(ISSUES)
    assert read_pages == 5  # page 1, then pages while more than 1,000 points are left
    behind = p.catching_up()[f"issues:{REPO}"]
    assert behind == 9 - read_pages
    assert p.status()["catching_up"] == {f"issues:{REPO}": behind}
    assert p.cursor.stream(f"issues:{REPO}")["since"] == since  # unread items stay covered
    assert any("catching up" in r.getMessage() for r in caplog.records)
    got = {e["metadata"]["number"] for e in rig.inbox("triage")}
    assert len(got) == read_pages * 100

    # Meanwhile a new change lands on top; the budget is still low: page 1 only (the news is
    # delivered), and the read resumes no further than it can prove it has read.
    clock.advance(60)
    fake.label(REPO, numbers[0], "urgent")
    p.run_once(triage_config(), force=True)
    assert p.catching_up()[f"issues:{REPO}"] >= behind
    assert p.cursor.stream(f"issues:{REPO}")["since"] == since
    [urgent] = [e for e in rig.inbox("triage") if "urgent" in e["body"].split("]")[0]]
    assert urgent["metadata"]["number"] == numbers[0]

    # The window resets: the rest is read, the watermark moves, each change delivered once.
    fake.set_rate_limit(remaining=5000, reset_in=3600)
    clock.advance(60)
    p.run_once(triage_config(), force=True)
    assert p.catching_up() == {}
    assert p.cursor.stream(f"issues:{REPO}")["since"] > since
    assert_each_once(rig, numbers, "triaged")


def test_an_unchanged_head_resumes_without_rereading(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    numbers = seeded(fake, clock, 600)
    p = rig.poller()
    p.run_once(triage_config(), force=True)
    triaged_a_minute_later(fake, clock)
    fake.set_rate_limit(remaining=1003, reset_in=1800)
    p.run_once(triage_config(), force=True)
    resume = p.cursor.stream(f"issues:{REPO}")["catchup"]["resume_page"]
    fake.set_rate_limit(remaining=5000, reset_in=3600)
    fake.reset_log()
    p.run_once(triage_config(), force=True)
    pages = sorted(int(r.query.get("page", "1")) for r in fake.requests if r.path == ISSUES)
    assert resume == 4 and pages == [1, 4, 5, 6]  # page 1 was a free 304; then straight to resume
    assert fake.count(ISSUES, status=304) == 1
    assert_each_once(rig, numbers, "triaged")


def test_a_failed_page_mid_read_delivers_what_was_read_and_resumes_there(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    numbers = seeded(fake, clock, 800)
    p = rig.poller()
    p.run_once(triage_config(), force=True)
    triaged_a_minute_later(fake, clock)
    fake.fail_next(1, status=502, path_prefix=ISSUES, page=7)
    report = p.run_once(triage_config(), force=True)
    assert report.errors == []
    assert len({e["metadata"]["number"] for e in rig.inbox("triage")}) == 600
    assert p.cursor.stream(f"issues:{REPO}")["catchup"]["resume_page"] == 7
    p.run_once(triage_config(), force=True)
    assert p.catching_up() == {}
    assert_each_once(rig, numbers, "triaged")


def test_a_restart_mid_catch_up_neither_loses_nor_repeats(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    numbers = seeded(fake, clock, 400)
    rig.poller().run_once(triage_config(), force=True)
    triaged_a_minute_later(fake, clock)
    fake.set_rate_limit(remaining=1002, reset_in=1800)
    first: Poller = rig.poller()
    first.run_once(triage_config(), force=True)
    assert first.catching_up()
    fake.set_rate_limit(remaining=5000, reset_in=3600)
    rig.poller().run_once(triage_config(), force=True)  # a restarted router finishes the read
    assert_each_once(rig, numbers, "triaged")


def test_router_status_and_status_show_catching_up(tmp_path: Path) -> None:
    with FakeGitHub() as fake:  # the CLI runs on the real clock
        _status_story(tmp_path, fake)


def _status_story(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.seed_repo(REPO, issues=700, runs=0, spread=10)
    write_fleet(tmp_path, ["triage"], [watch("all", "issues", REPO, "--state all")],
                [route(1, "triage", watch="all")])  # fmt: skip
    assert cli(tmp_path, fake, "router", "run", "--once")[0] == 0
    fake.bulk_label(REPO, "triaged")
    fake.set_rate_limit(remaining=1002, reset_in=1800)
    rc, out, _ = cli(tmp_path, fake, "router", "run", "--once")
    assert rc == 0 and f"catching up: 5 pages behind (issues:{REPO} 5)" in out

    rc, out, _ = cli(tmp_path, fake, "router", "status")
    assert rc == 0
    [line] = [x for x in out.splitlines() if x.startswith("catching up:")]
    assert line.split(":", 1)[1].strip() == f"5 pages behind (issues:{REPO} 5)"
    rc, out, _ = cli(tmp_path, fake, "router", "status", "--json")
    import json

    st = json.loads(out)
    assert st["catching_up"] == {f"issues:{REPO}": 5} and st["catching_up_pages"] == 5
    rc, out, _ = cli(tmp_path, fake, "status")
    assert f"catching up: 5 pages behind (issues:{REPO} 5)" in out
    log = (tmp_path / ".fleet" / "state" / "router" / "router.log").read_text()
    assert "catching up: 5 page(s) behind" in log

    fake.set_rate_limit(remaining=5000, reset_in=3600)
    assert cli(tmp_path, fake, "router", "run", "--once")[0] == 0
    rc, out, _ = cli(tmp_path, fake, "router", "status")
    assert "catching up" not in out


def test_a_new_watch_whose_first_read_is_cut_short_delivers_no_backlog(
    rig: Rig, fake: FakeGitHub, clock: ManualClock
) -> None:
    numbers = seeded(fake, clock, 900)
    fake.set_rate_limit(remaining=1003, reset_in=1800)
    p = rig.poller()
    p.run_once(triage_config(), force=True)  # the snapshot read stops after 3 of 9 pages
    assert p.catching_up() and not p.cursor.watch_ready("all-issues")
    fake.set_rate_limit(remaining=5000, reset_in=3600)
    clock.advance(60)
    p.run_once(triage_config(), force=True)  # the rest of the snapshot: still no news
    assert p.catching_up() == {} and p.cursor.watch_ready("all-issues")
    assert rig.inbox("triage") == []
    clock.advance(60)
    fake.label(REPO, numbers[5], "bug")
    p.run_once(triage_config(), force=True)
    assert [e["metadata"]["number"] for e in rig.inbox("triage")] == [numbers[5]]
