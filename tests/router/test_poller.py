"""The poller against the fake GitHub on loopback: snapshot, re-fire, dedup, API cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayfleet.core.errors import GitHubError
from relayfleet.fakes.github import FakeGitHub
from tests.router.helpers import Rig, config, make_rig, route, watch

REPO = "acme/wms"

# On the real time: nothing here steps a clock.
pytestmark = pytest.mark.fake_github(repos=[REPO, "acme/site"], wall_clock=True)


def basic_config():
    return config(
        [
            watch("wms-issues", "issues", REPO, "--state open"),
            watch("wms-prs", "pulls", REPO, "--state open"),
        ],
        [route(1, "coder", watch="wms-issues"), route(2, "reviewer", watch="wms-prs")],
        ["coder", "reviewer"],
    )


def bodies(rig: Rig, agent: str) -> list[str]:
    return [e["body"] for e in rig.inbox(agent)]


def test_first_poll_is_a_snapshot_then_changes_fire(rig: Rig, fake: FakeGitHub) -> None:
    fake.open_issue(REPO, "Old crash", author="alice")
    p = rig.poller()
    cfg = basic_config()

    p.run_once(cfg, force=True)
    assert rig.inbox("coder") == []

    n = fake.open_issue(REPO, "Scanner crash", author="bob", association="NONE")
    p.run_once(cfg, force=True)
    [event] = rig.inbox("coder")
    assert event["source"] == "github"
    assert event["metadata"]["number"] == n and event["metadata"]["watch"] == "wms-issues"
    assert event["body"].startswith(f"[FROM github | issues {REPO}#{n} opened] Scanner crash")
    assert "@bob (NONE)" in event["body"]
    assert rig.inbox("reviewer") == []


def test_an_update_refires_with_what_changed(rig: Rig, fake: FakeGitHub) -> None:
    n = fake.open_issue(REPO, "Crash")
    p = rig.poller()
    cfg = basic_config()
    p.run_once(cfg, force=True)
    fake.label(REPO, n, "needs-human")
    p.run_once(cfg, force=True)
    fake.comment(REPO, n, "alice", "me too")
    p.run_once(cfg, force=True)
    p.run_once(cfg, force=True)  # nothing new: nothing delivered
    assert [b.split("]")[0] for b in bodies(rig, "coder")] == [
        f"[FROM github | issues {REPO}#{n} labeled needs-human",
        f"[FROM github | issues {REPO}#{n} new comment",
    ]


def test_two_changes_within_one_second_are_both_delivered(tmp_path: Path) -> None:
    from relayfleet.fakes.github import ManualClock

    clock = ManualClock()
    with FakeGitHub(clock=clock) as fake:
        fake.add_repo(REPO)
        rig = make_rig(tmp_path, fake, clock)
        n = fake.open_issue(REPO, "Crash")
        p = rig.poller()
        cfg = basic_config()
        p.run_once(cfg, force=True)
        clock.advance(5)
        fake.label(REPO, n, "bug")
        p.run_once(cfg, force=True)
        fake.label(REPO, n, "urgent")  # same second: same updated_at
        p.run_once(cfg, force=True)
    got = rig.inbox("coder")
    assert len(got) == 2
    assert got[0]["metadata"]["updated_at"] == got[1]["metadata"]["updated_at"]
    assert got[0]["metadata"]["dedup_key"] != got[1]["metadata"]["dedup_key"]
    assert "labeled urgent" in got[1]["body"]


def test_a_new_agent_sees_no_backlog(rig: Rig, fake: FakeGitHub) -> None:
    n = fake.open_issue(REPO, "Crash")
    p = rig.poller()
    p.run_once(basic_config(), force=True)
    fake.label(REPO, n, "bug")
    p.run_once(basic_config(), force=True)
    assert len(rig.inbox("coder")) == 1

    # A manager joins the route later: the label it happened before is not news to it.
    cfg = config(
        list(basic_config().watches),
        [route(1, ["coder", "manager"], watch="wms-issues")],
        ["coder", "reviewer", "manager"],
    )
    p.run_once(cfg, force=True)
    assert rig.inbox("manager") == []
    fake.comment(REPO, n, "alice", "ping")
    p.run_once(cfg, force=True)
    assert len(rig.inbox("manager")) == 1
    assert len(rig.inbox("coder")) == 2


def test_a_restart_neither_replays_nor_loses(rig: Rig, fake: FakeGitHub) -> None:
    n = fake.open_issue(REPO, "Crash")
    cfg = basic_config()
    rig.poller().run_once(cfg, force=True)
    fake.label(REPO, n, "bug")
    rig.poller().run_once(cfg, force=True)
    fake.reset_log()

    again = rig.poller()  # restarted: cursor and validators come from disk
    again.run_once(cfg, force=True)
    assert len(rig.inbox("coder")) == 1
    assert fake.count(status=304) == 1  # the persisted ETag still works
    fake.comment(REPO, n, "alice", "still broken")
    again.run_once(cfg, force=True)
    assert "new comment" in rig.inbox("coder")[-1]["body"].split("]")[0]
    fake.close(REPO, n)  # `--state open`: a closed issue leaves the watch, like gh's list
    again.run_once(cfg, force=True)
    assert len(rig.inbox("coder")) == 2


def test_one_request_per_repo_and_endpoint_per_cycle(rig: Rig, fake: FakeGitHub) -> None:
    watches = [watch(f"w{i}", kind, REPO, f"--label l{i}") for i, kind in
               enumerate(["issues", "issues", "pulls", "pulls", "issues"])]  # fmt: skip
    watches += [watch("runs", "runs", REPO), watch("site", "issues", "acme/site")]
    watches += [watch("mentions", "notifications", "", "--reason mention")]
    cfg = config(watches, [route(1, "coder", repo=REPO)], ["coder"])
    p = rig.poller()
    p.run_once(cfg, force=True)
    streams = [f"/repos/{REPO}/issues", f"/repos/{REPO}/actions/runs", "/repos/acme/site/issues",
               "/notifications"]  # fmt: skip
    # The first cycle also asks once which runs are unfinished (in_progress, queued).
    assert sorted(r.path for r in fake.requests) == sorted(
        [*streams, f"/repos/{REPO}/actions/runs", f"/repos/{REPO}/actions/runs"]
    )
    fake.reset_log()
    p.run_once(cfg, force=True)
    assert sorted(r.path for r in fake.requests) == sorted(streams)
    assert fake.count(status=304) == 4  # the second cycle cost no rate-limit point


def test_a_404_marks_its_watches_broken_and_the_others_continue(rig: Rig, fake: FakeGitHub) -> None:
    cfg = config(
        [watch("wms", "issues", REPO), watch("site", "issues", "acme/site")],
        [route(1, "coder")],
        ["coder"],
    )
    p = rig.poller()
    p.run_once(cfg, force=True)
    fake.not_found_repo(REPO)
    fake.open_issue("acme/site", "Typo")
    p.run_once(cfg, force=True)
    assert list(p.broken) == ["wms"]
    assert [e["metadata"]["repo"] for e in rig.inbox("coder")] == ["acme/site"]
    from relayfleet.core.atomic import read_json

    assert "wms" in read_json(rig.paths.router_status)["broken"]


def test_a_5xx_or_malformed_body_is_retried_and_loses_nothing(rig: Rig, fake: FakeGitHub) -> None:
    cfg = basic_config()
    p = rig.poller()
    p.run_once(cfg, force=True)
    n = fake.open_issue(REPO, "Crash")
    fake.fail_next(1, status=502)
    report = p.run_once(cfg, force=True)
    assert report.errors and rig.inbox("coder") == []
    fake.malformed_next(1)
    p.run_once(cfg, force=True)
    assert rig.inbox("coder") == []
    p.run_once(cfg, force=True)
    assert [e["metadata"]["number"] for e in rig.inbox("coder")] == [n]


def test_a_bad_token_stops_with_a_fix(rig: Rig, fake: FakeGitHub) -> None:
    fake.revoke_token(fake.token)
    with pytest.raises(GitHubError) as err:
        rig.poller().run_once(basic_config(), force=True)
    assert err.value.status == 401
    assert any("gh auth login" in h for h in err.value.hints)


def test_runs_and_notifications_are_routed(rig: Rig, fake: FakeGitHub) -> None:
    cfg = config(
        [
            watch("ci", "runs", REPO, "--status failure"),
            watch("mentions", "notifications", "", "--reason mention,review_requested"),
        ],
        [route(1, "fixer", watch="ci"), route(2, "manager", watch="mentions")],
        ["fixer", "manager"],
    )
    p = rig.poller()
    p.run_once(cfg, force=True)
    run_id = fake.add_run(REPO, "CI", status="in_progress")
    n = fake.open_issue(REPO, "Help")
    fake.mention(REPO, n, fake.login, by="alice")
    p.run_once(cfg, force=True)
    assert rig.inbox("fixer") == []  # still running: not a failure yet
    fake.update_run(REPO, run_id, "completed", "failure")
    p.run_once(cfg, force=True)
    [failed] = rig.inbox("fixer")
    assert "run failed" in failed["body"] and failed["metadata"]["number"] == run_id
    [mention] = rig.inbox("manager")
    assert "mentioned" in mention["body"] and mention["metadata"]["kind"] == "notifications"


def test_at_me_resolves_to_the_token_login(rig: Rig, fake: FakeGitHub) -> None:
    cfg = config(
        [watch("mine", "issues", REPO, "--search 'assignee:@me is:open'")],
        [route(1, "coder", watch="mine")],
        ["coder"],
    )
    p = rig.poller()
    p.run_once(cfg, force=True)
    a = fake.open_issue(REPO, "For me")
    b = fake.open_issue(REPO, "For someone else")
    fake.assign(REPO, a, fake.login)
    fake.assign(REPO, b, "alice")
    p.run_once(cfg, force=True)
    assert [e["metadata"]["number"] for e in rig.inbox("coder")] == [a]


def test_only_new_items_are_announced_as_opened(tmp_path: Path) -> None:
    """A first sighting says "opened" only for an item created since the stream last looked;
    an old issue that shows up because it was just assigned says so instead."""
    from relayfleet.fakes.github import ManualClock

    clock = ManualClock()
    with FakeGitHub(clock=clock) as fake:
        fake.add_repo(REPO)
        rig = make_rig(tmp_path, fake, clock)
        old = fake.open_issue(REPO, "Old crash")
        clock.advance(3 * 86_400)  # older than the first poll's look-back
        cfg = config(
            [watch("mine", "issues", REPO, "--assignee bob --state open")],
            [route(1, "coder", watch="mine")],
            ["coder"],
        )
        p = rig.poller()
        p.run_once(cfg, force=True)  # the snapshot
        clock.advance(60)
        quick = fake.open_issue(REPO, "Scanner crash")
        clock.advance(5)
        fake.assign(REPO, quick, "bob")  # opened and assigned within seconds
        slow = fake.open_issue(REPO, "Printer jam")
        clock.advance(900)
        fake.assign(REPO, slow, "bob")  # assigned long after, but still new to us
        fake.assign(REPO, old, "bob")
        p.run_once(cfg, force=True)
    heads = {e["metadata"]["number"]: e["body"].split("]")[0] for e in rig.inbox("coder")}
    assert heads == {
        quick: f"[FROM github | issues {REPO}#{quick} opened",
        slow: f"[FROM github | issues {REPO}#{slow} opened",
        old: f"[FROM github | issues {REPO}#{old} now matches (assigned to @bob)",
    }
