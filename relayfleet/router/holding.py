"""The router's side of the quarantine (router/quarantine.py): hold a version, read a held
item's new comments for a trusted `/fleet ok`, and learn who triggered a notification.

The poller decides which agents' routes hold an item (`quarantine.held_by`); this does the
rest with the GitHub client and the held set, and hands released events to `deliver` (the
poller's own delivery, with its retries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from relayfleet.router.items import Item
from relayfleet.router.quarantine import Quarantine, ok_author

log = logging.getLogger("relayfleet.router")

# A notification's time and the comment that caused it are a moment apart; look this far back.
TRIGGER_WINDOW = 300


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class Holding:
    def __init__(
        self,
        quarantine: Quarantine,
        client: Any,  # router.github.GitHubClient (anything with .get)
        deliver: Callable[[str, dict[str, Any]], None],
        clock: Callable[[], float],
    ) -> None:
        self.quarantine = quarantine
        self.client = client
        self.deliver = deliver
        self.clock = clock
        self._held_ids: set[str] | None = None  # item ids with a held entry, read once a cycle

    def begin_cycle(self) -> None:
        self._held_ids = None

    def settle(
        self,
        item: Item,
        key: str,
        held: dict[str, tuple[Item, int, str]],
        allow: Iterable[str],
        agents: Iterable[str],
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Hold this version for the agents in `held` ({agent: (sighting, route, why)}); then,
        if the item has a held entry and new comments, release it on a trusted `/fleet ok`.
        Returns ([(entry id, item ref)] held, [(entry id, login)] released)."""
        q = self.quarantine
        now = _iso(self.clock())
        if self._held_ids is None:
            self._held_ids = {str(e.get("item_id")) for e in q.entries()}
        held_now: list[tuple[str, str]] = []
        if held:
            seen = next(iter(held.values()))[0]
            why = {a: {"route": h[1], "why": h[2]} for a, h in held.items()}
            entry = q.hold(seen, key, why, now=now)
            if entry is not None:
                self._held_ids.add(item.item_id)
                held_now.append((entry["id"], item.ref))
                log.info("held %s as %s: %s", item.ref, entry["id"], held[min(held)][2])
        if item.item_id not in self._held_ids:
            return held_now, []  # the common case: one set lookup, no file read
        entry = q.held_for(item.item_id)
        if entry is None or item.kind not in ("issues", "pulls"):
            return held_now, []
        if item.comments <= int(entry.get("comments_seen") or 0):
            return held_now, []
        since = str(entry.get("since") or "")
        path = f"/repos/{item.repo}/issues/{item.number}/comments"
        try:
            page = self.client.get(path, {"per_page": "100", **({"since": since} if since else {})})
        except Exception as exc:  # the comment check is retried on the item's next change
            log.warning("%s: could not read comments for /fleet ok: %s", item.ref, exc)
            return held_now, []
        ok = ok_author(page.items, allow, since)
        if ok is None:
            q.seen_comments(entry["id"], item.comments)
            return held_now, []
        by, ok_at = ok
        q.release(entry["id"], by, self.deliver, now=now, agents=agents, ok_at=ok_at)
        log.info("released %s (%s) on /fleet ok by @%s", entry["id"], item.ref, by)
        return held_now, [(entry["id"], by)]

    def who_triggered(self, item: Item) -> Item | None:
        """A notification's item with the author and association of the newest comment made
        by the time of the notification, or else of the issue or PR itself (None when neither
        can be read)."""
        if not item.number or not item.updated_at:
            return None
        start = _ts(item.updated_at)
        since = _iso(start - TRIGGER_WINDOW) if start is not None else item.updated_at
        path = f"/repos/{item.repo}/issues/{item.number}/comments"
        try:
            # A one-off URL (its `since` moves with each notification): keep no validators.
            page = self.client.get(path, {"since": since, "per_page": "100"}, store=False)
        except Exception as exc:
            log.info("%s: could not read who triggered the notification: %s", item.ref, exc)
            return None
        made = [c for c in page.items if isinstance(c, dict)
                and str(c.get("created_at") or "") <= item.updated_at]  # fmt: skip
        source = made[-1] if made else None
        if source is None:
            # No comment: the mention is in the issue or PR itself, written by its author.
            try:
                got = self.client.get_object(f"/repos/{item.repo}/issues/{item.number}")
            except Exception as exc:
                log.info("%s: could not read who triggered the notification: %s", item.ref, exc)
                return None
            source = got.items[0] if got.items else None
        if not isinstance(source, dict):
            return None
        user = source.get("user")
        login = user.get("login") if isinstance(user, dict) else ""
        return replace(item, author=str(login or ""),
                       association=str(source.get("author_association") or ""))  # fmt: skip


def learn_visibility(
    client: Any,
    path: Any,
    watches: Iterable[Any],
    routes: Iterable[Any],
    broken: Iterable[str],
    now: float,
) -> None:
    """Record whether a repository is public (core/visibility.py), so `validate` and `route`
    can flag ungated routes without the network. Only repositories that feed a route without an
    association gate are looked up (nowhere else does it matter), at most once a day each, and
    not while their watches are broken."""
    from relayfleet.core.visibility import RECHECK_S, read_visibility, record_visibility

    ungated = [r for r in routes if not r.gated]
    if not ungated:
        return
    fed = {n for r in ungated for n in r.match.get("watch", ())}
    everything = any("watch" not in r.match for r in ungated)
    dead = set(broken)
    repos = {w.repo.lower() for w in watches
             if w.repo not in ("", "*") and w.name not in dead
             and (everything or w.name in fed)}  # fmt: skip
    known = read_visibility(path)
    for repo in sorted(repos):
        seen = known.get(repo) or {}
        if now - float(seen.get("checked_at") or 0) < RECHECK_S:
            continue
        try:
            page = client.get_object(f"/repos/{repo}")
        except Exception as exc:  # best effort: asked again tomorrow
            log.info("could not read the visibility of %s: %s", repo, exc)
            record_visibility(path, repo, None, now)
            continue
        obj = page.items[0] if page.items else {}
        private = obj.get("private") if isinstance(obj, dict) else None
        if private is None:
            private = seen.get("private")  # a 304: unchanged
        record_visibility(path, repo, private, now)
