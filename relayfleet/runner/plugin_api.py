"""The public plugin contract (documented in docs/plugins.md; a test pins the two together).

A plugin is a folder with `plugin.json` and a module exposing `async def setup(api)`. The runner
builds one `PluginApi` per plugin and awaits `setup(api)` once. Everything a plugin may touch goes
through this object, so the runner can isolate a plugin's failures from the session.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayfleet.core.inboxfile import append_once

ToolFn = Callable[..., Any]


@dataclass(frozen=True)
class PluginManifest:
    """`plugin.json`: name, version, description, and the entry module (a file in the folder)."""

    name: str
    version: str
    description: str
    entry: str  # file name of the module holding `setup`, default "plugin.py"
    path: Path  # the plugin's folder
    config: Mapping[str, Any] = field(default_factory=dict)  # defaults for the own section


@dataclass(frozen=True)
class PluginTool:
    plugin: str
    name: str
    description: str
    fn: ToolFn


def new_event_id(prefix: str) -> str:
    return f"evt_{prefix}_{uuid.uuid4().hex[:16]}"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_event(
    body: str, *, source: str, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An inbox event (ARCHITECTURE 3.7) with a fresh id."""
    safe = "".join(c if c.isalnum() else "_" for c in source)[:24] or "plugin"
    return {
        "id": new_event_id(safe),
        "ts": utc_now(),
        "source": source,
        "body": body,
        "metadata": dict(metadata or {}),
    }


class PluginApi:
    """What `setup(api)` receives.

    Attributes: `name` (the plugin's name), `agent` (the agent's name), `config` (the agent's
    config as a dict, with the plugin's own section under `config["plugin"]`), `agent_dir`
    (`.fleet/agents/<agent>/`), `state_dir` (`.fleet/state/agents/<agent>/plugins/<plugin>/`,
    created for it), `inbox` (the agent's inbox file), `log` (a logger writing to runner.log).
    """

    def __init__(
        self,
        *,
        name: str,
        agent: str,
        config: Mapping[str, Any],
        agent_dir: Path,
        state_dir: Path,
        inbox: Path,
        log: logging.Logger,
        on_crash: Callable[[str, BaseException], None],
    ) -> None:
        self.name = name
        self.agent = agent
        self.config = config
        self.agent_dir = agent_dir
        self.state_dir = state_dir
        self.inbox = inbox
        self.log = log
        self.tools: list[PluginTool] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self._on_crash = on_crash

    async def emit(
        self, body: str, metadata: Mapping[str, Any] | None = None, source: str | None = None
    ) -> str:
        """Append an event to this agent's inbox (it reaches the session like any other).

        `source` defaults to the plugin's name. Returns the new event's id.
        """
        event = make_event(str(body), source=source or self.name, metadata=metadata)
        # The agent's own inbox is the file next to its runner; the append is the one every
        # inbox transport makes (flock, idempotent by id). It fsyncs: off the event loop.
        await asyncio.to_thread(append_once, self.inbox, event)
        return str(event["id"])

    def tool(
        self, name: str | None = None, description: str | None = None
    ) -> Callable[[ToolFn], ToolFn]:
        """Decorator: expose `fn` as an MCP tool of the agent's channel server.

        The tool's parameters come from the function's signature and type hints; its description
        defaults to the docstring. Sync and async functions both work.
        """

        def register(fn: ToolFn) -> ToolFn:
            tool_name = name or fn.__name__
            desc = description or (fn.__doc__ or "").strip() or tool_name
            self.tools.append(PluginTool(self.name, tool_name, desc, fn))
            return fn

        return register

    def spawn(self, coro: Coroutine[Any, Any, Any] | Awaitable[Any]) -> asyncio.Task[Any]:
        """Run `coro` in the background, supervised: a crash is reported, never fatal.

        Spawned tasks are cancelled when the runner stops.
        """
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._on_crash(self.name, exc)


# The attributes docs/plugins.md documents; tests/runner/test_plugin_docs.py pins both ways.
PUBLIC_API = (
    "name",
    "agent",
    "config",
    "agent_dir",
    "state_dir",
    "inbox",
    "log",
    "emit",
    "tool",
    "spawn",
)
