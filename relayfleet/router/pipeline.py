"""The one pipeline every item goes through, polled or pushed by a webhook: each watch's filter,
the routes, the exactly-once ledger, then the inbox (or the quarantine, for a route that holds
an outsider's item); and `/fleet` commands from comments.

`Poller` (router/poller.py) is a `Pipeline`: the polling side feeds it pages, the webhook side
feeds it `intake`. The write order that makes delivery exactly-once is in poller.py's docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from relayfleet.fleet.model import COMMAND_ALLOW_DEFAULT, Route, Watch
from relayfleet.router import commands
from relayfleet.router.commands import Comment
from relayfleet.router.cursor import Cursor, route_sig
from relayfleet.router.delivery import build_event, event_id
from relayfleet.router.holding import Holding
from relayfleet.router.items import Item, summary, with_change
from relayfleet.router.match import dedup_key, route_matches
from relayfleet.router.plan import ENDPOINT_OF_KIND, plan
from relayfleet.router.quarantine import Quarantine, held_by, release_on_comment, why_held
from relayfleet.router.transport import InboxTransport

log = logging.getLogger("relayfleet.router")


class QueryLike(Protocol):
    def matches(self, item: Any, me: str | None = None) -> bool: ...


@dataclass(frozen=True)
class RouterConfig:
    """What the router needs from `.fleet/`, with each watch's filter already parsed."""

    watches: tuple[Watch, ...]
    routes: tuple[Route, ...]
    agents: tuple[str, ...]
    queries: dict[str, QueryLike]
    allow: tuple[str, ...] = COMMAND_ALLOW_DEFAULT  # associations whose `/fleet` commands count
    command_repos: tuple[str, ...] = ()  # repos whose comments are polled for commands


@dataclass(frozen=True)
class WouldDeliver:
    """A dry run's delivery: what would go to whom, and why (the watch and the route)."""

    agent: str
    ref: str  # `acme/WMS#12`, `acme/WMS run 123`
    kind: str
    change: str
    watch: str
    route: int  # the first matching route's number (1-based, as `gh fleet route` shows it)
    event_id: str


