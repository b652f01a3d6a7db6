"""Durable per-agent delivery state: `state/agents/<name>/runner-state.json`.

The write into the session is the one step that cannot be made atomic with our bookkeeping, so it
is bracketed:

    begin(item)      records "delivering X" (id + byte range in the inbox), durably
    <engine.deliver>
    delivered(item)  records "delivered X": offset moves past it, X becomes pending

If the runner dies between the two (`kill -9`), the next runner finds "delivering X" and sends X
again *marked as a re-send*: the session may or may not have seen it, and a marked duplicate is
honest where a silent one is not. Everything before `offset` was delivered; everything after it
was not, so nothing is lost and nothing is silently duplicated.

A delivered event stays pending until the agent calls `ack_event`, or until the ack timeout, when
it is re-sent (marked) up to `MAX_RESENDS` times; after that it is given up on and logged, so an
agent that never acks (a plain `command` session) does not get the same event forever.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_atomic

MAX_RESENDS = 3
# The ledger is rewritten (fsync'd) twice per delivery for weeks on end: everything in it is
# bounded, so its size (and the cost of each write) stays flat however many events go through.
RECENT_IDS = 512  # delivered ids kept to drop duplicates (a replaced inbox, a double hand-off)
ACKED_IDS = 128  # recent acks, so a second ack_event can say "already acknowledged"
GIVEN_UP_IDS = 128
OUTCOME_CHARS = 160  # an ack's outcome is kept as a one-line summary; runner.log has it too
MAX_PENDING = 256  # an agent that never acks: the oldest pending are given up beyond this


@dataclass
class Pending:
    id: str
    start: int  # byte range of the event's line in inbox.jsonl (to re-read it for re-send)
    end: int
    delivered_at: float
    resends: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Ledger:
    path: Path
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    launched: bool = False  # a session was started once: later launches resume the conversation
    offset: int = 0  # inbox bytes fully delivered
    last_delivered: str | None = None
    last_delivered_at: float | None = None
    delivering: dict[str, Any] | None = None  # {"id", "start", "end", "resend"} while in flight
    pending: dict[str, Pending] = field(default_factory=dict)
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    acked: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ACKED_IDS))
    given_up: deque[str] = field(default_factory=lambda: deque(maxlen=GIVEN_UP_IDS))
    delivered_count: int = 0
    # A half-done inbox compaction (runner/compaction.py): its intent, so a restart finishes it.
    compaction: dict[str, Any] | None = None

    # -- persistence ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> Ledger:
        d = read_json(path, None)
        led = cls(path=Path(path))
        if not isinstance(d, dict):
            return led
        led.session_id = d.get("session_id") or led.session_id
        led.launched = bool(d.get("launched"))
        led.offset = int(d.get("offset", 0))
        led.last_delivered = d.get("last_delivered")
        led.last_delivered_at = d.get("last_delivered_at")
        led.delivering = d.get("delivering")
        led.pending = {p["id"]: Pending(**p) for p in d.get("pending", [])}
        led.recent.extend(d.get("recent", []))
        led.acked.extend(
            {**a, "outcome": str(a.get("outcome", ""))[:OUTCOME_CHARS]}
            for a in d.get("acked", [])
            if isinstance(a, dict)
        )
        led.given_up.extend(d.get("given_up", []))
        led.delivered_count = int(d.get("delivered_count", 0))
        led.compaction = d.get("compaction")
        return led

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "launched": self.launched,
            "offset": self.offset,
            "last_delivered": self.last_delivered,
            "last_delivered_at": self.last_delivered_at,
            "delivering": self.delivering,
            "pending": [p.to_json() for p in self.pending.values()],
            "recent": list(self.recent),
            "acked": list(self.acked),
            "given_up": list(self.given_up),
            "delivered_count": self.delivered_count,
            "compaction": self.compaction,
        }

    def save(self) -> None:
        # Compact: this file is rewritten on every delivery.
        data = json.dumps(self.to_json(), separators=(",", ":"))
        self.writer(self.path, data)

    @staticmethod
    def writer(path: Path, data: str) -> None:
        """Where `save` puts the ledger (a test may point an instance elsewhere)."""
        write_atomic(path, data)

    # -- delivery -------------------------------------------------------------------------
    def already_delivered(self, event_id: str) -> bool:
        return event_id in self.recent or event_id in self.pending

    def begin(
        self,
        event_id: str,
        start: int,
        end: int,
        *,
        resend: bool,
        batch: list[tuple[str, int, int]] | None = None,
    ) -> None:
        """`batch`: (id, start, end) of every event of a coalesced turn (the first is `event_id`),
        so a runner killed mid-delivery re-sends the whole turn."""
        self.delivering = {"id": event_id, "start": start, "end": end, "resend": resend}
        if batch is not None:
            self.delivering["batch"] = [list(b) for b in batch]
        self.save()

    def delivered_batch(self, batch: list[tuple[str, int, int]]) -> None:
        """Every event of a coalesced turn is delivered (each pending its own ack); one write."""
        for event_id, start, end in batch:
            self.delivered(event_id, start, end, save=False)
        self.save()

    def delivered(
        self, event_id: str, start: int, end: int, *, now: float | None = None, save: bool = True
    ) -> None:
        now = time.time() if now is None else now
        resend_of_pending = event_id in self.pending
        self.delivering = None
        if resend_of_pending:
            p = self.pending[event_id]
            p.resends += 1
            p.delivered_at = now
        else:
            self.pending[event_id] = Pending(event_id, start, end, now)
            while len(self.pending) > MAX_PENDING:
                oldest = min(self.pending.values(), key=lambda p: p.delivered_at)
                del self.pending[oldest.id]
                self.given_up.append(oldest.id)
            if event_id not in self.recent:
                self.recent.append(event_id)
            self.last_delivered = event_id
            self.last_delivered_at = now
            self.delivered_count += 1
        self.offset = max(self.offset, end)
        if save:
            self.save()

    def skip(self, end: int) -> None:
        """A line that is not deliverable (duplicate id, no id): move past it."""
        self.offset = max(self.offset, end)

    def rebase(self, cut: int) -> None:
        """The inbox lost its first `cut` bytes (compaction): every byte position moves back."""
        self.offset = max(0, self.offset - cut)
        for p in self.pending.values():
            p.start, p.end = p.start - cut, p.end - cut
        if self.delivering:
            d = self.delivering
            self.delivering = {**d, "start": d["start"] - cut, "end": d["end"] - cut}
            if "batch" in d:
                self.delivering["batch"] = [[i, a - cut, b - cut] for i, a, b in d["batch"]]

    # -- acknowledgement ------------------------------------------------------------------
    def ack(self, event_id: str, outcome: str = "", *, now: float | None = None) -> bool:
        """Whether `event_id` was pending (acking twice, or an unknown id, is harmless)."""
        p = self.pending.pop(event_id, None)
        if p is None:
            return False
        now = time.time() if now is None else now
        summary = " ".join(outcome.split())[:OUTCOME_CHARS]
        self.acked.append({"id": event_id, "outcome": summary, "at": now})
        self.save()
        return True

    def due(self, timeout: float, *, now: float | None = None) -> list[Pending]:
        """Pending events whose ack is overdue, oldest first."""
        now = time.time() if now is None else now
        late = [p for p in self.pending.values() if now - p.delivered_at >= timeout]
        return sorted(late, key=lambda p: p.delivered_at)

    def give_up(self, event_id: str) -> None:
        if self.pending.pop(event_id, None) is not None:
            self.given_up.append(event_id)
            self.save()

    def next_due_at(self, timeout: float) -> float | None:
        if not self.pending:
            return None
        return min(p.delivered_at for p in self.pending.values()) + timeout

    def mark_launched(self) -> None:
        if not self.launched:
            self.launched = True
            self.save()
