"""Per-agent accounting: requests and tokens, kept in memory, persisted to `stats.json`.

Counts are cumulative across gateway restarts (the file is loaded at start). The file holds
numbers only: no prompt content, no credential, no sentinel.

Each agent's row also has `by_day`: `{"YYYY-MM-DD" (UTC): {<usage key>: tokens}}` for the last
`DAYS_KEPT` days. That is the file contract the runners' token budgets read
(runner/budget.py); they never import this package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.gateway.usage import USAGE_KEYS, Usage

COUNTERS = ("requests", "errors", *USAGE_KEYS)
DAYS_KEPT = 40


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


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
                days = row.get("by_day")
                self.agents[name]["by_day"] = {
                    str(d): {k: int(v.get(k, 0)) for k in USAGE_KEYS}
                    for d, v in (days.items() if isinstance(days, dict) else ())
                    if isinstance(v, dict)
                }

    def _row(self, agent: str) -> dict[str, Any]:
        row = self.agents.get(agent)
        if row is None:
            row = self.agents[agent] = {k: 0 for k in COUNTERS}
            row["last_request_at"] = None
            row["by_day"] = {}
        return row

    def record(self, agent: str, status: int, usage: Usage) -> None:
        row = self._row(agent)
        row["requests"] += 1
        if status >= 400:
            row["errors"] += 1
        now = self._clock()
        day = row["by_day"].setdefault(utc_day(now), {k: 0 for k in USAGE_KEYS})
        for key in USAGE_KEYS:
            row[key] += getattr(usage, key)
            day[key] += getattr(usage, key)
        for old in sorted(row["by_day"])[:-DAYS_KEPT]:
            del row["by_day"][old]
        row["last_request_at"] = now
        self._dirty = True

    def reject(self) -> None:
        self.rejected += 1
        self._dirty = True

    def snapshot(self) -> dict[str, Any]:
        return {
            "updated_at": self._clock(),
            "rejected": self.rejected,
            "agents": {
                name: {**row, "by_day": {d: dict(v) for d, v in row["by_day"].items()}}
                for name, row in sorted(self.agents.items())
            },
        }

    def take_dirty(self) -> dict[str, Any] | None:
        """A snapshot to persist if anything changed since the last one, else None."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.snapshot()

    def write(self, snapshot: dict[str, Any]) -> None:
        write_json_atomic(self.path, snapshot, mode=0o600)