@dataclass
class CycleReport:
    polled: list[str] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (agent, event id)
    errors: list[str] = field(default_factory=list)
    would: list[WouldDeliver] = field(default_factory=list)  # dry run only
    snapshots: list[str] = field(default_factory=list)  # watches whose first poll this was
    held: list[tuple[str, str]] = field(default_factory=list)  # (quarantine id, item ref)
    released: list[tuple[str, str]] = field(default_factory=list)  # (quarantine id, by login)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Pipeline:
    """Filter, route, deliver once. The attributes are the poller's (set in its `__init__`)."""

    client: Any
    cursor: Cursor
    transport_for: Callable[[str], InboxTransport]
    clock: Callable[[], float]
    quarantine: Quarantine | None
    holding: Holding | None
    broken: dict[str, str]  # watch name -> why (a broken watch delivers nothing)
    me: str | None
    _dry: bool

    @staticmethod
    def _commands_on(repo: str, config: RouterConfig) -> bool:
        return repo.lower() in {r.lower() for r in config.command_repos}

    def _want_comments(self, repo: str, items: list[Item]) -> None:
        """An item with more comments than at its last sighting: read the comments stream."""
        state = self.cursor.stream(f"comments:{repo.lower()}")
        if not state.get("born") or state.get("wanted"):
            return
        for item in items:
            prev = (self.cursor.items.get(item.item_id) or {}).get("s") or {}
            if item.comments > int(prev.get("comments") or 0):
                state["wanted"] = True
                self.cursor.dirty = True
                return

    def deliver_items(
        self,
        items: Iterable[Item],
        watches: Iterable[Watch],
        config: RouterConfig,
        report: CycleReport,
        known_until: str = "",
    ) -> list[Item]:
        """The one pipeline, for polled and webhook items alike: per item its dedup key, each
        watch's filter, the routes, then the exactly-once ledger. An item that arrives with its
        `change` already said (a webhook's action) keeps it. Returns the items (with their
        change) that went to an agent or into the quarantine now."""
        watches = tuple(watches)
        reached: list[Item] = []
        for item in items:
            before = len(report.delivered) + len(report.held)
            key = dedup_key(item)
            first_seen, prev = self.cursor.observe(item.item_id, key, summary(item))
            if not item.change:
                item = with_change(item, prev, known_until=known_until)
            chosen, held = self._targets(watches, item, first_seen, config)
            if held and item.kind == "notifications" and not item.association:
                # A notification names no author: learn who wrote the comment that caused it,
                # so a member's @mention passes a gated route and only an outsider's is held.
                who = self.holding.who_triggered(item) if self.holding else None
                if who is not None:
                    item = who
                    chosen, held = self._targets(watches, item, first_seen, config)
            for agent in sorted(chosen):
                if self.cursor.is_delivered(agent, key):
                    continue
                self._deliver(agent, *chosen[agent][:2], key, report)
            self._quarantine(item, key, {a: h for a, h in held.items() if a not in chosen},
                             config, report)  # fmt: skip
            if len(report.delivered) + len(report.held) > before:
                reached.append(item)
        return reached

    def _targets(
        self, watches: Iterable[Watch], item: Item, first_seen: int, config: RouterConfig
    ) -> tuple[dict[str, tuple[Item, int, str]], dict[str, tuple[Item, int, str]]]:
        """agent -> (the sighting through its first matching watch, the first route that sends
        it there, why it is held): the agents it goes to, and those whose routes hold it."""
        agents = set(config.agents)
        chosen: dict[str, tuple[Item, int, str]] = {}
        held: dict[str, tuple[Item, int, str]] = {}  # routes that hold it (router/quarantine)
        for w in watches:
            if w.name in self.broken or not self._watch_keeps(w, item, config):
                continue
            if not self.cursor.watch_ready(w.name):
                continue  # this poll is the watch's snapshot: seen, not delivered
            if first_seen <= self.cursor.ready_gen(w.name):
                continue  # a version the snapshot already saw
            seen = replace(item, watch=w.name)
            for route in config.routes:
                into = chosen
                if not route_matches(route, seen):
                    if self.quarantine is None or not held_by(route, seen):
                        continue
                    into = held  # its author is outside the gate: hold, do not drop
                if first_seen < self.cursor.born_gen(route_sig(route)):
                    continue  # backlog for a route added after this version appeared
                for agent in route.to:
                    if agent not in agents or agent in into:
                        continue
                    if first_seen < self.cursor.born_gen(f"agent:{agent}"):
                        continue  # backlog for a newly added agent
                    into[agent] = (seen, route.index, why_held(route, seen))
        return chosen, held

    def intake(
        self,
        items: Iterable[Item],
        comments: Iterable[Comment],
        config: RouterConfig,
        *,
        partial: frozenset[str] = frozenset(),
        save: bool = True,
    ) -> CycleReport:
        """Items and comments that arrived outside a poll (a webhook): the same watches (those
        of the stream that would have polled the item), routes, dedup keys and ledger, as a
        cycle of its own so a watch's snapshot never swallows them. Saves the cursor unless
        `save` is false (a batch saves once, at its end)."""
        report = CycleReport()
        comments = list(comments)
        self.cursor.begin_cycle()
        self.cursor.sync_config(list(config.watches), list(config.routes), list(config.agents))
        streams = {s.key: s for s in plan(config.watches)}
        for item in items:
            endpoint = ENDPOINT_OF_KIND.get(item.kind)
            stream = streams.get(f"{endpoint}:{item.repo.lower()}") if endpoint else None
            if stream is None:
                continue  # no watch would poll it
            if self.me is None and any("@me" in w.filter for w in stream.watches):
                self.me = self.client.whoami()
            item = self._fill_partial(item, partial)
            if self._commands_on(item.repo, config) and not any(
                c.number == item.number for c in comments
            ):
                # More comments than known, but not the comment itself (its own delivery was
                # lost?): the comments stream reads it, so a command in it is not missed.
                self._want_comments(item.repo, [item])
            self.deliver_items([item], stream.watches, config, report)
        self.deliver_commands(comments, config, report)
        if save:
            self.cursor.save(self.clock())
        return report

    def _fill_partial(self, item: Item, partial: frozenset[str]) -> Item:
        """Fields a payload lacks take their last polled value (same dedup key as a poll)."""
        rec = self.cursor.items.get(item.item_id) or {}
        prev = rec.get("s") if isinstance(rec.get("s"), dict) else None
        if not partial or prev is None:
            return item
        fill: dict[str, Any] = {}
        if "comments" in partial:
            fill["comments"] = int(prev.get("comments") or 0)
        if "draft" in partial:
            fill["draft"] = bool(prev.get("draft"))
        if "state" in partial:
            fill["state"] = str(prev.get("state") or "")
        for key in ("labels", "assignees"):
            if key in partial:
                fill[key] = tuple(str(x) for x in prev.get(key) or ())
        return replace(item, **fill)

    def deliver_commands(
        self, comments: Iterable[Comment], config: RouterConfig, report: CycleReport
    ) -> None:
        """`/fleet <agent> <text>` comments from allowed associations -> command events."""
        for comment in comments:
            handle = commands.addressed(comment.body)
            if handle and handle.lower() == "ok":
                self._ok_comment(comment, config, report)
                continue
            cmd, why = commands.decide(comment, config.agents, config.allow)
            if cmd is None:
                if why:
                    log.warning("command on %s#%d dropped (comment %s): %s",
                                comment.repo, comment.number, comment.id, why)  # fmt: skip
                continue
            if self.cursor.is_delivered(cmd.agent, cmd.key):
                continue
            event = commands.build_event(
                cmd, ts=iso(self.clock()), event_id=event_id(cmd.agent, cmd.key)
            )
            if self._dry:
                self.cursor.record(cmd.agent, cmd.key)
                ref = f"{comment.repo}#{comment.number}"
                report.would.append(
                    WouldDeliver(cmd.agent, ref, "command", "command", "", 0, event["id"])
                )
                continue
            try:
                self.transport_for(cmd.agent).append(cmd.agent, event)
            except Exception as exc:
                log.warning("delivery of %s to %s failed (will retry): %s", event["id"],
                            cmd.agent, exc)  # fmt: skip
                self.cursor.add_pending(cmd.agent, event)
                continue
            self.cursor.record(cmd.agent, cmd.key)
            report.delivered.append((cmd.agent, event["id"]))
            log.info("command %s to %s: %s", event["id"], cmd.agent, event["body"][:200])

    def _watch_keeps(self, w: Watch, item: Item, config: RouterConfig) -> bool:
        scoped = w.kind == "notifications" and w.repo not in ("", "*")
        if scoped and item.repo.lower() != w.repo.lower():
            return False
        query = config.queries.get(w.name)
        if query is None:
            return False
        try:
            return query.matches(item, me=self.me)
        except Exception as exc:  # a filter bug must not stop the other watches
            log.warning("watch %s: filter failed on %s: %s", w.name, item.ref, exc)
            return False

    def _deliver(
        self, agent: str, item: Item, route_index: int, key: str, report: CycleReport
    ) -> None:
        event = build_event(agent, item, key, ts=iso(self.clock()))
        if self._dry:
            # Recorded in the in-memory cursor only (never saved), so a second watch that sees
            # the same version does not list it twice.
            self.cursor.record(agent, key)
            report.would.append(WouldDeliver(agent, item.ref, item.kind, item.change, item.watch,
                                             route_index, event["id"]))  # fmt: skip
            return
        try:
            self.transport_for(agent).append(agent, event)
        except Exception as exc:  # unreachable remote inbox, full disk, …: retry every cycle
            log.warning("delivery of %s to %s failed (will retry): %s", event["id"], agent, exc)
            self.cursor.add_pending(agent, event)
            return
        self.cursor.record(agent, key)
        report.delivered.append((agent, event["id"]))
        log.info("delivered %s to %s: %s", event["id"], agent, event["body"][:200])

    def _quarantine(
        self,
        item: Item,
        key: str,
        held: dict[str, tuple[Item, int, str]],
        config: RouterConfig,
        report: CycleReport,
    ) -> None:
        if self.holding is None or self._dry:
            if held:
                report.held.append(("(dry run)", item.ref))
            return
        got, released = self.holding.settle(item, key, held, config.allow, config.agents)
        report.held += got
        report.released += released

    def _ok_comment(self, comment: Comment, config: RouterConfig, report: CycleReport) -> None:
        """A `/fleet ok` seen as a comment (a webhook, the comments poll): a trusted one
        releases the item's held entry, exactly once (the poll's bulk check finds it released)."""
        if self.quarantine is None or self._dry:
            return
        entry = release_on_comment(
            self.quarantine, comment.repo, comment.number,
            author=comment.author, association=comment.association, body=comment.body,
            created_at=comment.created_at, allow=config.allow, deliver=self._release_to,
            now=iso(self.clock()), agents=config.agents,
        )  # fmt: skip
        if entry is not None:
            report.released.append((str(entry["id"]), comment.author))

    def _release_to(self, agent: str, event: dict[str, Any]) -> None:
        try:
            self.transport_for(agent).append(agent, event)
        except Exception as exc:  # as `_deliver`: keep the event, retry every cycle
            log.warning("delivery of %s to %s failed (will retry): %s", event["id"], agent, exc)
            self.cursor.add_pending(agent, event)
            return
        self.cursor.record(agent, event["metadata"]["dedup_key"])
        self.cursor.dirty = True
