"""What `gh fleet up` must do to make the running fleet match `.fleet/` (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from relayfleet.fleet.model import Agent


def fingerprint(agent: Agent, persona: bytes = b"") -> str:
    """Changes whenever anything that a runner reads at launch changes (config or persona)."""
    h = hashlib.sha256(repr(agent).encode())
    h.update(b"\0")
    h.update(persona)
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = field(default=(), compare=False)

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.restart)

    def describe(self) -> list[str]:
        return (
            [f"+{n}" for n in self.start]
            + [f"-{n}" for n in self.stop]
            + [f"~{n}" for n in self.restart]
        )


def plan(desired: dict[str, str], running: dict[str, str]) -> Plan:
    """`desired` and `running` map agent name to fingerprint."""
    start = tuple(sorted(set(desired) - set(running)))
    stop = tuple(sorted(set(running) - set(desired)))
    both = set(desired) & set(running)
    restart = tuple(sorted(n for n in both if desired[n] != running[n]))
    unchanged = tuple(sorted(n for n in both if desired[n] == running[n]))
    return Plan(start=start, stop=stop, restart=restart, unchanged=unchanged)
