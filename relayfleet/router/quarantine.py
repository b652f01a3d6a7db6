"""The quarantine: items from authors outside a route's gate, held for a trusted person's word.

A route with `untrusted = "hold"` (routes.toml) does not drop an item whose author is outside
its `association` list: the router puts it here instead of into any inbox. One entry per item
(a later update of a held item updates its entry), kept in `state/router/quarantine.json`
(0600, rewritten atomically under a lock, since the router and the CLI both change it).

An entry leaves the held set in one of three ways:
- `gh fleet quarantine release <id>`: delivered once to the agents it was held for, its event
  marked `released by @operator` (metadata `released_by`);
- a comment `/fleet ok` on the item by an author the fleet trusts (`[commands] allow`, by
  default OWNER, MEMBER, COLLABORATOR), like Prow's `ok-to-test`: released by that login;
- `gh fleet quarantine drop <id>`: discarded.

A release covers the version that was held; a later change by the outside author is held again
(a new entry), so every outside change gets a human look. Delivery is exactly once: the event id
is the one the router would have used (`event_id(agent, dedup_key)`), and every inbox transport
ignores an id it already has, so a release interrupted halfway and repeated delivers nothing
twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.errors import FleetError, NotFound
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Route
from relayfleet.router import hygiene
from relayfleet.router.delivery import build_event
from relayfleet.router.items import Item
from relayfleet.router.match import key_matches

HELD, RELEASED, DROPPED = "held", "released", "dropped"
KEEP_DECIDED = 500  # released/dropped entries kept (newest first) so a version is decided once


def quarantine_path(paths: FleetPaths) -> Path:
    return paths.router_state / "quarantine.json"


# -- pure: which routes hold an item, and the `/fleet ok` command ------------------------------
def held_by(route: Route, item: Item) -> bool:
    """`route` would send `item` but for its author: every key matches except `association`,
    and the route says `untrusted = "hold"`."""
    if route.untrusted != "hold" or not route.gated:
        return False
    if key_matches("association", route.match["association"], item):
        return False
    return all(key_matches(k, v, item) for k, v in route.match.items() if k != "association")


def why_held(route: Route, item: Item) -> str:
    who = f"@{item.author}" if item.author else "the author"
    gate = ", ".join(route.match.get("association", ()))
    what = item.association or "of unknown association"
    return f"{who} is {what}, outside route #{route.index}'s gate ({gate})"


_OK = re.compile(r"^[ \t]*/fleet[ \t]+ok[ \t]*$", re.IGNORECASE | re.MULTILINE)


def is_ok_command(body: str) -> bool:
    """A comment that says `/fleet ok` on a line of its own, as a reader sees it (a `/fleet ok`
    inside an HTML comment or split by invisible characters is not one)."""
    return bool(_OK.search(hygiene.clean(body).text))


def ok_author(
    comments: Iterable[dict[str, Any]], allow: Iterable[str], since: str = ""
) -> tuple[str, str] | None:
    """(login, created_at) of the first comment (REST shape) created after `since` that says
    `/fleet ok` and whose author's association is in `allow`; None if there is none."""
    trusted = {a.upper() for a in allow}
    for c in comments:
        created = str(c.get("created_at") or "") if isinstance(c, dict) else ""
        if not created or (since and created <= since):
            continue
        if str(c.get("author_association") or "").upper() not in trusted:
            continue
        user = c.get("user")
        login = user.get("login") if isinstance(user, dict) else None
        if isinstance(login, str) and login and is_ok_command(str(c.get("body") or "")):
            return login, created
    return None


# -- the item, as JSON -------------------------------------------------------------------------
def item_to_json(item: Item) -> dict[str, Any]:
    return dataclasses.asdict(item)


def item_from_json(d: dict[str, Any]) -> Item:
    names = {f.name: f for f in dataclasses.fields(Item)}
    kw: dict[str, Any] = {}
    for k, v in d.items():
        if k not in names:
            continue
        if k == "hygiene":
            v = tuple((str(a), int(b)) for a, b in v)
        elif isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return Item(**kw)


def entry_id(item_id: str, key: str) -> str:
    return "q" + hashlib.sha256(f"{item_id}\0{key}".encode()).hexdigest()[:8]


