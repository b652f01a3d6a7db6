"""The webhook spool: `state/router/webhook/spool.jsonl`, where a verified delivery is durable
before the receiver answers 200.

- `add` appends one line (flock + fsync) unless its `X-GitHub-Delivery` id was seen: a
  redelivery is a no-op, across restarts.
- The router's loop reads what was added past `drained.json`'s offset, delivers it through the
  pipeline (idempotent: deterministic event ids and the cursor's ledger), saves the cursor, then
  moves the offset. A `kill -9` anywhere re-reads at most what was not yet marked drained.
- Once everything is drained and the file has grown, it is truncated; the ids of the last
  deliveries move into `drained.json` so redeliveries stay recognised.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import flocked, read_json, repair_tail, write_json_atomic

KEEP_IDS = 10_000  # delivery ids remembered after compaction (GitHub redelivers within days)
COMPACT_AT = 8 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    delivery: str
    event: str
    received: float
    body: str
    end: int  # the file offset just past this entry's line


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / "spool.jsonl"
        self.state_path = self.dir / "drained.json"  # {"offset": n}
        self.ids_path = self.dir / "ids.json"  # delivery ids of compacted-away lines
        self._lock = threading.Lock()  # the receiver's threads; flock guards other processes
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._ids: OrderedDict[str, None] = OrderedDict()
        old = read_json(self.ids_path, []) or []
        for d in old if isinstance(old, list) else []:
            self._ids[str(d)] = None
        for e in self._read(0):
            self._ids[e.delivery] = None

    def _offset(self) -> int:
        state = read_json(self.state_path, {}) or {}
        off = state.get("offset", 0) if isinstance(state, dict) else 0
        return int(off) if isinstance(off, int) else 0

    def seen(self, delivery: str) -> bool:
        with self._lock:
            return delivery in self._ids

    def add(self, delivery: str, event: str, body: bytes, received: float) -> bool:
        """Make the delivery durable. False when this delivery id was already taken."""
        rec = {"d": delivery, "e": event, "t": received, "b": body.decode("utf-8", "replace")}
        line = (json.dumps(rec, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        with self._lock:
            if delivery in self._ids:
                return False
            with flocked(self.path) as fd:
                repair_tail(fd, self.path)
                os.write(fd, line)
                os.fsync(fd)
            self._ids[delivery] = None
            while len(self._ids) > 4 * KEEP_IDS:
                self._ids.popitem(last=False)
        return True

    def _read(self, offset: int) -> list[Entry]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if offset > size:
            offset = 0  # truncated after the offset was written: all of it is new
        out: list[Entry] = []
        with open(self.path, "rb") as f:
            f.seek(offset)
            pos = offset
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a torn tail (a crash mid-append that was never answered 200)
                pos += len(raw)
                try:
                    rec = json.loads(raw)
                    out.append(Entry(str(rec["d"]), str(rec["e"]), float(rec["t"]),
                                     str(rec["b"]), pos))  # fmt: skip
                except (ValueError, KeyError, TypeError):
                    continue
        return out

    def pending(self) -> list[Entry]:
        """Deliveries not yet drained, oldest first."""
        return self._read(self._offset())

    def drained(self, end: int) -> None:
        """Everything up to `end` went through the pipeline (and the cursor is saved)."""
        with self._lock, flocked(self.path) as fd:
            size = os.fstat(fd).st_size
            if end >= size and size > COMPACT_AT:
                # ids first: a crash after it re-reads the old lines (idempotent), never
                # forgets them
                write_json_atomic(self.ids_path, list(self._ids)[-KEEP_IDS:], mode=0o600)
                os.ftruncate(fd, 0)
                os.fsync(fd)
                end = 0
            state: dict[str, Any] = {"offset": end}
            write_json_atomic(self.state_path, state, mode=0o600)
