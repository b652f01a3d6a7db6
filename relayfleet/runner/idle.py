"""Idle sleep (`[runtime] idle_stop_min`): an idle session is stopped, the next event resumes it.

A session is idle when nothing it was given is pending (every event acknowledged), no delivery
is in flight, nobody is attached, its screen is not mid-turn, and it printed nothing for
`idle_stop_min` minutes. The sleeper then stops it (status `asleep`); the runner, its channel
and its inbox tail stay up, so the next event (or re-send) wakes it at once with `--resume`: the
conversation is kept and an idle fleet holds no session memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable


class IdleSleeper:
    def __init__(self, idle_stop_min: int, log: logging.Logger) -> None:
        self.after = idle_stop_min * 60.0
        self.log = log
        self.asleep = False
        self.slept = 0  # how many times (status)
        self.woken_at: float | None = None
        self._wake = asyncio.Event()
        self.last_activity = time.monotonic()

    @property
    def enabled(self) -> bool:
        return self.after > 0

    def touch(self, *_: object) -> None:
        """Something happened in or to the session (output, a delivery, a start)."""
        self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity

    def wake_up(self) -> None:
        """An event wants in: start the session again (no-op when it is awake)."""
        if self.asleep:
            self._wake.set()

    async def until_woken(self, stop: asyncio.Event) -> None:
        """Called by the supervisor once the sleeping session has exited."""
        stopper = asyncio.ensure_future(stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([stopper, waker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            waker.cancel()
        self._wake.clear()
        if self.asleep and not stop.is_set():
            self.log.info("an event arrived: waking the session (resume)")
        self.asleep = False
        self.woken_at = time.time()
        self.touch()

    async def watch(
        self,
        quiet: Callable[[], bool],
        put_to_sleep: Callable[[], Awaitable[None]],
        step: float | None = None,
    ) -> None:
        """Forever: when `quiet()` (nothing pending, in flight, attached or running) has held
        for `after` seconds of no activity, stop the session through `put_to_sleep`."""
        step = step if step is not None else max(0.05, min(30.0, self.after / 4))
        while True:
            await asyncio.sleep(step)
            if self.asleep or not quiet():
                if not self.asleep and not quiet():
                    self.touch()
                continue
            if self.idle_for() < self.after:
                continue
            self.asleep = True
            self.slept += 1
            self.log.info("session idle for %.0fs: stopping it until the next event", self.after)
            with contextlib.suppress(Exception):
                await put_to_sleep()
