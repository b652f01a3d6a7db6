"""The `claude` engine: the real Claude Code, interactive, in a PTY; channel first, typing second.

Launch flags, environment and dialogs follow research/claude-runner.md §1.3, §3, §6 and
real-claude-offline.md. Start-up is a small state machine over the rendered screen: dialogs are
recognised by their text (numbered or not) and answered only where a rule says how (dev
channels, API key, bypass warning, theme), moving the selection explicitly; notices that wait
for Enter are dismissed. The trust dialog is never accepted on screen (accepting records trust
for the enclosing repository): the runner pre-seeds trust for the agent's own workspace in a
config dir it owns, and otherwise stops with an error naming the fixes. A dialog or notice with
no rule blocks the session (`SessionBlocked`): it stays up for a human to answer through
`gh fleet attach`, and the runner does not retry. Then the runner decides the delivery path.
Channels are remote-gated and may be refused silently, so the channel path is used only when
the client connected to our server *and* the session announced the channel; a "Channels are not
currently available" / "ignored" notice, or no announcement, means PTY typing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from relayfleet.core.errors import BackendError
from relayfleet.runner.engine import DELIVERY_CHANNEL, DELIVERY_PTY
from relayfleet.runner.engine_command import PtyEngine
from relayfleet.runner.neutralise import channel_payload, event_text, typed_payload
from relayfleet.runner.screen import NO_CONVERSATION, SESSION_IN_USE, Screen

SERVER_NAME = "relay"
UP, DOWN, ENTER = b"\x1b[A", b"\x1b[B", b"\r"
CLEAR_LINE = b"\x15"  # Ctrl-U
# Turning any of these on disables feature-flag fetching, and with it channels and Remote Control.
FLAG_FETCH_KILLERS = (
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "DISABLE_GROWTHBOOK",
)
# Dialog -> the option to choose (the start of its text). `trust` is deliberately absent: it is
# never answered on screen (see `trust_error`); a dialog without a rule blocks the session.
ANSWERS = {
    "dev_channels": "I am using this for local development",
    "api_key": "Yes",  # the key the runner itself put in the session's environment
    "bypass": "Yes, I accept",  # shown only when the agent's args ask for that mode
    "theme": "Dark mode",
}
# Notices that wait for Enter and only inform: dismissed before anything is typed.
DISMISS = ("auto_mode",)


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

    nothing_sent = False  # True: the event never reached the session (not a re-send next time)


class NotReady(SessionStartError):
    """No idle prompt to type into: nothing was typed."""

    nothing_sent = True


class SessionBlocked(SessionStartError):
    """A dialog or notice the runner has no rule for (or must not answer) holds the session.

    The session is left running so a human can answer it (`gh fleet attach <agent>`); `title`
    is the dialog's first line."""

    nothing_sent = True

    def __init__(self, message: str, title: str) -> None:
        super().__init__(message)
        self.title = title


def blocked_message(agent: str, title: str) -> str:
    return f"blocked: {title} (answer it: gh fleet attach {agent})"


def trust_error(agent: str, workdir: Any) -> str:
    return (
        f"blocked: Claude Code asks whether to trust the workspace {workdir}; the runner never "
        f"accepts that on screen. Fix it one of two ways: trust it once by hand (answer it with "
        f"gh fleet attach {agent}, or run `claude` in {workdir} yourself), or let the runner own "
        f"the agent's config dir: set isolate_config = true under [claude] in "
        f".fleet/agents/{agent}/agent.toml"
    )


