"""What the GitHub rate limit allows right now, as last reported by the `x-ratelimit-*` headers.

Also remembers a global pause (secondary limit, or primary budget spent) so that the client refuses
to send anything before that instant, and a one-hour log of responses for `router status`
("requests and 304s in the last hour").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

HOUR = 3600.0


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class Budget:
    clock: Callable[[], float]
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # epoch seconds when the primary window resets
    used: int | None = None
    resource: str | None = None
    paused_until: float = 0.0  # no request may leave before this instant
    pause_reason: str = ""
    secondary_strikes: int = 0  # consecutive secondary-limit answers, drives the backoff
    _log: deque[tuple[float, int | None]] = field(default_factory=deque, repr=False)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the rate-limit figures from a response's headers (absent on GHES by default)."""
        limit = _int(headers.get("x-ratelimit-limit"))
        if limit is None:
            return
        self.limit = limit
        self.remaining = _int(headers.get("x-ratelimit-remaining"))
        self.used = _int(headers.get("x-ratelimit-used"))
        reset = _int(headers.get("x-ratelimit-reset"))
        if reset is not None and reset > 100_000_000_000:
            reset //= 1000  # milliseconds (seen in normalised recordings); GitHub sends seconds
        self.reset = float(reset) if reset is not None else None
        self.resource = headers.get("x-ratelimit-resource")

    def record(self, status: int | None) -> None:
        """Log one attempted request (status None: no answer) for the last-hour counters."""
        now = self.clock()
        self._log.append((now, status))
        self._trim(now)

    def pause(self, until: float, reason: str) -> None:
        if until > self.paused_until:
            self.paused_until = until
            self.pause_reason = reason

    def is_paused(self) -> bool:
        return self.clock() < self.paused_until

    def requests_last_hour(self) -> int:
        self._trim(self.clock())
        return len(self._log)

    def not_modified_last_hour(self) -> int:
        self._trim(self.clock())
        return sum(1 for _, status in self._log if status == 304)

    def charged_last_hour(self) -> int:
        """Requests that (probably) cost a primary rate-limit point: everything but 304s."""
        return self.requests_last_hour() - self.not_modified_last_hour()

    def buckets(self) -> list[list[int]]:
        """The last hour as per-minute `[minute_start, requests, 304s]`: small enough to go into
        the status file, so `router status` can count "the last hour" at the time it is read
        (and a restarted router can carry the counts over, see `seed`)."""
        self._trim(self.clock())
        out: dict[int, list[int]] = {}
        for ts, status in self._log:
            minute = int(ts // 60) * 60
            row = out.setdefault(minute, [minute, 0, 0])
            row[1] += 1
            row[2] += status == 304
        return list(out.values())

    def seed(self, buckets: object) -> None:
        """Carry over the last hour's counts of a previous run (malformed input is ignored)."""
        if not isinstance(buckets, list):
            return
        now = self.clock()
        for row in buckets:
            if not (
                isinstance(row, list) and len(row) == 3 and all(isinstance(v, int) for v in row)
            ):
                continue
            minute, requests, not_modified = row
            if minute <= now - HOUR or minute > now:
                continue
            nm = min(not_modified, requests)
            self._log.extend([(float(minute), 304)] * nm)
            self._log.extend([(float(minute), 200)] * (requests - nm))
        self._log = deque(sorted(self._log, key=lambda entry: entry[0]))

    def to_dict(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "used": self.used,
            "reset": self.reset,
            "resource": self.resource,
            "paused_until": self.paused_until or None,
            "pause_reason": self.pause_reason or None,
            "requests_last_hour": self.requests_last_hour(),
            "not_modified_last_hour": self.not_modified_last_hour(),
            "buckets": self.buckets(),
        }

    def _trim(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - HOUR:
            self._log.popleft()
