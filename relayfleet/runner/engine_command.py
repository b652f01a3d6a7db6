"""The `command` engine: any program in a PTY, with inbox events typed into it.

Also the base of the `claude` engine (`PtyEngine`): both own one PtySession that the supervisor
can watch (`pty.subscribe`), attach a human to (`pty.write`, `pty.held`) and restart.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from relayfleet.runner.channel import write_mcp_config
from relayfleet.runner.engine import DELIVERY_PTY, Channel, EngineSpec
from relayfleet.runner.neutralise import RESEND_MARK, event_text
from relayfleet.runner.pty import PtySession

__all__ = ["RESEND_MARK", "CommandEngine", "PtyEngine", "event_text"]


class PtyEngine:
    """Shared plumbing: spawn, wait, stop, status. Subclasses choose argv/env and delivery."""

    dimensions: tuple[int, int] = (50, 200)

    def __init__(self, spec: EngineSpec, channel: Channel) -> None:
        self.spec = spec
        self.channel = channel
        self.pty: PtySession | None = None
        self._delivery = DELIVERY_PTY
        self.settled: bool | None = None
        self.ready_after: float | None = None

    @property
    def delivery(self) -> str:
        return self._delivery

    @property
    def mcp_config_path(self) -> Path:
        return self.spec.state_dir / "mcp.json"

    def write_mcp_config(self, name: str = "relay") -> Path:
        return write_mcp_config(self.mcp_config_path, name, self.spec.mcp_url, self.spec.mcp_token)

    def base_env(self) -> dict[str, str]:
        """The session's whole environment: allowlisted, declared, endpoint applied (every
        engine: a `command` session in gateway mode never sees the real key either)."""
        from relayfleet.runner.endpoint import endpoint_env

        env = endpoint_env(self.spec, os.environ)
        env["TERM"] = "xterm-256color"
        env["RELAYFLEET_AGENT"] = self.spec.agent.name
        return env

    async def spawn(self, argv: list[str], env: dict[str, str]) -> PtySession:
        self.spec.workdir.mkdir(parents=True, exist_ok=True)
        self.pty = await PtySession.spawn(
            argv,
            env=env,
            cwd=self.spec.workdir,
            dimensions=self.dimensions,
            log_path=self.spec.session_log,
            redact=self.spec.redact,
        )
        if self.spec.on_spawn is not None:
            self.spec.on_spawn(self.pty.pid)
        return self.pty

    def _require_pty(self) -> PtySession:
        if self.pty is None:
            raise RuntimeError("the session has not been started")
        return self.pty

    def resize(self, rows: int, cols: int) -> None:
        """The session's terminal size (an attached viewer's, or back to `dimensions`)."""
        if self.pty is not None:
            self.pty.resize(rows, cols)

    async def wait(self) -> int:
        return await self._require_pty().wait()

    async def stop(self, grace: float = 5.0) -> None:
        if self.pty is not None:
            await self.pty.terminate(grace)

    def status(self) -> dict[str, Any]:
        """What `gh fleet status` shows about the session."""
        extra = {"ready_after_s": self.ready_after} if self.ready_after is not None else {}
        return extra | {
            "delivery": self.delivery,
            "session_pid": self.pty.pid if self.pty else None,
            "bracketed_paste": bool(self.pty and self.pty.bracketed_paste),
            "held": bool(self.pty and self.pty.held),
        }


class CommandEngine(PtyEngine):
    """Runs `agent.claude.command + agent.claude.args`; each event is typed as one line + Enter.

    The program learns the runner's MCP endpoint from `RELAYFLEET_MCP_CONFIG` (a 0600
    `--mcp-config`-shaped file), so a fake or a script can call the runner's tools.
    """

    enter_delay = 0.05
    ready_timeout = 15.0  # a program that never settles is typed into anyway after this

    async def start(self) -> None:
        cmd = [*self.spec.agent.claude.command, *self.spec.agent.claude.args]
        if not cmd:
            raise ValueError(f"agent {self.spec.agent.name}: [claude] command is empty")
        env = self.base_env()
        if self.spec.mcp_url:
            env["RELAYFLEET_MCP_CONFIG"] = str(self.write_mcp_config())
        pty = await self.spawn(cmd, env)
        # Ready only once the program has settled (drawn its prompt, taken raw mode, and is
        # waiting): an event typed before a raw-mode switch would be flushed away unseen.
        loop = asyncio.get_running_loop()
        began = loop.time()
        self.settled = await pty.settle(timeout=self.ready_timeout)
        self.ready_after = round(loop.time() - began, 3)

    async def deliver(self, event: dict[str, Any], *, resend: bool = False) -> None:
        # The one neutraliser (runner/neutralise.py): one inert line, framed by the runner.
        pty = self._require_pty()
        await pty.paste(
            event_text(event, resend=resend), enter_delay=self.enter_delay, single_line=True
        )
