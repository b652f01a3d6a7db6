"""REST JSON -> Item, checked on real recorded GitHub responses (octokit/fixtures) and the fake."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub
from relayfleet.router.items import (
    Item,
    describe_change,
    item_from_dict,
    item_from_rest,
    summary,
)

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_a_recorded_issues_page_parses() -> None:
    rec = recorded("octokit-paginate-issues-page1.json")
    assert 'rel="next"' in rec["headers"]["link"]
    items = [
        item_from_rest("issues", "octokit-fixture-org/paginate-issues", o) for o in rec["response"]
    ]
    assert [i.number for i in items] == [13, 12, 11]
    first = items[0]
    assert first.kind == "issues" and first.state == "open"
    assert first.repo == "octokit-fixture-org/paginate-issues"  # from repository_url
    assert first.author == "octokit-fixture-user-a" and first.association == "MEMBER"
    assert first.updated_at == "2017-10-10T16:00:00Z"
    assert first.url == "https://github.com/octokit-fixture-org/paginate-issues/issues/13"
    assert first.item_id == "issues:octokit-fixture-org/paginate-issues#13"


def test_recorded_search_results_parse_with_their_associations() -> None:
    rec = recorded("octokit-search-issues.json")
    items = [item_from_rest("issues", "", o) for o in rec["response"]["items"]]
    assert [(i.number, i.association) for i in items] == [(2, "NONE"), (1, "MEMBER")]
    assert all(i.repo == "octokit-fixture-org/search-issues" for i in items)


def test_a_recorded_issue_and_its_labels() -> None:
    rec = recorded("octokit-create-issue.json")
    obj = dict(rec["response"], labels=rec["labels_added"])
    item = item_from_rest("issues", "x/y", obj)
    assert item.labels == ("Foo", "bAr", "baZ")
    assert describe_change(None, item) == "opened"  # created_at == updated_at
    prev = summary(replace(item, labels=()))
    assert describe_change(prev, item) == "labeled Foo, bAr, baZ"


@pytest.fixture(scope="module")
def fake() -> FakeGitHub:
    gh = FakeGitHub()
    gh.add_repo("acme/wms")
    return gh


def test_a_pull_request_from_the_issues_endpoint_is_a_pull(fake: FakeGitHub) -> None:
    n = fake.open_pr("acme/wms", "Fix crash", author="bob", draft=True)
    obj = fake.render_issue("acme/wms", fake.issue("acme/wms", n), "https://api.github.com")
    assert "pull_request" in obj
    item = item_from_rest("issues", "acme/wms", obj)
    assert item.kind == "pulls" and item.draft and item.author == "bob"
    pull = item_from_rest(
        "pulls", "acme/wms", fake.render_pull("acme/wms", fake.issue("acme/wms", n), "")
    )
    assert pull.kind == "pulls" and len(pull.head_sha) == 40 and pull.base == "main"


def test_a_workflow_run(fake: FakeGitHub) -> None:
    rid = fake.add_run("acme/wms", "CI", status="completed", conclusion="failure", branch="dev")
    run = next(r for r in fake.repos["acme/wms"].runs if r.id == rid)
    item = item_from_rest("runs", "acme/wms", fake.render_run("acme/wms", run, ""))
    assert (item.kind, item.number, item.run_status, item.run_conclusion) == (
        "runs",
        rid,
        "completed",
        "failure",
    )
    assert item.workflow == "CI" and item.branch == "dev"
    assert item.item_id == f"runs:acme/wms#{rid}"
    assert describe_change(None, item) == "run failed"


def test_a_notification(fake: FakeGitHub) -> None:
    n = fake.open_issue("acme/wms", "Help")
    tid = fake.mention("acme/wms", n, fake.login, by="alice")
    thread = next(t for t in fake.threads if t.id == tid)
    item = item_from_rest("notifications", "", fake.render_thread(thread, "https://api.github.com"))
    assert item.kind == "notifications" and item.reason == "mention"
    assert item.repo == "acme/wms" and item.number == n
    assert item.url == f"https://github.com/acme/wms/issues/{n}"
    assert describe_change(None, item) == "mentioned"


def test_not_an_item_is_a_value_error() -> None:
    for kind, obj in [("issues", {"title": "x"}), ("runs", {"id": 1}), ("notifications", {})]:
        with pytest.raises(ValueError):
            item_from_rest(kind, "a/b", obj)


def test_what_changed_is_described() -> None:
    base = Item(
        kind="issues",
        repo="a/b",
        number=1,
        state="open",
        comments=1,
        labels=("bug",),
        head_sha="aaa",
        updated_at="t",
    )
    prev = summary(base)
    assert describe_change(prev, replace(base, comments=2)) == "new comment"
    assert describe_change(prev, replace(base, comments=4)) == "3 new comments"
    assert describe_change(prev, replace(base, state="closed")) == "closed"
    assert describe_change(prev, replace(base, state="closed", merged=True)) == "merged"
    assert describe_change(prev, replace(base, head_sha="bbb")) == "new commits"
    assert describe_change(prev, replace(base, labels=())) == "unlabeled bug"
    assert describe_change(prev, replace(base, assignees=("al",))) == "assigned @al"
    assert describe_change(prev, base) == "updated"


def test_a_first_sighting_says_opened_only_for_a_new_item() -> None:
    old = Item(
        kind="issues",
        repo="a/b",
        number=1,
        state="open",
        created_at="2025-06-01T10:00:00Z",
        updated_at="2026-01-01T09:00:00Z",
        assignees=("al",),
    )
    assert describe_change(None, old) == "now matches (assigned to @al)"
    assert describe_change(None, replace(old, assignees=())) == "now matches"
    # Created since the stream last looked: new, however long ago its last change.
    later = "2025-12-31T00:00:00Z"
    assert describe_change(None, replace(old, created_at=later), known_until=later) == "opened"
    assert describe_change(None, old, known_until=later) == "now matches (assigned to @al)"
    # Opened, then assigned a moment later (no watermark needed).
    quick = replace(old, created_at="2026-01-01T08:59:30Z")
    assert describe_change(None, quick) == "opened"
    closed = replace(old, state="closed", closed_at=old.updated_at)
    assert describe_change(None, closed) == "closed"
    assert describe_change(None, replace(closed, merged=True)) == "merged"
    # No timestamps at all (route test items): never claims an opening.
    assert describe_change(None, Item(kind="issues", repo="a/b", number=2)) == "now matches"


def test_the_route_test_item_shape() -> None:
    item = item_from_dict(
        {
            "repo": "acme/WMS",
            "kind": "pulls",
            "number": 7,
            "title": "T",
            "labels": "needs-human",
            "association": "member",
            "watch": "w",
        }
    )
    assert item.labels == ("needs-human",) and item.association == "MEMBER"
    assert (item.kind, item.state, item.watch) == ("pulls", "open", "w")
    with pytest.raises(ValueError):
        item_from_dict({"kind": "bogus"})
