"""Reading a session log the way `gh fleet logs` shows it: last N lines, ANSI optionally stripped,
across rotation (`session.log.1` holds what scrolled out of `session.log`)."""

from __future__ import annotations

import re
from pathlib import Path

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


def tail_lines(path: Path, lines: int, *, raw: bool = False) -> str:
    data = read_tail_bytes(Path(path), max(64 * 1024, lines * 400))
    if not raw:
        data = strip_ansi(data)
    text = data.decode("utf-8", "replace")
    # Split on LF only: a raw CR is part of the line (a TUI redraw), not a line of its own.
    out = text.split("\n")
    if out and out[-1] == "":
        out.pop()
    return "\n".join(out[-lines:]) + ("\n" if out else "") if lines > 0 else ""
