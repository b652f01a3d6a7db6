"""What the session's terminal shows, rendered by a VT emulator (pyte), and what it means.

The `claude` engine reads dialogs, notices and the idle prompt from the rendered screen rather
than from raw bytes: Claude Code redraws in place, so only the emulated screen says what is
visible now (research/claude-runner.md §2, real-claude-offline.md).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pyte

# Dialog titles (2.1.33x) -> our name for them.
DIALOGS = {
    "Loading development channels": "dev_channels",
    "Is this a project you created or one you trust": "trust",
    "Yes, I trust this folder": "trust",
    "Do you want to use this API key": "api_key",
    "Bypass Permissions mode": "bypass",
}
CHANNELS_UNAVAILABLE = (
    "Channels are not currently available",
    # 2.1.331 may fold the notice away ("1 more notice hidden") and say this in the status line.
    "channels aren't available right now",
    "development-channels ignored",
    "blocked by org policy",
)
CHANNELS_REGISTERED = "inject directly in this session"
NO_CONVERSATION = "No conversation found with session ID"
SESSION_IN_USE = "is already in use"
BUSY = ("esc to interrupt",)
_OPTION = re.compile(r"^\s*(❯)?\s*(\d+)\.\s+(.*?)\s*$")
_RULE = re.compile(r"^\s*─{8,}")


@dataclass(frozen=True)
class Option:
    number: int
    text: str
    selected: bool


class Screen:
    """A pyte screen fed with the PTY's output (subscribe `feed` to the PtySession)."""

    def __init__(self, rows: int = 50, cols: int = 200) -> None:
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._changed = asyncio.Event()
        self.generation = 0

    def feed(self, data: bytes) -> None:
        self._stream.feed(data)
        self.generation += 1
        self._changed.set()

    def resize(self, rows: int, cols: int) -> None:
        self._screen.resize(rows, cols)

    async def changed(self, timeout: float) -> bool:
        """Wait for new output; False if none came within `timeout`."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- reading -------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self._screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def tail(self, n: int = 15) -> str:
        lines = [ln for ln in self.lines() if ln.strip()]
        return "\n".join(lines[-n:])

    def contains(self, needle: str) -> bool:
        return needle in self.text()

    def dialog(self) -> str | None:
        """The dialog on screen (`dev_channels`, `trust`, `api_key`, `bypass`), if any."""
        text = self.text()
        if not self.options():
            return None
        for marker, name in DIALOGS.items():
            if marker in text:
                return name
        return None

    def options(self) -> list[Option]:
        """The numbered choices of a dialog, with the one the cursor (`❯`) is on."""
        out = []
        for line in self.lines():
            m = _OPTION.match(line)
            if m:
                out.append(Option(int(m.group(2)), m.group(3), bool(m.group(1))))
        # Only a run of options that includes the selected one is a dialog's menu.
        return out if any(o.selected for o in out) else []

    def channels_unavailable(self) -> str | None:
        text = self.text()
        return next((n for n in CHANNELS_UNAVAILABLE if n in text), None)

    def channels_registered(self) -> bool:
        return CHANNELS_REGISTERED in self.text()

    def busy(self) -> bool:
        """A turn is running: its spinner line ("… esc to interrupt") is near the bottom."""
        text = self.tail(12)
        return any(b in text for b in BUSY)

    def idle_prompt(self) -> bool:
        """The input box (`❯` between two rules) is showing, empty, with no dialog and no turn
        running. Claude Code may show a grey placeholder suggestion in the empty box; it is
        rendered as text too, so an input line is "empty" unless it holds what we typed."""
        if self.dialog() is not None or self.busy():
            return False
        return self.prompt_line() is not None

    def prompt_line(self) -> str | None:
        """The text after `❯` in the input box, or None when no input box is showing."""
        lines = self.lines()
        for i in range(len(lines) - 1, 0, -1):
            line = lines[i].lstrip()
            if line.startswith("❯") and not _OPTION.match(lines[i]):
                above = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
                below = next((ln for ln in lines[i + 1 :] if ln.strip()), "")
                if _RULE.match(above) and _RULE.match(below):
                    return line[1:].strip()
        return None
