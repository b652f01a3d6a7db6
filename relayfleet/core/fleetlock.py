"""The fleet lock: one `gh fleet` edit at a time, from reading the files to the commit.

Two commands that each read `routes.toml`, append to it and write it back lose one of the two
appends unless the read, the edit, the port choice and the commit happen under ONE lock. The lock
is a `filelock` on `.fleet/state/fleet.lock` (state/ is never committed); the holder writes its
pid next to it so a waiting command can say whom it waits for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from relayfleet.core.errors import FleetError

DEFAULT_WAIT_S = 30.0
NOTIFY_AFTER_S = 1.0  # a wait shorter than this is not worth a line on the terminal
LOCK_NAME = "fleet.lock"
OWNER_NAME = "fleet.lock.pid"

# Depth of the locks this process holds, per lock file: nested edits (a command that calls a
# library edit that locks again) must not wait for themselves.
_held: dict[str, int] = {}
_guard = threading.Lock()


class LockTimeout(FleetError):
    """Another `gh fleet` edit held the fleet lock for longer than we were told to wait."""


def holder_pid(state_dir: Path) -> int | None:
    """The pid recorded by the current (or last) holder, if readable."""
    try:
        return int((state_dir / OWNER_NAME).read_text().strip() or "0") or None
    except (OSError, ValueError):
        return None


@contextmanager
def fleet_lock(
    state_dir: Path,
    *,
    wait: float = DEFAULT_WAIT_S,
    notify: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the fleet lock for the `with` body. After `NOTIFY_AFTER_S` of waiting, `notify` is
    called once with a line naming the holder; after `wait` seconds, LockTimeout."""
    from filelock import FileLock, Timeout

    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    key = str(state_dir.resolve() / LOCK_NAME)
    with _guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return

    lock = FileLock(key)
    wait = max(0.0, wait)
    try:
        try:
            lock.acquire(timeout=min(wait, NOTIFY_AFTER_S))
        except Timeout:
            if wait <= NOTIFY_AFTER_S:
                raise
            if notify is not None:
                pid = holder_pid(state_dir)
                who = f" (pid {pid})" if pid else ""
                notify(f"gh fleet: waiting for another gh fleet edit{who}…")
            lock.acquire(timeout=wait - NOTIFY_AFTER_S)
    except Timeout as exc:
        pid = holder_pid(state_dir)
        who = f"pid {pid}" if pid else "another process"
        raise LockTimeout(
            f"another gh fleet edit ({who}) held the fleet lock for {wait:g} s; "
            "nothing was changed",
            hints=[
                "retry when it finishes, or wait longer with --wait SECONDS",
                f"if no other `gh fleet` is running, the lock is free: {state_dir / LOCK_NAME}",
            ],
        ) from exc
    with _guard:
        _held[key] = 1
    try:
        try:
            (state_dir / OWNER_NAME).write_text(f"{os.getpid()}\n")
        except OSError:
            pass  # the pid is only for the message a waiting command prints
        yield
    finally:
        with _guard:
            _held.pop(key, None)
        lock.release()


__all__ = ["DEFAULT_WAIT_S", "LockTimeout", "fleet_lock", "holder_pid"]
