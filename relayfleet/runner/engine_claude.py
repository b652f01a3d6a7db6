"""The `claude` engine: the real Claude Code, interactive, in a PTY; channel first, typing second.

Launch flags, environment and dialogs follow research/claude-runner.md §1.3, §3, §6 and
real-claude-offline.md. Start-up is a small state machine over the rendered screen: answer the
dev-channels dialog (its first option), the trust and API-key dialogs (moving the selection
explicitly: their defaults are the safe "No"), wait for the idle prompt, then decide the
delivery path. Channels are remote-gated and may be refused silently, so the channel path is
used only when the client connected to our server *and* the session announced the channel;
a "Channels are not currently available" / "ignored" notice, or no announcement, means PTY typing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from typing import Any

from relayfleet.core.errors import BackendError
from relayfleet.runner.engine import DELIVERY_CHANNEL, DELIVERY_PTY
from relayfleet.runner.engine_command import RESEND_MARK, PtyEngine
from relayfleet.runner.pty import sanitize
from relayfleet.runner.screen import NO_CONVERSATION, SESSION_IN_USE, Screen

SERVER_NAME = "relay"
UP, DOWN, ENTER = b"\x1b[A", b"\x1b[B", b"\r"
# Turning any of these on disables feature-flag fetching, and with it channels and Remote Control.
FLAG_FETCH_KILLERS = (
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "DISABLE_GROWTHBOOK",
)
# Dialog -> the option to choose (a substring of its text).
ANSWERS = {
    "dev_channels": "I am using this for local development",
    "trust": "Yes, I trust this folder",
    "api_key": "Yes",
    "bypass": "Yes, I accept",
}


DEBUG_FILE = "claude-debug.log"
DEBUG_MAX_BYTES = 8 * 1024 * 1024  # the debug file is cut back past this (weeks of a session)
# Lines of Claude Code's --debug-file that say whether our channel registered (research §1.3).
DEBUG_REGISTERED = ("Channel notifications registered", "Channel notifications re-registered")
DEBUG_REFUSED = (
    "Channel notifications skipped",
    "Channels are not currently available",
    "development-channels ignored",
    "blocked by org policy",
)


class DebugLog:
    """Follows the session's `--debug-file` for channel registration, from where a launch began.

    The newest verdict wins: a reconnect logs a re-registration, a later refusal turns it off.
    The file is cut back when it grows past `max_bytes` (Claude Code appends to it).
    """

    def __init__(self, path: Any, *, max_bytes: int = DEBUG_MAX_BYTES) -> None:
        from pathlib import Path

        self.path = Path(path)
        self.max_bytes = max_bytes
        self.registered = False
        self.refusal: str | None = None
        self._partial = b""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if size > max_bytes:  # between two launches: keep the last one's log as .1
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            size = 0
        self.offset = size  # only what this launch writes counts

    def scan(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offset:  # truncated under us: start over
                    self.offset, self._partial = 0, b""
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if any(m in line for m in DEBUG_REGISTERED):
                self.registered, self.refusal = True, None
            else:
                hit = next((m for m in DEBUG_REFUSED if m in line), None)
                if hit:  # the reason as logged, e.g. "… skipped: Channels are not …"
                    self.registered, self.refusal = False, line[line.index(hit) :].strip()[:200]
        if self.offset > self.max_bytes:
            with contextlib.suppress(OSError):
                os.truncate(self.path, 0)
            self.offset, self._partial = 0, b""


class SessionStartError(BackendError):
    """The session did not reach its idle prompt."""


class ClaudeEngine(PtyEngine):
    """Runs `claude` for one agent. `delivery` is `channel` or `pty` once `start()` returns."""

    startup_timeout = 120.0  # a cold start of the real client on a loaded machine is slow
    channel_timeout = 15.0  # how long to wait for the MCP client + channel announcement
    busy_timeout = 300.0  # PTY typing waits this long for the idle prompt, then types anyway
    enter_delay = 0.15  # between the paste and Enter (research: ≥150 ms)

    def __init__(self, spec: Any, channel: Any) -> None:
        super().__init__(spec, channel)
        self.screen = Screen(*self.dimensions)
        self.notice: str | None = None  # why channels are off, when they are
        self.launched_with: list[str] = []
        self.debug = DebugLog(self.debug_path)
        self.confirmed_by: str | None = None  # "screen" | "debug-file": how the channel was seen

    @property
    def debug_path(self) -> Any:
        return self.spec.state_dir / DEBUG_FILE

    # -- launch --------------------------------------------------------------------------------

    def argv(self, *, resume: bool) -> list[str]:
        claude = self.spec.agent.claude
        argv = [*claude.command, *claude.args]
        # Variadic flags are each followed by another flag so they cannot swallow arguments.
        argv += ["--mcp-config", str(self.mcp_config_path), "--strict-mcp-config"]
        argv += ["--dangerously-load-development-channels", f"server:{SERVER_NAME}"]
        argv += ["--resume" if resume else "--session-id", self.spec.session_id]
        if self.spec.agent.model:
            argv += ["--model", self.spec.agent.model]
        persona = self.spec.agent_dir / "CLAUDE.md"
        if persona.exists():
            argv += ["--append-system-prompt-file", str(persona)]
        if claude.remote_control:
            argv += ["--remote-control", self.spec.agent.name]
        # Where "Channel notifications registered/skipped" is written (research §6).
        argv += ["--debug-file", str(self.debug_path)]
        return argv

    def env(self) -> dict[str, str]:
        try:
            from relayfleet.runner.endpoint import endpoint_env
        except ImportError:  # the endpoint module is optional: isolate the config dir only
            env = self.base_env()
            if self.spec.agent.claude.isolate_config:
                env["CLAUDE_CONFIG_DIR"] = str(self.spec.state_dir / "claude-config")
        else:
            env = endpoint_env(self.spec, os.environ)
        env["TERM"] = "xterm-256color"
        env["RELAYFLEET_AGENT"] = self.spec.agent.name
        env["MCP_PROTOCOL_NEGOTIATION"] = "legacy"  # never probe into the 2026 era (§1.4)
        env["DISABLE_AUTOUPDATER"] = "1"
        for key in FLAG_FETCH_KILLERS:
            env.pop(key, None)
        return env

    async def _launch(self, resume: bool) -> None:
        self.screen = Screen(*self.dimensions)
        self.debug = DebugLog(self.debug_path)  # every (re)launch is judged on its own lines
        self.launched_with = self.argv(resume=resume)
        pty = await self.spawn(self.launched_with, self.env())
        pty.subscribe(self.screen.feed)

    async def start(self) -> None:
        self.write_mcp_config(SERVER_NAME)
        self._delivery = DELIVERY_PTY
        await self._launch(self.spec.resume)
        outcome = await self._until_idle()
        if outcome in ("no_conversation", "in_use"):
            # --resume of a conversation that never got a turn has nothing to resume (and a
            # --session-id already on disk must be resumed): relaunch the other way round.
            assert self.pty is not None
            await self.pty.terminate(2)
            await self._launch(resume=outcome == "in_use")
            outcome = await self._until_idle()
        if outcome != "idle":
            assert self.pty is not None
            tail = self.screen.tail(8)
            await self.pty.terminate(2)
            raise SessionStartError(
                f"claude did not start ({outcome}); its screen ended with:\n{tail}"
            )
        self._delivery = await self._choose_delivery()

    async def _until_idle(self) -> str:
        """Answer dialogs until the idle prompt shows; returns why it stopped."""
        assert self.pty is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        answered: dict[str, int] = {}
        while loop.time() < deadline:
            if not self.pty.alive():
                text = self.screen.text()
                if NO_CONVERSATION in text:
                    return "no_conversation"
                if SESSION_IN_USE in text:
                    return "in_use"
                return f"exited with status {self.pty.returncode}"
            dialog = self.screen.dialog()
            if dialog is not None:
                answered[dialog] = answered.get(dialog, 0) + 1
                if dialog not in ANSWERS or answered[dialog] > 3:
                    return f"stuck at the {dialog} dialog"
                await self._choose(ANSWERS[dialog])
                continue
            if self.screen.idle_prompt():
                return "idle"
            await self.screen.changed(0.25)
        return "timed out"

    async def _choose(self, wanted: str) -> None:
        """Move the dialog's selection onto `wanted`, check it is there, then press Enter."""
        assert self.pty is not None
        for _ in range(10):
            options = self.screen.options()
            target = next((o for o in options if o.text.startswith(wanted)), None)
            current = next((o for o in options if o.selected), None)
            if target is None or current is None:
                await self.screen.changed(0.5)
                continue
            if target.number == current.number:
                await self._press(ENTER, 10)
                await self.screen.changed(0.3)  # let the next screen settle
                return
            await self._press(DOWN if target.number > current.number else UP, 2)

    async def _press(self, key: bytes, timeout: float) -> None:
        """Send one key and wait (up to `timeout`) for the screen to react."""
        assert self.pty is not None
        before = self.screen.generation
        self.pty.write(key)
        await self._wait_for(lambda: self.screen.generation != before, timeout)

    async def _wait_for(self, pred: Any, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            left = deadline - loop.time()
            if left <= 0:
                return False
            await self.screen.changed(min(left, 0.25))
        return True

    async def _choose_delivery(self) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.channel_timeout
        while loop.time() < deadline:
            self.debug.scan()
            self.notice = self.screen.channels_unavailable() or self.debug.refusal
            if self.notice:
                return DELIVERY_PTY
            if self.channel.connected():
                if self.screen.channels_registered():
                    self.confirmed_by = "screen"
                    return DELIVERY_CHANNEL
                if self.debug.registered:
                    self.confirmed_by = "debug-file"
                    return DELIVERY_CHANNEL
            await self.screen.changed(0.2)
        self.notice = self.notice or "channel not announced by the session"
        return DELIVERY_PTY

    # -- delivery ------------------------------------------------------------------------------

    def resize(self, rows: int, cols: int) -> None:
        super().resize(rows, cols)
        self.screen.resize(rows, cols)  # the screen we read dialogs from must match the PTY

    def recheck(self) -> None:
        """Follow the debug file after start: a refusal (a reconnect that did not re-register)
        switches to PTY typing, a re-registration switches back to the channel."""
        was = (self.debug.registered, self.debug.refusal)
        self.debug.scan()
        if (self.debug.registered, self.debug.refusal) == was:
            return
        if self.debug.refusal:
            self._delivery, self.notice = DELIVERY_PTY, self.debug.refusal
        elif self.debug.registered:
            self._delivery, self.notice, self.confirmed_by = DELIVERY_CHANNEL, None, "debug-file"

    async def deliver(self, event: dict[str, Any], *, resend: bool = False) -> None:
        self.recheck()
        if self._delivery == DELIVERY_CHANNEL and (
            self.channel.connected() or await self._reconnected(5.0)
        ):
            content, meta = channel_event(event, resend=resend)
            if await self.channel.push(content, meta):
                return
        # No client listening right now (it is reconnecting): type it rather than drop it.
        await self._type(event, resend=resend)

    async def _reconnected(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.channel.connected():
                return True
            await asyncio.sleep(0.1)
        return False

    async def _type(self, event: dict[str, Any], *, resend: bool) -> None:
        pty = self._require_pty()
        await pty.wait_released()
        # Only into an empty, idle input box: never into a dialog or a half-written prompt.
        await self._wait_for(self.screen.idle_prompt, self.busy_timeout)
        text = typed_text(event, resend=resend)
        before = self.screen.prompt_line()
        await pty.paste(text, enter_delay=self.enter_delay)
        # Verify it was submitted (the box cleared or a turn started); else press Enter once more.
        submitted = await self._wait_for(
            lambda: self.screen.busy() or self.screen.prompt_line() in ("", before), 3.0
        )
        if not submitted:
            pty.write(ENTER)

    def status(self) -> dict[str, Any]:
        st = super().status()
        st["channel_connected"] = self.channel.connected()
        st["channel_notice"] = self.notice
        st["channel_confirmed_by"] = self.confirmed_by
        return st


def channel_event(event: dict[str, Any], *, resend: bool = False) -> tuple[str, dict[str, str]]:
    """(content, meta) for `notifications/claude/channel`: meta holds identifiers only."""
    md = event.get("metadata") or {}
    meta = {
        "event_id": event.get("id"),
        "from": event.get("source"),
        "kind": md.get("kind"),
        "repo": md.get("repo"),
        "number": md.get("number"),
        "resend": "true" if resend else "false",
    }
    # Claude Code shows the content inside `<channel …>…</channel>`: a body that writes that tag
    # itself could close ours and open a forged one (another source, made-up meta).
    content = _CHANNEL_TAG.sub("\u2039\\1", str(event.get("body") or ""))
    return content, {k: str(v) for k, v in meta.items() if v not in (None, "")}


_CHANNEL_TAG = re.compile(r"<(/?\s*channel)", re.IGNORECASE)


def typed_text(event: dict[str, Any], *, resend: bool = False) -> str:
    """The text typed for an event: sanitized, never starting with a command prefix."""
    text = sanitize(str(event.get("body") or event.get("id") or "")).strip()
    if text[:1] in ("/", "!", "#"):
        text = "[event] " + text  # `/cmd`, `!shell` and `#memory` must not be triggered by data
    return (RESEND_MARK + text) if resend else text
