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

# Dialogs and notices (2.1.33x), recognised by their text -> our name for them. Claude Code draws
# some menus with option numbers ("❯ 1. Yes") and some without ("❯ No, exit"): the text and the
# selection marker are what identify a dialog, never its numbering.
DIALOGS = {
    "Loading development channels": "dev_channels",
    "Is this a project you created or one you trust": "trust",
    "Yes, I trust this folder": "trust",
    "Accessing workspace": "trust",
    "Do you want to use this API key": "api_key",
    "Detected a custom API key": "api_key",
    "Bypass Permissions mode": "bypass",
    "Choose the text style": "theme",
}
# A notice that holds the screen until Enter is pressed ("Auto mode … Press Enter to continue").
# Until it is dismissed, the first Enter typed into the session is eaten by it.
NOTICE_CONTINUE = re.compile(r"(?:press\s+)?enter to continue", re.IGNORECASE)
NOTICES = {"auto mode": "auto_mode"}
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
_SELECTED = re.compile(r"^(\s*)❯\s+(\S.*?)\s*$")
_NUMBERED = re.compile(r"^(\d+)\.\s+(.*)$")
_RULE = re.compile(r"^\s*─{8,}")


@dataclass(frozen=True)
class Option:
    number: int  # its position in the menu, from 1 (the drawn number when there is one)
    text: str
    selected: bool


@dataclass(frozen=True)
class Dialog:
    """A menu on screen: our name for it (`unknown` when no rule knows it) and its first line."""

    name: str
    title: str
    options: tuple[Option, ...]