# -- the durable held set ----------------------------------------------------------------------
class Quarantine:
    """`state/router/quarantine.json`: {"entries": {id: entry}}. Every change is a
    read-modify-write under an exclusive lock on a sibling lock file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self._read()
            before = repr(entries)
            yield entries
            if repr(entries) != before:
                self._prune(entries)
                write_json_atomic(self.path, {"entries": entries}, mode=0o600)
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = read_json(self.path, {}) or {}
        except ValueError:
            data = {}  # a hand-mangled file: start over rather than stop the router
        entries = data.get("entries") if isinstance(data, dict) else None
        return {k: v for k, v in (entries or {}).items() if isinstance(v, dict)}

    @staticmethod
    def _prune(entries: dict[str, dict[str, Any]]) -> None:
        decided = [e for e in entries.values() if e.get("status") != HELD]
        decided.sort(key=lambda e: str(e.get("decided_at") or ""), reverse=True)
        for e in decided[KEEP_DECIDED:]:
            entries.pop(e["id"], None)

    # -- reading --
    def entries(self, status: str | None = HELD) -> list[dict[str, Any]]:
        """Entries (held ones by default), oldest first."""
        out = [e for e in self._read().values() if status is None or e.get("status") == status]
        return sorted(out, key=lambda e: (str(e.get("held_at") or ""), e["id"]))

    def count(self) -> int:
        return len(self.entries())

    def held_for(self, item_id: str) -> dict[str, Any] | None:
        return next((e for e in self.entries() if e.get("item_id") == item_id), None)

    def get(self, entry: str) -> dict[str, Any]:
        found = self._read().get(entry)
        if found is None:
            held = ", ".join(e["id"] for e in self.entries()) or "none"
            raise NotFound(
                f"no quarantined item {entry!r} (held: {held})",
                hints=["`gh fleet quarantine list` shows what is held"],
            )
        return found

    # -- the router's side --
    def hold(
        self, item: Item, key: str, agents: dict[str, dict[str, Any]], *, now: str
    ) -> dict[str, Any] | None:
        """Hold this version of `item` for `agents` ({agent: {"route", "why"}}): a new entry, or
        the item's held entry updated. None when this version was already released or dropped."""
        with self._locked() as entries:
            for e in entries.values():
                if e.get("item_id") == item.item_id and e.get("key") == key and e["status"] != HELD:
                    return None  # decided already (seen again through an overlapping page)
            current = next(
                (
                    e
                    for e in entries.values()
                    if e.get("item_id") == item.item_id and e["status"] == HELD
                ),
                None,
            )
            if current is None:
                # A `/fleet ok` counts when it comes after the last decision on this item (GitHub's
                # clock): the word that released an earlier version does not release this one.
                decided = [str(e.get("ok_after") or "") for e in entries.values()
                           if e.get("item_id") == item.item_id]  # fmt: skip
                current = {
                    "id": entry_id(item.item_id, key),
                    "item_id": item.item_id,
                    "status": HELD,
                    "held_at": now,
                    "since": max(decided, default=""),
                    "versions": 0,
                    "comments_seen": 0,
                    "agents": {},
                }
                entries[current["id"]] = current
            if current.get("key") != key:  # a new version (seen again: nothing to write)
                current["versions"] = int(current.get("versions") or 0) + 1
                current.update(key=key, updated_at=now, item=item_to_json(item))
            current["agents"] = {**current.get("agents", {}), **agents}
            return dict(current)

    def held_for_issue(self, repo: str, number: int) -> dict[str, Any] | None:
        """The held entry of issue or pull request `repo#number`, if any (a comment event names
        the issue, not whether it is a PR)."""
        ids = {f"{kind}:{repo.lower()}#{number}" for kind in ("issues", "pulls")}
        return next((e for e in self.entries() if e.get("item_id") in ids), None)

    def seen_comments(self, entry: str, count: int) -> None:
        with self._locked() as entries:
            if entry in entries:
                entries[entry]["comments_seen"] = count

    # -- leaving the held set --
    def release(
        self,
        entry: str,
        by: str,
        deliver: Callable[[str, dict[str, Any]], object],
        *,
        now: str,
        agents: Iterable[str] | None = None,
        ok_at: str = "",
    ) -> dict[str, Any]:
        """Deliver the held version to its agents (those of `agents`, when given: the ones that
        still exist), marked released by `by`, then mark the entry released. `ok_at`: when the
        releasing comment was written (GitHub's clock). Raises FleetError for an entry that is
        not held."""
        with self._locked() as entries:
            e = entries.get(entry)
            if e is None:
                raise NotFound(f"no quarantined item {entry!r}",
                               hints=["`gh fleet quarantine list` shows what is held"])  # fmt: skip
            if e["status"] != HELD:
                raise FleetError(f"{entry} was already {e['status']} by @{e.get('decided_by')}")
            item = item_from_json(e["item"])
            change = f"{item.change or 'updated'}, released by @{by}"
            item = replace(item, change=change)
            wanted = set(agents) if agents is not None else None
            delivered: list[str] = []
            for agent in sorted(e.get("agents", {})):
                if wanted is not None and agent not in wanted:
                    continue
                event = build_event(agent, item, e["key"], ts=now)
                event["metadata"]["released_by"] = by
                event["metadata"]["quarantine_id"] = entry
                deliver(agent, event)  # raises: the entry stays held, the release can be repeated
                delivered.append(agent)
            e.update(status=RELEASED, decided_by=by, decided_at=now, delivered_to=delivered,
                     ok_after=max(ok_at, item.updated_at))  # fmt: skip
            return dict(e)

    def drop(self, entry: str, by: str, *, now: str) -> dict[str, Any]:
        with self._locked() as entries:
            e = entries.get(entry)
            if e is None:
                raise NotFound(f"no quarantined item {entry!r}",
                               hints=["`gh fleet quarantine list` shows what is held"])  # fmt: skip
            if e["status"] != HELD:
                raise FleetError(f"{entry} was already {e['status']} by @{e.get('decided_by')}")
            updated = str((e.get("item") or {}).get("updated_at") or "")
            e.update(status=DROPPED, decided_by=by, decided_at=now, ok_after=updated)
            return dict(e)


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry as `quarantine list --json` shows it."""
    item = entry.get("item") or {}
    kind, repo, number = item.get("kind", ""), item.get("repo", ""), item.get("number", 0)
    agents = entry.get("agents") or {}
    return {
        "id": entry["id"],
        "status": entry.get("status"),
        "kind": kind,
        "repo": repo,
        "number": number,
        "ref": f"{repo}#{number}" if kind != "runs" else f"{repo} run {number}",
        "title": item.get("title", ""),
        "author": item.get("author", ""),
        "association": item.get("association", ""),
        "url": item.get("url", ""),
        "change": item.get("change", ""),
        "agents": sorted(agents),
        "why": sorted({str(a.get("why") or "") for a in agents.values()} - {""}),
        "held_at": entry.get("held_at"),
        "updated_at": entry.get("updated_at"),
        "versions": entry.get("versions", 1),
        "hygiene": dict(item.get("hygiene") or []),
        **({"decided_by": entry["decided_by"]} if entry.get("decided_by") else {}),
    }


def release_on_comment(
    store: Quarantine,
    repo: str,
    number: int,
    *,
    author: str,
    association: str,
    body: str,
    created_at: str,
    allow: Iterable[str],
    deliver: Callable[[str, dict[str, Any]], object],
    now: str,
    agents: Iterable[str] | None = None,
) -> dict[str, Any] | None:
    """One new comment on `repo#number` (as a webhook or a comments poll sees it): when it is
    a trusted `/fleet ok` and the item has a held entry, release that entry. Returns the
    released entry, else None. The poller's own check reads a held item's comments in bulk."""
    entry = store.held_for_issue(repo, number)
    if entry is None:
        return None
    comment = {"user": {"login": author}, "author_association": association, "body": body,
               "created_at": created_at}  # fmt: skip
    ok = ok_author([comment], allow, str(entry.get("since") or ""))
    if ok is None:
        return None
    by, ok_at = ok
    return store.release(entry["id"], by, deliver, now=now, agents=agents, ok_at=ok_at)
