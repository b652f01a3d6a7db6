"""Per-agent accounting: requests and tokens, kept in memory, persisted to `stats.json`.

Counts are cumulative across gateway restarts (the file is loaded at start). The file holds
numbers only: no prompt content, no credential, no sentinel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.gateway.usage import USAGE_KEYS, Usage

COUNTERS = ("requests", "errors", *USAGE_KEYS)


class Stats:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._dirty = False
        data = read_json(self.path, default=None)
        if not isinstance(data, dict):
            data = {}
        self.rejected = int(data.get("rejected", 0))
        self.agents: dict[str, dict[str, Any]] = {}
        for name, row in (data.get("agents") or {}).items():
            if isinstance(row, dict):
                self.agents[name] = {k: int(row.get(k, 0)) for k in COUNTERS}
                self.agents[name]["last_request_at"] = row.get("last_request_at")

    def _row(self, agent: str) -> dict[str, Any]:
        row = self.agents.get(agent)
        if row is None:
            row = self.agents[agent] = {k: 0 for k in COUNTERS}
            row["last_request_at"] = None
        return row

    def record(self, agent: str, status: int, usage: Usage) -> None:
        row = self._row(agent)
        row["requests"] += 1
        if status >= 400:
            row["errors"] += 1
        for key in USAGE_KEYS:
            row[key] += getattr(usage, key)
        row["last_request_at"] = self._clock()
        self._dirty = True

    def reject(self) -> None:
        self.rejected += 1
        self._dirty = True

    def snapshot(self) -> dict[str, Any]:
        return {
            "updated_at": self._clock(),
            "rejected": self.rejected,
            "agents": {name: dict(row) for name, row in sorted(self.agents.items())},
        }

    def take_dirty(self) -> dict[str, Any] | None:
        """A snapshot to persist if anything changed since the last one, else None."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.snapshot()

    def write(self, snapshot: dict[str, Any]) -> None:
        write_json_atomic(self.path, snapshot, mode=0o600)
