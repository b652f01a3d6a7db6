"""Token usage per UTC day from Claude Code transcripts, counted incrementally.

A transcript (`projects/<dir>/<session>.jsonl`) is append-only JSONL and grows to many MB, and
the budget gate counts every few seconds. `TranscriptTally` remembers, per file, how far it has
read (the end of the last complete line) and what it counted so far, and on each call reads only
the bytes appended since. A half-written last line is counted for that call only (as a full
read would count it, if it parses) and read again next time.

A file is read from its start again when it is not the same file any more: another device or
inode (replaced), smaller than what was read (truncated), or different bytes just before the
offset (rewritten in place).

The figures are exactly those of one full read of every file in order: each assistant message's
`message.usage` is counted once per message id (a message is written once per content block,
each line with the same usage), the first line of it counting, across files too; a line without
a `timestamp` counts for the day it is counted on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
CHUNK = 1 << 20  # bytes read at a time (a first read of a large file is not held whole)
SIG = 64  # bytes before the offset remembered to notice a file rewritten in place

Usage = tuple[int, int, int, int]  # in USAGE_KEYS order
Row = tuple[str, str, Usage]  # (message id or "", day or "" for "the day it is counted", usage)


def parse_row(line: str) -> Row | None:
    """The usage one transcript line records, or None."""
    if '"usage"' not in line:  # most lines are not assistant messages: skip the JSON parse
        return None
    try:
        row = json.loads(line)
    except ValueError:
        return None
    msg = row.get("message") if isinstance(row, dict) else None
    if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
        return None
    usage = msg["usage"]
    mid = str(msg.get("id") or row.get("uuid") or "")
    day = str(row.get("timestamp") or "")[:10]
    c = [int(v) if isinstance(v, int) and v > 0 else 0 for v in map(usage.get, USAGE_KEYS)]
    return mid, day, (c[0], c[1], c[2], c[3])


def rows_of(raw: bytes) -> list[Row]:
    """The rows of some bytes of a transcript, split as `str.splitlines` splits the text."""
    text = raw.decode("utf-8", errors="replace")
    return [r for piece in text.splitlines() if (r := parse_row(piece)) is not None]


def _add(days: dict[str, list[int]], day: str, counts: Usage) -> None:
    acc = days.setdefault(day, [0, 0, 0, 0])
    for i, v in enumerate(counts):
        acc[i] += v


@dataclass
class _FileCount:
    """What has been counted of one file, up to `offset` (the end of its last complete line)."""

    dev: int
    ino: int
    offset: int = 0
    sig: bytes = b""  # the bytes just before `offset`
    ids: dict[str, tuple[str, Usage]] = field(default_factory=dict)  # first line of each id
    anon: dict[str, list[int]] = field(default_factory=dict)  # per day: lines without an id
    days: dict[str, list[int]] = field(default_factory=dict)  # per day: this file's own total

    def add(self, row: Row) -> None:
        mid, day, counts = row
        if mid:
            if mid in self.ids:
                return
            self.ids[mid] = (day, counts)
        else:
            _add(self.anon, day, counts)
        _add(self.days, day, counts)


class TranscriptTally:
    """Per-day usage of a set of transcripts, reading only what was appended since last time."""

    def __init__(self) -> None:
        self._files: dict[Path, _FileCount] = {}
        self._lock = threading.Lock()  # the runner counts from more than one thread
        self.bytes_read = 0  # for the benchmark and the tests: what reading cost so far

    def usage(self, files: Iterable[Path]) -> dict[str, dict[str, int]]:
        with self._lock:
            counted: list[tuple[_FileCount, list[Row]]] = []
            listed: set[Path] = set()
            for path in map(Path, files):
                listed.add(path)
                got = self._update(path)
                if got is not None:
                    counted.append(got)
            for gone in self._files.keys() - listed:  # no longer one of the agent's transcripts
                del self._files[gone]
            return _combine(counted, time.time())

    def _update(self, path: Path) -> tuple[_FileCount, list[Row]] | None:
        """Read what was appended to `path`: its count so far, and the rows of an unfinished
        last line (counted this time, read again next time)."""
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                fc = self._files.get(path)
                if fc is None or not _same(f, st, fc):
                    fc = _FileCount(st.st_dev, st.st_ino)
                f.seek(fc.offset)
                tail = b""
                while chunk := f.read(CHUNK):
                    self.bytes_read += len(chunk)
                    buf = tail + chunk
                    end = buf.rfind(b"\n") + 1  # only complete lines are kept as counted
                    for row in rows_of(buf[:end]):
                        fc.add(row)
                    if end:
                        fc.offset += end
                        fc.sig = (fc.sig + buf[max(0, end - SIG) : end])[-SIG:]
                    tail = buf[end:]
        except OSError:  # gone or unreadable: not counted (a full read would skip it too)
            self._files.pop(path, None)
            return None
        self._files[path] = fc
        return fc, rows_of(tail) if tail else []


def _same(f: BinaryIO, st: os.stat_result, fc: _FileCount) -> bool:
    """Is the open file still the one `fc` counted (same inode, nothing cut or rewritten)?"""
    if (st.st_dev, st.st_ino) != (fc.dev, fc.ino) or st.st_size < fc.offset:
        return False
    f.seek(fc.offset - len(fc.sig))
    return f.read(len(fc.sig)) == fc.sig


def _combine(counted: list[tuple[_FileCount, list[Row]]], now: float) -> dict[str, dict[str, int]]:
    """The per-day totals of the files in order, each message id counted at its first line."""
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    out: dict[str, list[int]] = {}
    seen: set[str] = set()

    def add(day: str, counts: Iterable[int]) -> None:
        acc = out.setdefault(day or today, [0, 0, 0, 0])
        for i, v in enumerate(counts):
            acc[i] += v

    for fc, pending in counted:
        if seen.isdisjoint(fc.ids):  # the usual case: this file's own totals as they are
            for day, counts in fc.days.items():
                add(day, counts)
        else:  # a message already counted in an earlier file (a forked session's copy)
            for day, counts in fc.anon.items():
                add(day, counts)
            for mid, (day, usage) in fc.ids.items():
                if mid not in seen:
                    add(day, usage)
        seen.update(fc.ids)
        for mid, day, usage in pending:
            if mid:
                if mid in seen:
                    continue
                seen.add(mid)
            add(day, usage)
    return {day: dict(zip(USAGE_KEYS, acc, strict=True)) for day, acc in out.items()}
