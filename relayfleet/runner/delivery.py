"""The runner's delivery loop: inbox tail -> (budget gate, burst coalescing) -> session.

    inbox.jsonl --inotify--> InboxTail --> BudgetGate --> gather (coalesce) --> Ledger.begin
        --> engine.deliver --> Ledger.delivered (each event pending its own ack) --> re-sends

A mixin of the supervisor's `Runner` (runner/supervisor.py): one job per module, the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent
from relayfleet.runner.budget import BudgetGate
from relayfleet.runner.coalesce import gather
from relayfleet.runner.engine import DELIVERY_PTY, SessionEngine
from relayfleet.runner.idle import IdleSleeper
from relayfleet.runner.inbox_tail import InboxTail, TailItem
from relayfleet.runner.ledger import MAX_RESENDS, Ledger
from relayfleet.runner.neutralise import batch_event
from relayfleet.runner.tools import read_event_at
from relayfleet.runner.workspace import Keeper


class Delivery:
    """What the delivery loop needs of the runner (set up by `Runner.__init__`)."""

    paths: FleetPaths
    agent: Agent
    name: str
    log: logging.Logger
    ledger: Ledger
    engine: SessionEngine | None
    attach: Any
    budget: BudgetGate
    workspace: Keeper
    idle: IdleSleeper
    _tail: InboxTail | None
    _stop: asyncio.Event
    _ready: asyncio.Event
    _detached: asyncio.Event
    _pending_changed: asyncio.Event
    _status_dirty: asyncio.Event
    _deliver_lock: asyncio.Lock

    async def _compact_if_due(self) -> None: ...

    async def _deliver(self, item: TailItem | list[TailItem], *, resend: bool) -> None:
        """Into the session, bracketed by the ledger; retried (marked) across session restarts.
        A list is a coalesced burst (runner/coalesce.py): one turn, each event its own id."""
        items = item if isinstance(item, list) else [item]
        event_id = str(items[0].event.get("id"))
        failures = 0
        self.idle.wake_up()
        async with self._deliver_lock:
            p = self.ledger.pending.get(event_id) if resend and len(items) == 1 else None
            if p is not None:  # a compaction may have moved it while we waited for the lock
                items = [TailItem(items[0].event, p.start, p.end)]
            batch = [(str(i.event.get("id")), i.start, i.end) for i in items]
            event = items[0].event if len(items) == 1 else batch_event([i.event for i in items])
            while not self._stop.is_set():
                await self._ready.wait()
                engine = self.engine
                assert engine is not None
                if engine.delivery == DELIVERY_PTY and not self._detached.is_set():
                    # A human is typing in this session: hold typed deliveries until they detach.
                    await self._detached.wait()
                    continue
                self.ledger.begin(
                    event_id,
                    items[0].start,
                    items[-1].end,
                    resend=resend,
                    batch=batch if len(items) > 1 else None,
                )
                try:
                    await engine.deliver(event, resend=resend)
                except Exception as exc:
                    self.log.warning("delivery of %s failed (%s); will re-send", event_id, exc)
                    # It may have partly reached the session, unless the engine says not.
                    resend = resend or not getattr(exc, "nothing_sent", False)
                    failures += 1
                    # Usually the session just died and the supervisor is restarting it; back
                    # off in case the engine itself is stuck.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), min(30.0, 0.5 * failures))
                    continue
                self.ledger.delivered_batch(batch)
                self.ledger.mark_launched()
                self.log.info(
                    "delivered %s%s via %s",
                    event_id
                    if len(items) == 1
                    else f"{len(items)} events as one turn: " + " ".join(b[0] for b in batch),
                    " (re-send)" if resend else "",
                    engine.delivery,
                )
                self._pending_changed.set()
                self._status_dirty.set()
                return

    async def _deliver_loop(self) -> None:
        inbox = self.paths.inbox(self.name)
        d = self.ledger.delivering
        if d:
            # The previous runner died mid-delivery: the session may have seen it. Say so.
            parts = d.get("batch") or [[d["id"], d["start"], d["end"]]]
            items = []
            for pid, pstart, pend in parts:
                ev = read_event_at(inbox, int(pstart), int(pend))
                if ev is not None and ev.get("id") == pid:
                    items.append(TailItem(ev, int(pstart), int(pend)))
            if items:
                self.log.info("re-sending %s interrupted by the last runner's exit", d["id"])
                await self._deliver(items, resend=True)
            else:
                self.ledger.delivering = None
        self._tail = InboxTail(inbox, self.ledger.offset, on_idle=self._compact_if_due)
        async for item in self._tail:
            if self._skip(item, set()):
                continue
            taken = {str(item.event["id"])}
            await self.budget.until_open(self._tell)  # over budget: new events wait here
            self._status_dirty.set()
            self.idle.wake_up()
            await self._ready.wait()
            batch = await gather(
                item,
                self.engine,
                self._tail,
                self.agent.runtime.coalesce_max,
                skip=functools.partial(self._skip, taken=taken),
            )
            # A fresh view of the remote before the session works on it (never mid-turn).
            await self.workspace.before_batch(mid_turn=bool(self.ledger.pending))
            await self._deliver(batch if len(batch) > 1 else item, resend=False)

    async def _tell(self, event: dict[str, Any]) -> None:
        """A word from the runner itself (not an inbox event: nothing to record or ack)."""
        self._status_dirty.set()
        self.idle.wake_up()
        async with self._deliver_lock:
            await self._ready.wait()
            try:
                assert self.engine is not None
                await self.engine.deliver(event)
            except Exception as exc:
                self.log.warning("could not tell the session: %s", exc)

    def _quiet(self) -> bool:
        """Nothing for the session to finish: the idle sleeper may stop it (runner/idle.py)."""
        mid_turn = getattr(self.engine, "mid_turn", None)
        return (
            self._ready.is_set()
            and not self.ledger.pending
            and not self._deliver_lock.locked()
            and not self.attach.attached
            and not (mid_turn is not None and mid_turn())
        )

    async def _put_to_sleep(self) -> None:
        async with self._deliver_lock:
            if self.engine is not None:
                self._status_dirty.set()
                await self.engine.stop()

    def _skip(self, item: TailItem, taken: set[str]) -> bool:
        """Not deliverable (no id, already delivered, already in this burst): move past it."""
        event_id = item.event.get("id")
        if not isinstance(event_id, str) or event_id in taken:
            self.ledger.skip(item.end)
            return True
        if self.ledger.already_delivered(event_id):
            self.ledger.skip(item.end)
            return True
        taken.add(event_id)
        return False

    async def _resend_loop(self) -> None:
        timeout = float(self.agent.ack_timeout_sec)
        inbox = self.paths.inbox(self.name)
        while True:
            due_at = self.ledger.next_due_at(timeout)
            wait = None if due_at is None else max(0.05, due_at - time.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._pending_changed.wait(), wait)
            self._pending_changed.clear()
            for p in self.ledger.due(timeout):
                if p.resends >= MAX_RESENDS:
                    self.log.warning("giving up on %s: no ack after %d re-sends", p.id, p.resends)
                    self.ledger.give_up(p.id)
                    self._status_dirty.set()
                    continue
                ev = read_event_at(inbox, p.start, p.end)
                if ev is None or ev.get("id") != p.id:
                    self.ledger.give_up(p.id)
                    continue
                self.log.info("no ack for %s after %.0fs: re-sending", p.id, timeout)
                await self._deliver(TailItem(ev, p.start, p.end), resend=True)
