"""The fake GitHub speaks the REST endpoints the router polls, the way GitHub does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from relayfleet.fakes.github import DEFAULT_TOKEN, FakeGitHub, ManualClock, RemoteFakeGitHub

REPO = "acme/app"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
# Keys of an issue in a recorded GitHub response (octokit/fixtures paginate-issues).
RECORDED_ISSUE_KEYS = {
    "url", "repository_url", "labels_url", "comments_url", "events_url", "html_url", "id",
    "node_id", "number", "title", "user", "labels", "state", "locked", "assignee", "assignees",
    "milestone", "comments", "created_at", "updated_at", "closed_at", "author_association",
    "active_lock_reason", "body", "performed_via_github_app",
}  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(clock=ManualClock())
    fake.start()
    fake.add_repo(REPO)
    yield fake
    fake.stop()


def get(fake: FakeGitHub, path: str, headers: dict[str, str] | None = None, **params: Any):
    return httpx.get(
        fake.base_url + path, params=params, headers={**AUTH, **(headers or {})}, timeout=10
    )


def test_a_token_is_required(fake: FakeGitHub) -> None:
    missing = httpx.get(fake.base_url + "/user", timeout=10)
    wrong = httpx.get(fake.base_url + "/user", headers={"Authorization": "Bearer x"}, timeout=10)
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["message"] == "Bad credentials"
    assert get(fake, "/user").json()["login"] == "octocat"


def test_issues_look_like_recorded_github_issues(fake: FakeGitHub) -> None:
    n = fake.open_issue(REPO, "Scanner crashes", author="alice", association="NONE")
    fake.label(REPO, n, "bug")
    fake.assign(REPO, n, "bob")
    pr = fake.open_pr(REPO, "Fix scanner", author="bob")

    items = get(fake, f"/repos/{REPO}/issues", state="all").json()
    by_number = {i["number"]: i for i in items}

    issue = by_number[n]
    assert set(issue) >= RECORDED_ISSUE_KEYS
    assert "pull_request" not in issue
    assert issue["user"]["login"] == "alice" and issue["author_association"] == "NONE"
    assert issue["labels"][0]["name"] == "bug" and issue["assignees"][0]["login"] == "bob"
    assert issue["html_url"] == f"https://github.com/{REPO}/issues/{n}"
    assert by_number[pr]["pull_request"]["url"].endswith(f"/repos/{REPO}/pulls/{pr}")
    assert issue["updated_at"].endswith("Z")


def test_issue_filters_and_order(fake: FakeGitHub) -> None:
    clock: ManualClock = fake.clock  # type: ignore[assignment]
    a = fake.open_issue(REPO, "a", labels=["bug", "p1"])
    clock.advance(10)
    b = fake.open_issue(REPO, "b", labels=["bug"])
    clock.advance(10)
    c = fake.open_issue(REPO, "c")
    fake.assign(REPO, c, "bob")
    clock.advance(10)
    fake.close(REPO, b)
    clock.advance(10)
    fake.comment(REPO, a, "carol")

    def numbers(**q: Any) -> list[int]:
        return [i["number"] for i in get(fake, f"/repos/{REPO}/issues", **q).json()]

    assert numbers() == [c, a]  # default: open, newest created first
    assert numbers(state="closed") == [b]
    assert numbers(state="all", sort="updated") == [a, b, c]
    assert numbers(state="all", sort="updated", direction="asc") == [c, b, a]
    assert numbers(state="all", labels="bug,p1") == [a]
    assert numbers(state="all", assignee="bob") == [c]
    assert numbers(state="all", assignee="none") == [b, a]
    by_update = get(fake, f"/repos/{REPO}/issues", state="all", sort="updated").json()
    since = by_update[1]["updated_at"]  # b's: `since` includes the boundary
    assert numbers(state="all", sort="updated", since=since) == [a, b]


def test_changes_within_one_second_share_updated_at_but_not_the_etag(fake: FakeGitHub) -> None:
    n = fake.open_issue(REPO, "Scanner crashes")
    first = get(fake, f"/repos/{REPO}/issues")
    fake.label(REPO, n, "bug")  # same second on the fake clock
    second = get(fake, f"/repos/{REPO}/issues", {"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert first.json()[0]["updated_at"] == second.json()[0]["updated_at"]
    assert first.headers["etag"] != second.headers["etag"]


def test_304_is_free_and_200_costs_a_point(fake: FakeGitHub) -> None:
    fake.open_issue(REPO, "Scanner crashes")
    first = get(fake, f"/repos/{REPO}/issues")
    again = get(fake, f"/repos/{REPO}/issues", {"If-None-Match": first.headers["etag"]})
    assert first.status_code == 200 and again.status_code == 304
    assert first.headers["x-ratelimit-remaining"] == again.headers["x-ratelimit-remaining"]
    assert int(first.headers["x-ratelimit-used"]) == 1 == fake.points_used
    assert set(first.headers) >= {
        "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset",
        "x-ratelimit-resource",
    }  # fmt: skip
    assert get(fake, "/rate_limit").json()["resources"]["core"]["used"] == 1  # not charged


def test_etags_are_token_specific(fake: FakeGitHub) -> None:
    fake.add_token("ghp_second")
    a = get(fake, f"/repos/{REPO}/issues")
    b = get(fake, f"/repos/{REPO}/issues", {"Authorization": "Bearer ghp_second"})
    assert a.json() == b.json() and a.headers["etag"] != b.headers["etag"]


def test_pagination_links(fake: FakeGitHub) -> None:
    for i in range(5):
        fake.open_issue(REPO, f"i{i}")
    first = get(fake, f"/repos/{REPO}/issues", per_page=2)
    assert len(first.json()) == 2
    assert 'rel="next"' in first.headers["link"] and "page=2" in first.headers["link"]
    assert "page=3" in first.headers["link"]  # rel="last"
    last = get(fake, f"/repos/{REPO}/issues", per_page=2, page=3)
    assert len(last.json()) == 1 and 'rel="next"' not in last.headers["link"]


def test_pulls_carry_the_head_sha_that_push_commit_moves(fake: FakeGitHub) -> None:
    pr = fake.open_pr(REPO, "Fix", author="bob")
    before = get(fake, f"/repos/{REPO}/pulls").json()[0]
    sha = fake.push_commit(REPO, pr)
    after = get(fake, f"/repos/{REPO}/pulls").json()[0]
    assert before["head"]["sha"] != after["head"]["sha"] == sha
    assert after["number"] == pr and after["id"] != before["id"] - 1


def test_workflow_runs_endpoint(fake: FakeGitHub) -> None:
    clock: ManualClock = fake.clock  # type: ignore[assignment]
    ok = fake.add_run(REPO, "CI", "completed", "success")
    clock.advance(5)
    bad = fake.add_run(REPO, "CI", "in_progress")
    fake.update_run(REPO, bad, "completed", "failure")
    body = get(fake, f"/repos/{REPO}/actions/runs").json()
    assert body["total_count"] == 2
    assert [r["id"] for r in body["workflow_runs"]] == [bad, ok]
    assert body["workflow_runs"][0]["conclusion"] == "failure"
    failed = get(fake, f"/repos/{REPO}/actions/runs", status="failure").json()
    assert [r["id"] for r in failed["workflow_runs"]] == [bad]


def test_notifications_poll_with_last_modified(fake: FakeGitHub) -> None:
    fake.poll_interval = 60
    n = fake.open_issue(REPO, "Scanner crashes")
    fake.mention(REPO, n, "octocat")
    fake.notify(REPO, n, "someone-else", "mention")  # not ours

    first = get(fake, "/notifications", all="true")
    assert first.headers["x-poll-interval"] == "60"
    assert [(t["reason"], t["subject"]["type"]) for t in first.json()] == [("mention", "Issue")]
    lm = first.headers["last-modified"]
    assert parsedate_to_datetime(lm)
    assert get(fake, "/notifications", {"If-Modified-Since": lm}, all="true").status_code == 304

    fake.clock.advance(2)  # type: ignore[attr-defined]
    fake.mention(REPO, n, "octocat")
    assert get(fake, "/notifications", {"If-Modified-Since": lm}, all="true").status_code == 200


def test_faults_5xx_secondary_malformed_and_missing_repo(fake: FakeGitHub) -> None:
    path = f"/repos/{REPO}/issues"
    fake.fail_next(2, status=503)
    assert [get(fake, path).status_code for _ in range(3)] == [503, 503, 200]

    fake.secondary_limit(1, retry_after=42)
    limited = get(fake, path)
    assert limited.status_code == 403 and limited.headers["retry-after"] == "42"
    assert "secondary rate limit" in limited.json()["message"]
    fake.secondary_limit(1, retry_after=None, status=429)
    assert get(fake, path).status_code == 429

    fake.malformed_next(1)
    broken = get(fake, path)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()

    fake.not_found_repo(REPO)
    assert get(fake, path).status_code == 404
    fake.clear_faults()
    assert get(fake, path).status_code == 200


def test_faults_can_target_one_path(fake: FakeGitHub) -> None:
    fake.add_repo("acme/other")
    fake.fail_next(1, path_prefix="/repos/acme/other")
    assert get(fake, f"/repos/{REPO}/issues").status_code == 200
    assert get(fake, "/repos/acme/other/issues").status_code == 500


def test_slow_fault_delays_one_answer(fake: FakeGitHub) -> None:
    fake.slow_next(1, delay=3.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(fake.base_url + "/user", headers=AUTH, timeout=0.3)
    assert get(fake, "/user").status_code == 200


def test_the_primary_window_runs_out_and_resets(fake: FakeGitHub) -> None:
    fake.set_rate_limit(limit=2)
    assert [get(fake, "/user").status_code for _ in range(3)] == [200, 200, 403]
    fake.clock.advance(3600)  # type: ignore[attr-defined]
    assert get(fake, "/user").status_code == 200


def test_every_request_is_counted_without_the_token(fake: FakeGitHub) -> None:
    get(fake, f"/repos/{REPO}/issues", state="all")
    get(fake, "/repos/acme/none/issues")
    assert fake.count() == 2
    assert fake.count(path_prefix="/repos/acme/none", status=404) == 1
    rec = fake.requests[0]
    assert (rec.method, rec.path, rec.query) == ("GET", f"/repos/{REPO}/issues", {"state": "all"})
    assert DEFAULT_TOKEN not in repr(fake.requests)
    fake.reset_log()
    assert fake.count() == 0


def test_runs_as_a_separate_process_driven_remotely() -> None:
    argv = ["--port", "0", "--print-url", "--repo", REPO]
    proc = subprocess.Popen(
        [sys.executable, "-m", "relayfleet.fakes.github", *argv],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        remote = RemoteFakeGitHub(url)
        n = remote.open_issue(REPO, "From afar", author="alice")
        remote.label(REPO, n, "bug")
        items = httpx.get(f"{url}/repos/{REPO}/issues", headers=AUTH, timeout=10).json()
        assert [(i["number"], i["labels"][0]["name"]) for i in items] == [(n, "bug")]
        assert [r["path"] for r in remote.requests()] == [f"/repos/{REPO}/issues"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_seed_repo_gives_the_history_of_a_busy_repository(fake: FakeGitHub) -> None:
    got = fake.seed_repo(REPO, issues=120, runs=100, in_progress=3)
    assert len(got["issues"]) + len(got["pulls"]) == 120 and len(got["pulls"]) == 30
    assert len(got["runs"]) == 100 and len(got["in_progress"]) == 3
    issues = get(fake, f"/repos/{REPO}/issues", state="all", per_page=100).json()
    assert len(issues) == 100 and {i["state"] for i in issues} == {"open", "closed"}
    assert sum("pull_request" in i for i in issues) > 0
    assert len({i["user"]["login"] for i in issues}) >= 4
    runs = get(fake, f"/repos/{REPO}/actions/runs").json()
    assert runs["total_count"] == 100 and len(runs["workflow_runs"]) == 30
    newest = {r["id"] for r in runs["workflow_runs"]}
    # The long jobs started before dozens of newer runs: none of them is on the first page.
    assert not newest & set(got["in_progress"])
    running = get(fake, f"/repos/{REPO}/actions/runs", status="in_progress").json()
    assert {r["id"] for r in running["workflow_runs"]} == set(got["in_progress"])


def test_one_run_by_id_and_a_missing_one(fake: FakeGitHub) -> None:
    run_id = fake.add_run(REPO, "CI", "in_progress")
    one = get(fake, f"/repos/{REPO}/actions/runs/{run_id}")
    assert one.status_code == 200 and one.json()["id"] == run_id
    again = get(
        fake, f"/repos/{REPO}/actions/runs/{run_id}", {"If-None-Match": one.headers["etag"]}
    )
    assert again.status_code == 304
    assert get(fake, f"/repos/{REPO}/actions/runs/1").status_code == 404


def test_bulk_label_changes_hundreds_of_items_in_one_second(fake: FakeGitHub) -> None:
    fake.seed_repo(REPO, issues=300, runs=0)
    assert fake.bulk_label(REPO, "triaged") == 300
    stamps = {i.updated_at for i in fake.repos[REPO].issues.values()}
    assert len(stamps) == 1
    assert fake.bulk_label(REPO, "p1", limit=5) == 5


def test_fail_next_can_target_one_page_of_a_list(fake: FakeGitHub) -> None:
    fake.seed_repo(REPO, issues=250, runs=0)
    fake.fail_next(1, status=502, path_prefix=f"/repos/{REPO}/issues", page=2)
    path = f"/repos/{REPO}/issues"
    assert get(fake, path, state="all", per_page=100).status_code == 200  # page 1 untouched
    assert get(fake, path, state="all", per_page=100, page=3).status_code == 200
    assert get(fake, path, state="all", per_page=100, page=2).status_code == 502
    assert get(fake, path, state="all", per_page=100, page=2).status_code == 200  # once only
