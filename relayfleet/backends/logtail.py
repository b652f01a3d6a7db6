"""Reading a session log the way `gh fleet logs` shows it, across rotation (`session.log.1` holds
what scrolled out of `session.log`).

A session log is what a terminal was sent: Claude Code ends lines with `\r\r\n`, places words
with cursor moves and redraws in place, so stripping escape sequences loses or runs text
together. `gh fleet logs` therefore renders the log through a terminal emulator (pyte, as the
runner's screen reader does) and prints the screen's lines, including what scrolled off the top;
`--raw` prints the bytes as they are.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pyte

# The size the runner gives a session (PtyEngine.dimensions); the log was drawn for it.
SESSION_ROWS, SESSION_COLS = 50, 200

# CSI / OSC / single-char escapes, and the bare CRs a TUI uses to redraw a line.
ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, modes
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
    rb"|\x1b[PX^_][^\x1b]*\x1b\\"  # DCS/SOS/PM/APC strings
    rb"|\x1b[@-Z\\-_]"  # two-byte escapes
)
CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_ansi(data: bytes) -> bytes:
    data = ANSI.sub(b"", data)
    data = data.replace(b"\r\n", b"\n")
    # A lone CR redraws the line: keep what was written last.
    data = b"\n".join(line.rsplit(b"\r", 1)[-1] for line in data.split(b"\n"))
    return CONTROL.sub(b"", data)


def read_tail_bytes(path: Path, max_bytes: int) -> bytes:
    """The last `max_bytes` of the log, reaching into the rotated file when the current is short."""
    parts: list[bytes] = []
    need = max_bytes
    for p in (path, path.with_name(path.name + ".1")):
        try:
            with open(p, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - need))
                chunk = f.read()
        except FileNotFoundError:
            continue
        parts.insert(0, chunk)
        need -= len(chunk)
        if need <= 0:
            break
    return b"".join(parts)


class RenderedLog:
    """A terminal emulator fed with a session log: `lines()` is what a person would have seen,
    one screen line per line (history that scrolled off the top first)."""

    def __init__(self, rows: int = SESSION_ROWS, cols: int = SESSION_COLS) -> None:
        self._screen = pyte.HistoryScreen(cols, rows, history=5000, ratio=0.5)
        # A bare LF also returns the carriage: logs not written through a tty read naturally.
        self._screen.set_mode(pyte.modes.LNM)
        self._stream = pyte.ByteStream(self._screen)
        self._shown: list[str] = []

    def feed(self, data: bytes) -> None:
        self._stream.feed(data)

    def lines(self) -> list[str]:
        cols = self._screen.columns
        rows = [line for line in self._screen.history.top]
        text = ["".join(row[x].data for x in range(cols)).rstrip() for row in rows]
        text += [ln.rstrip() for ln in self._screen.display]
        out: list[str] = []
        for ln in text:  # one blank line where the screen had several
            if ln or (out and out[-1]):
                out.append(ln)
        while out and not out[-1]:
            out.pop()
        return out

    def mark_shown(self) -> None:
        self._shown = self.lines()

    def new_lines(self) -> list[str]:
        """Lines that appeared or changed since the last call (for `logs -f`)."""
        now = self.lines()
        old, cur = self._shown[-300:], now[-300:]
        self._shown = now
        out: list[str] = []
        for tag, _i1, _i2, j1, j2 in difflib.SequenceMatcher(None, old, cur).get_opcodes():
            if tag in ("insert", "replace"):
                out.extend(ln for ln in cur[j1:j2] if ln)
        return out


def render(data: bytes, rows: int = SESSION_ROWS, cols: int = SESSION_COLS) -> list[str]:
    log = RenderedLog(rows, cols)
    log.feed(data)
    return log.lines()


def tail_lines(path: Path, lines: int, *, raw: bool = False) -> str:
    data = read_tail_bytes(Path(path), max(64 * 1024, lines * 400))
    if not raw:
        shown = render(data)[-lines:] if lines > 0 else []
        return "".join(ln + "\n" for ln in shown)
    text = data.decode("utf-8", "replace")
    # Split on LF only: a raw CR is part of the line (a TUI redraw), not a line of its own.
    out = text.split("\n")
    if out and out[-1] == "":
        out.pop()
    return "\n".join(out[-lines:]) + ("\n" if out else "") if lines > 0 else ""