class ClaudeEngine(PtyEngine):
    """Runs `claude` for one agent. `delivery` is `channel` or `pty` once `start()` returns."""

    startup_timeout = 120.0  # a cold start of the real client on a loaded machine is slow
    channel_timeout = 15.0  # how long to wait for the MCP client + channel announcement
    busy_timeout = 300.0  # PTY typing waits this long for the idle prompt, then fails (re-sent)
    enter_delay = 0.15  # between the paste and Enter (research: ≥150 ms)

    def __init__(self, spec: Any, channel: Any) -> None:
        super().__init__(spec, channel)
        self.screen = Screen(*self.dimensions)
        self.notice: str | None = None  # why channels are off, when they are
        self.launched_with: list[str] = []
        self.debug = DebugLog(self.debug_path)
        self.confirmed_by: str | None = None  # "screen" | "debug-file": how the channel was seen
        self.blocked: str | None = None  # the first line of a dialog that holds the session
        # Screen generation at the last delivery: until the screen changes after it, a turn
        # just sent is still coming (a channel push shows a moment later).
        self._sent_at_gen: int | None = None
        self._sent_at: float = 0.0

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
        if self.spec.settings is not None:  # the permission policy's rules and hook
            argv += ["--settings", str(self.spec.settings)]
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
        if outcome.startswith("blocked:"):
            raise self._blocked(outcome.removeprefix("blocked:"))
        if outcome != "idle":
            assert self.pty is not None
            tail = self.screen.tail(8)
            await self.pty.terminate(2)
            raise SessionStartError(
                f"claude did not start ({outcome}); its screen ended with:\n{tail}"
            )
        self._delivery = await self._choose_delivery()

    async def _until_idle(self, timeout: float | None = None) -> str:
        """Answer dialogs and dismiss notices until the idle prompt shows; returns why it
        stopped: `idle`, `blocked:<title>` (left on screen), or a failure."""
        assert self.pty is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.startup_timeout if timeout is None else timeout)
        answered: dict[str, int] = {}
        while loop.time() < deadline:
            if not self.pty.alive():
                # Its last words may still be on their way from the PTY (a loaded machine):
                # read them before deciding why it exited.
                while await self.screen.changed(0.3):
                    pass
                text = self.screen.text()
                if NO_CONVERSATION in text:
                    return "no_conversation"
                if SESSION_IN_USE in text:
                    return "in_use"
                return f"exited with status {self.pty.returncode}"
            step = await self._step(answered)
            if step is not None:
                return step
            await self.screen.changed(0.25)
        return "timed out"

    async def _step(self, answered: dict[str, int]) -> str | None:
        """One look at the screen: answer what has a rule; `idle`, `blocked:…` or None (wait)."""
        found = self.screen.find_dialog()
        if found is not None:
            if found.name == "trust":
                return "blocked:trust"
            answered[found.name] = answered.get(found.name, 0) + 1
            if found.name not in ANSWERS or answered[found.name] > 3:
                return f"blocked:{found.title}"
            await self._choose(ANSWERS[found.name])
            return None
        notice = self.screen.notice()
        if notice is not None:
            answered[notice] = answered.get(notice, 0) + 1
            if notice not in DISMISS or answered[notice] > 3:
                return f"blocked:{self.screen.notice_title()}"
            await self._press(ENTER, 5)
            await self.screen.changed(0.3)
            return None
        if self.screen.idle_prompt():
            return "idle"
        return None

    def _blocked(self, title: str) -> SessionBlocked:
        self.blocked = title
        agent = self.spec.agent.name
        if title == "trust":
            return SessionBlocked(trust_error(agent, self.spec.workdir), "trust")
        return SessionBlocked(blocked_message(agent, title), title)

    async def until_unblocked(self) -> bool:
        """After `SessionBlocked`: wait (without limit) until a human answered the dialog and
        the session reached its idle prompt (True, delivery chosen), or it exited (False)."""
        assert self.pty is not None
        answered: dict[str, int] = {}
        while self.pty.alive():
            step = await self._step(answered)
            if step == "idle":
                self.blocked = None
                self._delivery = await self._choose_delivery()
                return True
            if step is not None:
                answered.clear()  # still blocked: never answered blindly, just wait
            await self.screen.changed(1.0)
        return False

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
            if target is current:
                await self._press(ENTER, 10)
                await self.screen.changed(0.3)  # let the next screen settle
                return
            down = options.index(target) > options.index(current)
            await self._press(DOWN if down else UP, 2)

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
            content, meta = channel_payload(event, resend=resend)
            if await self.channel.push(content, meta):
                self._mark_sent()
                return
        # No client listening right now (it is reconnecting): type it rather than drop it.
        await self._type(event, resend=resend)

    turn_grace = 2.0  # a turn sent but not yet on screen counts as running this long

    def _mark_sent(self) -> None:
        self._sent_at_gen = self.screen.generation
        self._sent_at = asyncio.get_running_loop().time()

    def mid_turn(self) -> bool:
        """A turn is running, or was just sent and has not shown yet."""
        if self._sent_at_gen is not None:
            if self.screen.generation != self._sent_at_gen:
                self._sent_at_gen = None
            elif asyncio.get_running_loop().time() - self._sent_at < self.turn_grace:
                return True
            else:
                self._sent_at_gen = None
        return not self.screen.idle_prompt()

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the session is at its idle prompt (bounded); True when it was mid-turn,
        so the events that arrived meanwhile may go in together (runner/coalesce.py)."""
        if self.pty is None or not self.mid_turn():
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.busy_timeout if timeout is None else timeout)
        while self.pty.alive() and self.mid_turn() and loop.time() < deadline:
            if self.screen.dialog() is not None or self.screen.notice() is not None:
                break  # not a turn: the delivery itself deals with dialogs and notices
            await self.screen.changed(0.1)
        return True

    async def _reconnected(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.channel.connected():
                return True
            await asyncio.sleep(0.1)
        return False

    async def _ready_for_input(self) -> None:
        """Wait for the empty idle prompt; dialogs and notices on the way are handled first (or
        the delivery fails as blocked: nothing is typed into a dialog)."""
        assert self.pty is not None
        answered: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_timeout
        while loop.time() < deadline:
            if not self.pty.alive():
                raise NotReady("the session exited before the event could be typed")
            step = await self._step(answered)
            if step == "idle":
                self.blocked = None
                return
            if step is not None and step.startswith("blocked:"):
                self.blocked = step.removeprefix("blocked:")
                raise self._blocked(self.blocked)
            await self.screen.changed(0.25)
        raise NotReady(f"no idle prompt within {self.busy_timeout:.0f}s; not typing")

    async def _type(self, event: dict[str, Any], *, resend: bool) -> None:
        """Type the event into the idle prompt; return only once the session took it in (the
        text showed in the input box and was submitted), else raise (the runner re-sends)."""
        pty = self._require_pty()
        await pty.wait_released()
        await self._ready_for_input()
        text = event_text(event, resend=resend)
        payload = typed_payload(event, resend=resend, bracketed=pty.bracketed_paste)
        if self.screen.prompt_line():
            # Left-over input (or a grey placeholder suggestion, which typing replaces anyway):
            # Ctrl-U empties the line so the event is not submitted glued to it.
            await self._press(CLEAR_LINE, 1.0)
        pty.write(payload)
        if not await self._wait_for(lambda: self._shows_typed(text), 10.0):
            pty.write(CLEAR_LINE)  # leave the input box empty for the next attempt
            raise SessionStartError("the typed event did not show in the input box")
        await asyncio.sleep(self.enter_delay)
        await pty.wait_released()
        for _ in range(2):
            pty.write(ENTER)
            if await self._wait_for(self._submitted, 5.0):
                self._mark_sent()
                return
        raise SessionStartError("the typed event was not submitted")

    def _shows_typed(self, text: str) -> bool:
        """The input box holds `text` (compared without spaces: a long line wraps), or Claude
        Code's placeholder for a long paste."""
        box = self.screen.prompt_line()
        if not box:
            return False
        if "[Pasted text" in box:
            return True
        squeeze = "".join(text.split())
        return "".join(box.split()).endswith(squeeze[-40:])

    def _submitted(self) -> bool:
        return self.screen.busy() or self.screen.prompt_line() in ("", None)

    def status(self) -> dict[str, Any]:
        st = super().status()
        st["channel_connected"] = self.channel.connected()
        st["channel_notice"] = self.notice
        st["channel_confirmed_by"] = self.confirmed_by
        st["blocked"] = self.blocked
        return st


def channel_event(event: dict[str, Any], *, resend: bool = False) -> tuple[str, dict[str, str]]:
    """(content, meta) for `notifications/claude/channel` (runner/neutralise.py)."""
    return channel_payload(event, resend=resend)


def typed_text(event: dict[str, Any], *, resend: bool = False) -> str:
    """The text typed for an event (runner/neutralise.py): it always opens with the runner's
    `[FROM …]` frame, so never with a `/`, `!` or `#` command prefix."""
    return event_text(event, resend=resend)
