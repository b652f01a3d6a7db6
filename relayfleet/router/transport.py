"""How the router (and `gh fleet tell`) puts an event into an agent's inbox."""

from __future__ import annotations

from typing import Any, Protocol


class InboxTransport(Protocol):
    def append(self, agent: str, event: dict[str, Any]) -> None:
        """Append one event (ARCHITECTURE 3.7) to `agent`'s inbox, durably, or raise.

        Idempotent by `event["id"]`: appending an id that is already in the inbox is a no-op,
        which is what lets the router retry after a crash without duplicating.
        """
        ...

    def has(self, agent: str, event_id: str) -> bool:
        """Whether `event_id` already landed in `agent`'s inbox."""
        ...
