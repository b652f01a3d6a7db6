"""ARCHITECTURE 5.1 / 5.3: the algebra of routing and the dedup key, pinned by Hypothesis."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from relayfleet.fleet.model import Route
from relayfleet.router.items import Item
from relayfleet.router.match import dedup_key, explain, recipients, route_matches

AGENTS = ["coder", "reviewer", "manager", "triage"]
REPOS = ["acme/WMS", "acme/site", "other/x"]
LABELS = ["bug", "needs-human", "ui", "P1"]
WATCHES = ["w1", "w2", "w3"]

items = st.builds(
    Item,
    kind=st.sampled_from(["issues", "pulls", "runs", "notifications"]),
    repo=st.sampled_from(REPOS),
    number=st.integers(1, 50),
    title=st.sampled_from(["Fix scanner crash", "Docs", "CRASH on boot", ""]),
    state=st.sampled_from(["open", "closed"]),
    labels=st.lists(st.sampled_from(LABELS), unique=True, max_size=3).map(tuple),
    author=st.sampled_from(["alice", "bob", "Mallory"]),
    association=st.sampled_from(["OWNER", "MEMBER", "NONE", "CONTRIBUTOR"]),
    assignees=st.lists(st.sampled_from(["al", "bo"]), unique=True, max_size=2).map(tuple),
    updated_at=st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"]),
    watch=st.sampled_from(WATCHES),
    comments=st.integers(0, 5),
    head_sha=st.sampled_from(["", "a" * 40, "b" * 40]),
    run_status=st.sampled_from(["", "queued", "completed"]),
    run_conclusion=st.sampled_from(["", "success", "failure"]),
)

values = {
    "watch": st.sampled_from(WATCHES),
    "repo": st.sampled_from([*REPOS, "ACME/wms", "acme/*"]),
    "kind": st.sampled_from(["issues", "pulls", "runs"]),
    "label": st.sampled_from(LABELS),
    "author": st.sampled_from(["alice", "BOB"]),
    "state": st.sampled_from(["open", "closed", "all"]),
    "title_contains": st.sampled_from(["crash", "DOCS"]),
    "association": st.sampled_from(["OWNER", "member", "NONE"]),
}
match_dicts = st.dictionaries(st.sampled_from(sorted(values)), st.just(None), max_size=3).flatmap(
    lambda d: st.fixed_dictionaries(
        {k: st.lists(values[k], min_size=1, max_size=2, unique=True).map(tuple) for k in d}
    )
)
routes_st = st.builds(
    lambda m, to: Route(index=1, match=m, to=tuple(to)),
    match_dicts,
    st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3, unique=True),
)
route_lists = st.lists(routes_st, max_size=6)


@given(items, route_lists)
def test_recipients_are_the_union_of_matching_routes(item: Item, routes: list[Route]) -> None:
    expected = set()
    for r in routes:
        if route_matches(r, item):
            expected |= set(r.to)
    assert recipients(item, routes) == expected


@given(items, route_lists, st.randoms())
def test_the_order_of_routes_is_irrelevant(item: Item, routes: list[Route], rnd) -> None:
    shuffled = list(routes)
    rnd.shuffle(shuffled)
    assert recipients(item, shuffled) == recipients(item, routes)


@given(items, route_lists)
def test_routing_is_idempotent(item: Item, routes: list[Route]) -> None:
    assert recipients(item, routes + routes) == recipients(item, routes)
    assert recipients(item, routes) == recipients(item, routes)


@given(items, route_lists, routes_st)
def test_adding_a_route_never_removes_a_recipient(item: Item, routes, extra: Route) -> None:
    assert recipients(item, routes) <= recipients(item, [*routes, extra])


@given(items, routes_st)
def test_absent_keys_are_wildcards(item: Item, route: Route) -> None:
    # Removing a key can only widen a route; the empty match takes everything.
    assert route_matches(Route(index=1, match={}, to=route.to), item)
    for key in route.match:
        fewer = {k: v for k, v in route.match.items() if k != key}
        if route_matches(route, item):
            assert route_matches(Route(index=1, match=fewer, to=route.to), item)


@given(items, routes_st)
def test_a_list_is_any_of(item: Item, route: Route) -> None:
    for key, vals in route.match.items():
        single = [route_matches(Route(1, {key: (v,)}, route.to), item) for v in vals]
        assert route_matches(Route(1, {key: vals}, route.to), item) == any(single)


@given(items)
def test_the_dedup_key_is_stable_for_an_unchanged_item(item: Item) -> None:
    assert dedup_key(item) == dedup_key(replace(item))
    # Presentation-only fields (which watch saw it, what we said changed) do not matter.
    assert dedup_key(item) == dedup_key(replace(item, watch="other", change="x", title="T2"))


@given(items, st.sampled_from(["updated_at", "state", "labels", "assignees", "comments",
                               "head_sha", "run_status", "run_conclusion"]))  # fmt: skip
def test_the_dedup_key_changes_with_every_field_that_matters(item: Item, field: str) -> None:
    changed = {
        "updated_at": item.updated_at + "x",
        "state": "closed" if item.state == "open" else "open",
        "labels": (*item.labels, "brand-new"),
        "assignees": (*item.assignees, "newcomer"),
        "comments": item.comments + 1,
        "head_sha": item.head_sha + "c",
        "run_status": item.run_status + "-x",
        "run_conclusion": item.run_conclusion + "-x",
    }[field]
    assert dedup_key(replace(item, **{field: changed})) != dedup_key(item)


@given(items)
def test_label_order_does_not_change_the_key(item: Item) -> None:
    flipped = replace(item, labels=tuple(reversed(item.labels)))
    assert dedup_key(flipped) == dedup_key(item)


def test_keys_match_case_insensitively_where_github_does() -> None:
    item = Item(kind="pulls", repo="acme/WMS", number=7, title="Fix Scanner", labels=("Bug",),
                author="Alice", association="MEMBER", state="open", watch="w")  # fmt: skip
    r = Route(1, {"repo": ("ACME/wms",), "label": ("bug",), "author": ("alice",),
                  "title_contains": ("scanner",), "association": ("member",)}, ("x",))  # fmt: skip
    assert route_matches(r, item)
    assert not route_matches(Route(1, {"kind": ("issues",)}, ("x",)), item)
    assert not route_matches(Route(1, {"nonsense": ("1",)}, ("x",)), item)  # fails closed


def test_explain_says_which_key_failed_and_why() -> None:
    item = Item(kind="issues", repo="acme/WMS", number=1, association="NONE", watch="w")
    r = Route(1, {"watch": ("w",), "association": ("OWNER", "MEMBER")}, ("coder",))
    rows = explain(r, item)
    assert rows[0][:2] == ("watch", True)
    assert rows[1][:2] == ("association", False)
    assert "any of OWNER, MEMBER" in rows[1][2] and "NONE" in rows[1][2]
    assert explain(Route(1, {}, ("x",)), item)[0][1] is True
