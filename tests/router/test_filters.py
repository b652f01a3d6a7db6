"""gh-style watch filters -> Query, applied locally (ARCHITECTURE 5.2)."""

from __future__ import annotations

import pytest

from relayfleet.core.errors import ConfigError
from relayfleet.fleet.filters import parse_filter
from relayfleet.router.items import Item


def issue(**kw) -> Item:
    base = {"kind": "issues", "repo": "acme/wms", "number": 1, "state": "open"}
    return Item(**{**base, **kw})


def test_the_seed_starter_filter() -> None:
    q = parse_filter("issues", "--search assignee:@me --state open")
    assert q.assignee == "@me" and q.state == "open"
    assert q.matches(issue(assignees=("bot",)), me="bot")
    assert not q.matches(issue(assignees=("alice",)), me="bot")
    assert not q.matches(issue(assignees=("bot",), state="closed"), me="bot")


def test_default_state_is_open_like_gh() -> None:
    q = parse_filter("issues", "")
    assert q.matches(issue()) and not q.matches(issue(state="closed"))
    assert parse_filter("issues", "--state all").matches(issue(state="closed"))


def test_an_issues_watch_skips_prs_and_a_pulls_watch_skips_issues() -> None:
    pr = issue(kind="pulls")
    assert not parse_filter("issues", "").matches(pr)
    assert parse_filter("pulls", "").matches(pr)
    assert not parse_filter("pulls", "").matches(issue())
    assert parse_filter("issues", "-S is:pr").matches(pr)


def test_labels_all_of_any_of_and_not() -> None:
    q = parse_filter("issues", "-l bug --label ui")
    assert q.matches(issue(labels=("UI", "bug", "x")))
    assert not q.matches(issue(labels=("bug",)))
    q = parse_filter("issues", "--search 'label:p1,p2 -label:wontfix'")
    assert q.matches(issue(labels=("p2",)))
    assert not q.matches(issue(labels=("p2", "wontfix")))
    assert not q.matches(issue(labels=("p3",)))


def test_search_qualifiers_and_free_words() -> None:
    q = parse_filter(
        "pulls", '--search "review-requested:@me is:open is:draft author:alice scanner crash"'
    )
    pr = issue(kind="pulls", author="alice", reviewers=("bot",), draft=True,
               title="Scanner: fix the crash")  # fmt: skip
    assert q.matches(pr, me="bot")
    assert not q.matches(pr, me="someone")
    assert not q.matches(replace_title(pr, "Scanner tweak"), me="bot")
    assert parse_filter("issues", "-S no:assignee").matches(issue())
    assert not parse_filter("issues", "-S no:assignee").matches(issue(assignees=("a",)))
    assert parse_filter("issues", "--mention bot").matches(issue(body_excerpt="cc @bot"))
    assert parse_filter("issues", "-S involves:bob").matches(issue(assignees=("bob",)))
    assert parse_filter("pulls", "--state merged").matches(issue(kind="pulls", merged=True,
                                                                state="closed"))  # fmt: skip


def replace_title(item: Item, title: str) -> Item:
    from dataclasses import replace

    return replace(item, title=title)


def test_runs_filters() -> None:
    q = parse_filter("runs", "--status failure -b main --workflow ci.yml --event push")
    run = Item(kind="runs", repo="a/b", number=9, run_status="completed", run_conclusion="failure",
               branch="main", workflow="CI", workflow_path=".github/workflows/ci.yml",
               event="push")  # fmt: skip
    assert q.matches(run)
    from dataclasses import replace

    assert not q.matches(replace(run, run_conclusion="success"))
    assert parse_filter("runs", "-w CI").matches(run)
    assert parse_filter("runs", "--status completed").matches(run)


def test_notification_reasons() -> None:
    q = parse_filter("notifications", "--reason mention,review_requested")
    n = Item(kind="notifications", repo="a/b", number=1, reason="review_requested")
    assert q.matches(n)
    from dataclasses import replace

    assert not q.matches(replace(n, reason="subscribed"))


@pytest.mark.parametrize(
    ("kind", "text", "named"),
    [
        ("issues", "--state open --colour red", "--colour"),
        ("issues", "--status failure", "--status"),
        ("runs", "--label bug", "--label"),
        ("notifications", "--state open", "--state"),
        ("issues", "--search 'milestone:v1'", "milestone:"),
        ("issues", "--state opened", "opened"),
        ("runs", "--status broken", "broken"),
        ("notifications", "--reason gossip", "gossip"),
        ("issues", "stray", "stray"),
        ("issues", "--search 'unclosed quote", "cannot parse"),
        ("wiki", "", "wiki"),
    ],
)
def test_a_bad_filter_is_a_config_error_that_names_the_problem(kind, text, named) -> None:
    with pytest.raises(ConfigError) as err:
        parse_filter(kind, text)
    assert named in str(err.value)


def test_an_unknown_flag_lists_what_the_kind_accepts() -> None:
    with pytest.raises(ConfigError) as err:
        parse_filter("runs", "--assignee me")
    assert any("--branch" in h and "--status" in h for h in err.value.hints)


def test_at_me_without_a_login_is_an_error() -> None:
    with pytest.raises(ConfigError):
        parse_filter("issues", "-a @me").matches(issue(assignees=("x",)))
