"""Which agents get an item (ARCHITECTURE 5.1) and its dedup key (5.3). Pure: no I/O.

A route matches when every key of its `match` matches (absent keys are wildcards); each key's
value is any-of. An item goes to the union of `to` across the matching routes. An unknown key
never matches: `validate` reports it, and failing closed beats a silent firehose.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable

from relayfleet.fleet.model import Route
from relayfleet.router.items import Item


def _eq_ci(want: str, have: str) -> bool:
    return want.casefold() == have.casefold()


def _repo(want: str, have: str) -> bool:
    # `acme/*` is allowed as a convenience; plain names compare case-insensitively.
    if any(c in want for c in "*?["):
        return fnmatch.fnmatchcase(have.casefold(), want.casefold())
    return _eq_ci(want, have)


def _state(want: str, item: Item) -> bool:
    want = want.lower()
    if want == "all":
        return True
    if want == "merged":
        return item.merged
    return want == item.state.lower()


# key -> (test of one wanted value against the item, what the item has, for `explain`)
_KEYS: dict[str, tuple[Callable[[str, Item], bool], Callable[[Item], str]]] = {
    "watch": (lambda v, i: v == i.watch, lambda i: i.watch or "(none)"),
    "repo": (lambda v, i: _repo(v, i.repo), lambda i: i.repo),
    "kind": (lambda v, i: v.lower() == i.kind, lambda i: i.kind),
    "label": (
        lambda v, i: any(_eq_ci(v, x) for x in i.labels),
        lambda i: ", ".join(i.labels) or "(no labels)",
    ),
    "author": (lambda v, i: _eq_ci(v, i.author), lambda i: i.author or "(none)"),
    "state": (_state, lambda i: i.state + (" (merged)" if i.merged else "")),
    "title_contains": (lambda v, i: v.casefold() in i.title.casefold(), lambda i: repr(i.title)),
    "association": (
        lambda v, i: _eq_ci(v, i.association),
        lambda i: i.association or "(unknown)",
    ),
}


def _values(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise TypeError(f"a match value is a string or a list, not {value!r}")
    return tuple(str(v) for v in value)


def key_matches(key: str, value: object, item: Item) -> bool:
    test = _KEYS.get(key)
    if test is None:
        return False
    wanted = _values(value)
    return any(test[0](v, item) for v in wanted)


def route_matches(route: Route, item: Item) -> bool:
    return all(key_matches(k, v, item) for k, v in route.match.items())


def recipients(item: Item, routes: Iterable[Route]) -> set[str]:
    """The union of `to` over every route that matches `item`."""
    out: set[str] = set()
    for route in routes:
        if route_matches(route, item):
            out.update(route.to)
    return out


def explain(route: Route, item: Item) -> list[tuple[str, bool, str]]:
    """Per key of the route: (key, matched, why), for `gh fleet route test`."""
    if not route.match:
        return [("*", True, "empty match: a catch-all, every item matches")]
    rows: list[tuple[str, bool, str]] = []
    for key, value in route.match.items():
        wanted = _values(value)
        shown = wanted[0] if len(wanted) == 1 else "any of " + ", ".join(wanted)
        if key not in _KEYS:
            rows.append((key, False, f"unknown match key {key!r} (never matches)"))
            continue
        ok = key_matches(key, value, item)
        rows.append((key, ok, f"wants {shown}; item has {_KEYS[key][1](item)}"))
    return rows


# -- dedup ----------------------------------------------------------------------------------
def fingerprint(item: Item) -> str:
    """A short hash of the fields that matter. GitHub timestamps have one-second resolution, so
    two changes within a second share `updated_at`; this tells them apart."""
    fields = [
        item.state,
        sorted(x.casefold() for x in item.labels),
        sorted(x.casefold() for x in item.assignees),
        item.comments,
        item.head_sha,
        item.run_status,
        item.run_conclusion,
        item.run_attempt,
        item.merged,
        item.draft,
        item.reason,
    ]
    raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


def dedup_key(item: Item) -> str:
    """kind + repo + number (run/thread id) + updated_at + fingerprint. Watch-independent, so
    an item seen through two watches still reaches each agent once."""
    return f"{item.item_id}@{item.updated_at}~{fingerprint(item)}"
