"""Burst coalescing: events that arrive while the session is mid-turn go in as one turn.

A burst (a busy repository, a chatty plugin) would otherwise become one turn per event, each
waiting for the last, and the session would spend its day catching up. Instead the delivery
loop, holding the next event, asks the engine to wait until the session is idle
(`wait_idle()`, an optional engine method); if the session *was* mid-turn, every event that is
already in the inbox by then joins it, up to `[runtime] coalesce_max`, oldest first. The batch
is one turn (runner/neutralise.py `batch_event`) in which each event keeps its own id, is
recorded delivered on its own, and is acknowledged on its own.

An engine without `wait_idle` (a plain `command` program) cannot say it is busy: its events go
in one by one, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from relayfleet.runner.inbox_tail import TailItem


class ReadyItems(Protocol):
    def take_ready(self, limit: int) -> list[TailItem]: ...


async def gather(
    first: TailItem,
    engine: Any,
    tail: ReadyItems,
    limit: int,
    *,
    skip: Callable[[TailItem], bool],
) -> list[TailItem]:
    """`first` plus what queued up while the session finished its turn (at most `limit` in
    all). `skip` says an item is not deliverable (a duplicate id): it is passed over, and
    must record that itself (the ledger moves its offset past the line)."""
    wait_idle = getattr(engine, "wait_idle", None)
    if wait_idle is None or limit <= 1 or not await wait_idle():
        return [first]
    batch = [first]
    while len(batch) < limit:
        more = tail.take_ready(limit - len(batch))
        if not more:
            break
        batch.extend(item for item in more if not skip(item))
    return batch