class Screen:
    """A pyte screen fed with the PTY's output (subscribe `feed` to the PtySession)."""

    def __init__(self, rows: int = 50, cols: int = 200) -> None:
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._changed = asyncio.Event()
        self.generation = 0
        self._size: tuple[int, int] = (0, 0)
        self._rows: list[str] = []

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
        """The screen's rows, right-stripped. Only rows pyte marked dirty are rendered again: a
        delivery asks several questions of a screen that mostly did not change."""
        scr = self._screen
        size = (scr.lines, scr.columns)
        if self._size != size:
            self._size, self._rows = size, [""] * scr.lines
            dirty: set[int] | range = range(scr.lines)
        else:
            dirty = scr.dirty
        cols = range(scr.columns)
        for y in dirty:
            if 0 <= y < scr.lines:
                row = scr.buffer[y]
                # A wide character's second cell holds "": joining the cells is the display.
                self._rows[y] = "".join(row[x].data for x in cols).rstrip()
        scr.dirty.clear()
        return list(self._rows)

    def text(self) -> str:
        return "\n".join(self.lines())

    def tail(self, n: int = 15) -> str:
        lines = [ln for ln in self.lines() if ln.strip()]
        return "\n".join(lines[-n:])

    def contains(self, needle: str) -> bool:
        return needle in self.text()

    def dialog(self) -> str | None:
        """The dialog on screen (`dev_channels`, `trust`, `api_key`, `bypass`, `theme`, or
        `unknown` for a menu no rule knows), if any."""
        found = self.find_dialog()
        return found.name if found is not None else None

    def find_dialog(self) -> Dialog | None:
        """The menu on screen with its name and first line, whatever its size or numbering."""
        lines = self.lines()
        block = self._menu(lines)
        if block is None:
            return None
        first, options = block
        # Named by any of its words on screen (a dialog may put a rule between its title and
        # its menu). A wrong name is harmless: a rule only presses Enter once the option it
        # wants is selected, and a dialog without that option ends up blocked.
        text = "\n".join(lines)
        name = next((n for marker, n in DIALOGS.items() if marker in text), "unknown")
        # Its first line: the first text above the menu after the top rule (or the screen's top).
        top = 0
        for k in range(first - 1, -1, -1):
            if _RULE.match(lines[k]):
                top = k + 1
                break
        title = next((ln.strip() for ln in lines[top:first] if ln.strip()), options[0].text)
        return Dialog(name, title[:120], tuple(options))

    def options(self) -> list[Option]:
        """The choices of the dialog's menu, with the one the cursor (`❯`) is on."""
        block = self._menu(self.lines())
        return list(block[1]) if block is not None else []

    def _menu(self, lines: list[str]) -> tuple[int, list[Option]] | None:
        """(index of the menu's first line, its options): the run of lines around a selected
        `❯ …` line that start at the same column. The input box's `❯` is not a menu, nor is
        anything above it (the conversation echoes each prompt as `❯ text`): a dialog replaces
        the input box. A menu has at least two items."""
        marked = [k for k, ln in enumerate(lines) if "❯" in ln]
        if not marked:
            return None
        box = max((k for k in marked if self._in_input_box(lines, k)), default=-1)
        for i in range(len(lines) - 1, box, -1):
            m = _SELECTED.match(lines[i])
            if m is None:
                continue
            col = len(m.group(1)) + 1  # where the marker is; unselected items are blank there
            indent = len(lines[i]) - len(lines[i][col:].lstrip()) if col < len(lines[i]) else col
            lo = i
            while lo > 0 and self._is_item(lines[lo - 1], col, indent):
                lo -= 1
            hi = i
            while hi + 1 < len(lines) and self._is_item(lines[hi + 1], col, indent):
                hi += 1
            options = []
            for k in range(lo, hi + 1):
                raw = lines[k][indent:].strip()
                num = _NUMBERED.match(raw)
                number, text = (int(num.group(1)), num.group(2)) if num else (k - lo + 1, raw)
                options.append(Option(number, text.strip(), k == i))
            if len(options) >= 2:
                return lo, options
        return None

    @staticmethod
    def _is_item(line: str, col: int, indent: int) -> bool:
        """An unselected menu item: blank where the marker would be, text at the item column."""
        if not line.strip() or len(line) <= indent:
            return False
        return not line[:indent].strip() and line[indent] != " " and not _RULE.match(line)

    @staticmethod
    def _in_input_box(lines: list[str], i: int) -> bool:
        above = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        return bool(_RULE.match(above)) and lines[i].lstrip().startswith("❯")

    def notice(self) -> str | None:
        """A notice waiting for Enter: its name (`auto_mode`), or `unknown` with no rule."""
        block = self._notice_block()
        if block is None:
            return None
        lowered = " ".join(block).lower()
        return next((n for marker, n in NOTICES.items() if marker in lowered), "unknown")

    def notice_title(self) -> str:
        """The first line of the notice that waits for Enter (for `blocked: …`)."""
        block = self._notice_block()
        return block[0][:120] if block else ""

    def _notice_block(self) -> list[str] | None:
        """The lines of the notice: its "Enter to continue" line and the text just above it
        (up to a blank line or a rule, at most 8 lines)."""
        raw = self.lines()
        lines = [ln.strip(" ▎│") for ln in raw]
        hits = [k for k, ln in enumerate(lines) if NOTICE_CONTINUE.search(ln)]
        if not hits:
            return None
        hit = hits[-1]
        # Above the input box it is a notice only when nothing but blank lines separates the
        # two: the same words in the conversation (a reply quoting them) are not a notice.
        box = max(
            (k for k, ln in enumerate(raw) if "❯" in ln and self._in_input_box(raw, k)), default=-1
        )
        if hit < box:
            rule = max(k for k in range(box) if _RULE.match(raw[k]))
            if any(lines[k] for k in range(hit + 1, rule)):
                return None
        start = hit
        while (
            start > 0 and hit - start < 8 and lines[start - 1] and not _RULE.match(lines[start - 1])
        ):
            start -= 1
        return lines[start : hit + 1]

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
        if self.dialog() is not None or self.notice() is not None or self.busy():
            return False
        return self.prompt_line() is not None

    def prompt_line(self) -> str | None:
        """The text in the input box (after `❯`, continuation lines joined), or None when no
        input box is showing. A long input wraps onto more lines inside the box."""
        lines = self.lines()
        for i in range(len(lines) - 1, 0, -1):
            line = lines[i].lstrip()
            if not line.startswith("❯"):
                continue
            above = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            if not _RULE.match(above):
                continue
            parts = [line[1:].strip()]
            for ln in lines[i + 1 :]:
                if _RULE.match(ln):
                    return " ".join(p for p in parts if p)
                parts.append(ln.strip())
            return None
        return None
