"""The seam between the runner's supervisor and a session engine (ARCHITECTURE 4).

An engine owns one interactive program in a PTY (the real `claude`, or any `command`) and knows
how to get an inbox event into it: through the MCP channel when the session registered it, else by
typing into the PTY. The supervisor owns everything else (inbox tail, pending/ack, restarts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from relayfleet.fleet.model import Agent, GatewayConfig

# Delivery paths shown by `gh fleet status`.
DELIVERY_CHANNEL = "channel"
DELIVERY_PTY = "pty"


@dataclass
class EngineSpec:
    """Everything an engine needs to launch its session, prepared by the supervisor."""

    agent: Agent
    agent_dir: Path  # .fleet/agents/<name>/ (persona lives here)
    state_dir: Path  # .fleet/state/agents/<name>/
    workdir: Path  # where the session runs (its cwd)
    session_log: Path
    mcp_url: str  # the runner's loopback MCP endpoint, e.g. http://127.0.0.1:PORT/mcp
    mcp_token: str  # bearer token for it; goes into a 0600 --mcp-config file, never argv
    session_id: str  # stable conversation id (uuid) for --session-id / --resume
    resume: bool  # False on the very first launch of this agent
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    # Extra env (resolved credentials, …); never in a repr, so never in a log or a traceback.
    env: dict[str, str] = field(default_factory=dict, repr=False)
    redact: tuple[str, ...] = field(default=(), repr=False)  # values masked in session.log
    # Called with the session's pid as soon as it is spawned (before any dialog): the runner
    # records its process group then, so a runner killed at any instant leaves no orphan.
    on_spawn: Callable[[int], None] | None = field(default=None, repr=False, compare=False)
    # `[permissions] mode = "policy"`: the `--settings` file with the rules and the hook
    # (runner/permissions.py); None leaves the client's own permission prompts.
    settings: Path | None = None


class Channel(Protocol):
    """What an engine may ask of the runner's MCP channel server."""

    def connected(self) -> bool:
        """A client holds an open standalone stream (server → client notifications work)."""
        ...

    async def push(self, content: str, meta: dict[str, str]) -> int:
        """Send `notifications/claude/channel` to every connected session; returns how many."""
        ...


class SessionEngine(Protocol):
    @property
    def delivery(self) -> str:
        """DELIVERY_CHANNEL or DELIVERY_PTY: the path in use right now."""
        ...

    async def start(self) -> None:
        """Launch the session and return once it is ready for events (dialogs answered)."""
        ...

    async def deliver(self, event: dict[str, Any], *, resend: bool = False) -> None:
        """Get one inbox event (ARCHITECTURE 3.7) into the session as a turn."""
        ...

    async def wait(self) -> int:
        """Wait for the session program to exit; its exit status."""
        ...

    async def stop(self) -> None:
        """End the session (and its children)."""
        ...


EngineFactory = Callable[[EngineSpec, Channel], SessionEngine]
OnOutput = Callable[[bytes], Awaitable[None] | None]
