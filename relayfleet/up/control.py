"""`gh fleet stop|start|restart` while `gh fleet up` runs: `up` holds an agent stopped on request.

`up` restarts whatever it runs that exits, so stopping one of its runners behind its back would
last a few seconds. Instead the CLI asks: it writes the agent's name into `state/up-hold.json`,
addressed to that `up` (pid and start time, so a later `up` never inherits a stale hold), and
waits for `up.json` to show the agent held and its runner gone. `start` takes the name out and
waits for `up` to run it again. `up` reads the file every tick; both sides write it under one
lock, so two commands at once never lose each other's change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_atomic
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import PidRecord


def hold_path(paths: FleetPaths) -> Path:
    return paths.state / "up-hold.json"


def running_up(paths: FleetPaths) -> dict[str, Any] | None:
    """`up.json` of the `up` that runs this fleet now, or None (none, or it died)."""
    st = read_json(paths.state / "up.json", None)
    if not isinstance(st, dict) or not isinstance(st.get("pid"), int):
        return None
    start = st.get("pid_start")
    rec = PidRecord(pid=st["pid"], start=str(start) if start else None, started_at=0.0)
    return st if rec.alive() else None


def managed(up: dict[str, Any]) -> set[str]:
    """The agents that `up` runs or holds (an `up` of a few agents leaves the others alone)."""
    return set(up.get("agents") or {}) | set(up.get("held") or [])


@contextlib.contextmanager
def _locked(paths: FleetPaths) -> Iterator[None]:
    paths.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.state / "up-hold.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_holds(paths: FleetPaths, pid: int, start: str | None) -> set[str]:
    """The agents held for the `up` with this pid and start time (holds for another are stale)."""
    d = read_json(hold_path(paths), None)
    if not isinstance(d, dict) or d.get("pid") != pid or d.get("pid_start") != start:
        return set()
    return {str(n) for n in d.get("held") or []}


def update_holds(
    paths: FleetPaths,
    pid: int,
    start: str | None,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    keep_only: set[str] | None = None,
) -> set[str]:
    """Change the held set for that `up` under the lock; returns the new set."""
    with _locked(paths):
        held = (read_holds(paths, pid, start) | set(add)) - set(remove)
        if keep_only is not None:
            held &= keep_only
        body = {"pid": pid, "pid_start": start, "held": sorted(held)}
        write_atomic(hold_path(paths), json.dumps(body) + "\n", mode=0o600)
    return held


def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
