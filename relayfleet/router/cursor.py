"""The router's one durable cursor: `state/router/cursor.json` (atomic writes).

What it remembers, and why:
- `gen`: a counter bumped every polling cycle. Time inside the cursor is measured in cycles,
  not clocks, so no local/GitHub clock skew can lose or replay an item.
- `watches`: whether a watch (identified by name + kind + repo + filter) has had its snapshot
  poll. A watch's first poll delivers nothing; editing its definition makes it new again.
- `born`: the cycle each agent and route first appeared. An item version first seen before that
  cycle is backlog for it and is not delivered (a new agent or route sees only what changes next).
- `items`: per item, the last version (dedup key) seen, the cycle it was first seen, and a small
  summary, so the next version can say what changed ("labeled x", "new comment").
- `streams`: per coalesced stream, the lazy `since` watermark (kept stable so 304s happen).
- `delivered`: the (agent, dedup key) pairs already appended, bounded per agent.
- `pending`: events a transport failed to take, retried every cycle.

The poller appends to an inbox BEFORE recording here, and saves this file before the HTTP cache;
a crash in between is repaired by the transport's idempotence (same event id -> no-op).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_atomic
from relayfleet.fleet.model import Route, Watch

VERSION = 1
MAX_DELIVERED_PER_AGENT = 20_000
MAX_ITEMS = 50_000


def watch_sig(w: Watch) -> str:
    return f"{w.kind}|{w.repo.lower()}|{w.filter.strip()}"


def route_sig(r: Route) -> str:
    raw = json.dumps({"match": {k: list(v) for k, v in r.match.items()}, "to": sorted(r.to)},
                     sort_keys=True)  # fmt: skip
    return "route:" + hashlib.sha256(raw.encode()).hexdigest()[:16]


class Cursor:
    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        d = data or {}
        self.gen: int = int(d.get("gen", 0))
        self.watches: dict[str, dict[str, Any]] = d.get("watches", {})
        self.born: dict[str, int] = d.get("born", {})
        self.items: dict[str, dict[str, Any]] = d.get("items", {})
        self.streams: dict[str, dict[str, Any]] = d.get("streams", {})
        self.delivered: dict[str, dict[str, int]] = d.get("delivered", {})
        self.pending: list[dict[str, Any]] = d.get("pending", [])
        self.saved_at: float | None = d.get("saved_at")
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> Cursor:
        data = read_json(Path(path), None)
        if data is not None and (not isinstance(data, dict) or data.get("version") != VERSION):
            # A cursor we cannot read would mean replaying or losing; refuse loudly instead.
            from relayfleet.core.errors import FleetError

            raise FleetError(
                f"{path}: not a relayfleet cursor (version {VERSION})",
                hints=["move it aside; the next poll takes a fresh snapshot"],
            )
        return cls(path, data)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "gen": self.gen,
            "watches": self.watches,
            "born": self.born,
            "items": self.items,
            "streams": self.streams,
            "delivered": self.delivered,
            "pending": self.pending,
            "saved_at": self.saved_at,
        }

    def save(self, now: float) -> None:
        self.saved_at = now
        self.prune()
        # Compact, not indented: the cursor of a fleet on busy repos holds thousands of items and
        # is written every cycle; json's C encoder only serves the compact form (~10x faster).
        raw = json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True) + "\n"
        write_atomic(self.path, raw, mode=0o600)
        self.dirty = False

    # -- cycles and config ----------------------------------------------------------------
    def begin_cycle(self) -> int:
        self.gen += 1
        self.dirty = True
        return self.gen

    def sync_config(self, watches: list[Watch], routes: list[Route], agents: list[str]) -> None:
        """Note when each agent and route first appeared; forget watches that are gone."""
        names = {w.name for w in watches}
        for name in list(self.watches):
            if name not in names:
                del self.watches[name]
                self.dirty = True
        for w in watches:
            rec = self.watches.get(w.name)
            if rec is None or rec.get("sig") != watch_sig(w):
                # New, or redefined: its next poll is a snapshot.
                self.watches[w.name] = {"sig": watch_sig(w), "snapshot": False, "born": self.gen}
                self.dirty = True
        keys = {f"agent:{a}" for a in agents} | {route_sig(r) for r in routes}
        for k in keys:
            if k not in self.born:
                self.born[k] = self.gen
                self.dirty = True
        for k in list(self.born):
            if k not in keys:
                del self.born[k]  # re-adding it later makes it new again: no backlog
                self.dirty = True

    def watch_ready(self, name: str) -> bool:
        rec = self.watches.get(name)
        return bool(rec and rec.get("snapshot"))

    def mark_snapshot(self, name: str) -> None:
        if name in self.watches:
            self.watches[name]["snapshot"] = True
            self.watches[name]["ready_gen"] = self.gen
            self.dirty = True

    def ready_gen(self, name: str) -> int:
        """The cycle of the watch's snapshot: versions first seen then or before are not news."""
        rec = self.watches.get(name) or {}
        return int(rec.get("ready_gen", self.gen))

    def born_gen(self, key: str) -> int:
        return self.born.get(key, self.gen)

    # -- items ----------------------------------------------------------------------------
    def observe(self, item_id: str, key: str, summary: dict[str, Any]) -> tuple[int, Any]:
        """Record a sighting. Returns (cycle this version was first seen, previous summary)."""
        rec = self.items.get(item_id)
        if rec is not None and rec.get("k") == key:
            rec["t"] = self.gen
            return int(rec["g"]), rec.get("p")
        prev = rec.get("s") if rec else None
        self.items[item_id] = {"k": key, "g": self.gen, "t": self.gen, "s": summary, "p": prev}
        self.dirty = True
        return self.gen, prev

    # -- delivery -------------------------------------------------------------------------
    def is_delivered(self, agent: str, key: str) -> bool:
        return key in self.delivered.get(agent, {})

    def record(self, agent: str, key: str) -> None:
        self.delivered.setdefault(agent, {})[key] = self.gen
        self.dirty = True

    def add_pending(self, agent: str, event: dict[str, Any]) -> None:
        if not any(p["event"]["id"] == event["id"] for p in self.pending):
            self.pending.append({"agent": agent, "event": event})
            self.dirty = True

    # -- streams --------------------------------------------------------------------------
    def stream(self, key: str) -> dict[str, Any]:
        return self.streams.setdefault(key, {})

    def prune(self) -> None:
        """Bound the file: the oldest delivered keys and the longest-unseen items go first."""
        for agent, keys in self.delivered.items():
            if len(keys) > MAX_DELIVERED_PER_AGENT:
                keep = sorted(keys.items(), key=lambda kv: kv[1])[-MAX_DELIVERED_PER_AGENT:]
                self.delivered[agent] = dict(keep)
        if len(self.items) > MAX_ITEMS:
            keep_items = sorted(self.items.items(), key=lambda kv: kv[1].get("t", 0))
            self.items = dict(keep_items[-MAX_ITEMS:])
