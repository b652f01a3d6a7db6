"""When each stream polls next (research A2, A7). Pure: the clock value and the rng are passed in.

- **Jitter.** After a poll, `next_due = now + period * U(0.9, 1.1)`; a stream's first slot after
  start-up is `now + phase`, with the phase taken from a stable hash of the stream key, so forty
  streams of one cadence do not fire in the same second (and a restart does not burst).
- **Backoff.** A transient failure (5xx, timeout, refused connection, malformed JSON) schedules
  the stream's retry after `U(0, min(cap, base * 2**(n-1)))` ("full jitter", n = consecutive
  failures), at least `backoff_floor`: a GitHub outage is not hammered every cycle, and many
  streams (or routers) do not come back in lockstep. The first success resets it.
- **Idle stretching.** A 304 is free in rate-limit points but still a request (secondary limits,
  GitHub's CPU budget). After `idle_after` seconds of nothing but 304s (15 minutes: a repo with
  any activity rarely gets there, a fleet at night does) the period grows by `idle_growth` per
  further 304, capped at `idle_max_factor` x the stream's own period AND at `idle_ceiling`
  seconds (unless the watch itself is slower): a 30 s watch stretches to at most 120 s, a 120 s
  watch to 300 s, a 240 s watch to 300 s, a 600 s watch not at all. So the extra latency of the
  first change after a quiet spell is bounded; the first 200 snaps the cadence back.
  `FLEET_ROUTER_IDLE_STRETCH` sets the factor cap (1 turns stretching off).
- **Budget governor.** The projected charged requests per hour (each stream's rate times its
  recent share of non-304 answers) are compared with what GitHub says is left until the reset;
  if they would spend more than `governor_share` of it, every period is stretched by the ratio.
  Other clients of the same token (agents using `gh`) spend that budget too, which is exactly why
  this looks at `remaining` rather than at our own count. It lifts itself once the reset passes.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cadence:
    jitter: float = 0.1
    idle_after: float = 900.0  # seconds of nothing but 304s before stretching starts
    idle_growth: float = 1.5
    idle_max_factor: float = 4.0
    idle_ceiling: float = 300.0
    backoff_base: float = 5.0
    backoff_cap: float = 900.0
    backoff_floor: float = 1.0
    broken_retry: float = 300.0  # a 404 stream is re-checked this rarely (it may come back)
    governor_share: float = 0.8
    governor_max: float = 100.0
    charged_weight: float = 0.2  # EWMA weight of the newest poll in a stream's charged share


@dataclass
class StreamState:
    next_due: float | None = None
    period: float = 0.0  # the last effective period (status output)
    idle_polls: int = 0  # consecutive 304s
    failures: int = 0  # consecutive transient failures
    charged: float = 1.0  # share of recent polls that cost a point; unknown counts as "all"
    retry_in: float | None = None  # the last backoff delay (status output)
    base: float | None = None  # the watch period next_due was computed from
    anchor: float | None = None  # when next_due was computed (start-up or the last poll)
    polled: bool = False  # next_due follows a poll (else it is the start-up phase)


def phase(key: str, period: float) -> float:
    """A stable offset in [0, period) for a stream key (not Python's salted `hash`)."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return (h / 2**64) * period


@dataclass
class Schedule:
    cadence: Cadence = field(default_factory=Cadence)
    rng: Callable[[], float] = random.random
    streams: dict[str, StreamState] = field(default_factory=dict)
    governor: float = 1.0  # the current stretch factor of every period (1 = no stretch)

    def state(self, key: str) -> StreamState:
        return self.streams.setdefault(key, StreamState())

    def forget_except(self, keys: set[str]) -> None:
        for key in list(self.streams):
            if key not in keys:
                del self.streams[key]

    # -- periods --------------------------------------------------------------------------
    def idle_factor(self, key: str, base: float) -> float:
        c, st = self.cadence, self.state(key)
        if base <= 0:
            return 1.0
        extra = st.idle_polls - max(1, math.ceil(c.idle_after / base)) + 1
        if extra <= 0:
            return 1.0
        cap = min(c.idle_max_factor, max(1.0, c.idle_ceiling / base))
        return min(cap, c.idle_growth**extra)

    def period(self, key: str, base: float) -> float:
        """The effective period: base x idle stretch x budget governor."""
        return base * self.idle_factor(key, base) * self.governor

    def _jittered(self, period: float) -> float:
        j = self.cadence.jitter
        return period * (1.0 - j + 2.0 * j * self.rng())

    # -- due times ------------------------------------------------------------------------
    def due_at(self, key: str, now: float, base: float) -> float:
        """When the stream is due; its first slot gets the key's phase."""
        st = self.state(key)
        if st.next_due is None:
            st.next_due = now + phase(key, base)
            st.base, st.anchor, st.polled = base, now, False
        elif st.base is not None and st.anchor is not None and base < st.base and not st.failures:
            # A reload made the watch faster (poll_sec 240 -> 10): do not wait out the old slot.
            later = self._jittered(self.period(key, base)) if st.polled else phase(key, base)
            st.next_due = min(st.next_due, st.anchor + later)
            st.base = base
        return st.next_due

    def backing_off(self, key: str, now: float) -> bool:
        st = self.streams.get(key)
        return bool(st and st.failures and st.next_due is not None and now < st.next_due)

    # -- outcomes -------------------------------------------------------------------------
    def succeeded(self, key: str, now: float, base: float, status: int) -> float:
        """A 200 or a 304: reset the backoff, count idleness, schedule the next poll."""
        c, st = self.cadence, self.state(key)
        st.failures, st.retry_in = 0, None
        charged = 0.0 if status == 304 else 1.0
        st.charged += c.charged_weight * (charged - st.charged)
        st.idle_polls = st.idle_polls + 1 if status == 304 else 0
        st.period = self.period(key, base)
        st.base, st.anchor, st.polled = base, now, True
        st.next_due = now + self._jittered(st.period)
        return st.next_due

    def failed(self, key: str, now: float) -> float:
        """A transient failure: full-jitter exponential backoff. Returns the delay."""
        c, st = self.cadence, self.state(key)
        st.failures += 1
        # The exponent is capped: 2**1024 no longer converts to float (OverflowError after ~10
        # days of a failing stream), and the cap on the delay is reached long before 2**64.
        ceiling = min(c.backoff_cap, c.backoff_base * 2.0 ** min(st.failures - 1, 64))
        delay = max(c.backoff_floor, self.rng() * ceiling)
        st.retry_in = delay
        st.next_due = now + delay
        return delay

    def broken(self, key: str, now: float, base: float) -> float:
        """A permanent 4xx (404): look again rarely, in case access comes back."""
        st = self.state(key)
        st.failures, st.retry_in = 0, None
        st.next_due = now + self._jittered(max(base, self.cadence.broken_retry))
        return st.next_due

    # -- the governor ---------------------------------------------------------------------
    def projected_charged_per_hour(self, bases: Mapping[str, float]) -> float:
        total = 0.0
        for key, base in bases.items():
            if base <= 0:
                continue
            period = base * self.idle_factor(key, base)
            total += 3600.0 / period * self.state(key).charged
        return total

    def govern(
        self,
        bases: Mapping[str, float],
        remaining: int | None,
        reset: float | None,
        now: float,
    ) -> float:
        """Set (and return) the stretch factor from the rate-limit figures GitHub last sent."""
        c = self.cadence
        if remaining is None or reset is None or reset <= now:
            self.governor = 1.0  # no limit reported (GHES default), or a fresh window began
            return self.governor
        spend = self.projected_charged_per_hour(bases) * (reset - now) / 3600.0
        allowance = c.governor_share * remaining
        if spend <= allowance:
            self.governor = 1.0
        elif allowance <= 0:
            self.governor = c.governor_max
        else:
            self.governor = min(c.governor_max, spend / allowance)
        return self.governor
