"""The router as a long-lived process: the loop, single-instance lock, detached start/stop/status.

`gh fleet router start` spawns `python -m relayfleet router run` in its own session (the CLI
wires config loading and transports; this module only knows callables). The PID file records
the process start time, so a recycled PID is never mistaken for the router.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_state_dict
from relayfleet.core.errors import BackendError, GitHubError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import live_pid, spawn_detached, stop_group, write_pidfile
from relayfleet.router.pipeline import RouterConfig
from relayfleet.router.poller import Poller

log = logging.getLogger("relayfleet.router")
IDLE_MAX = 5.0  # wake at least this often to notice config edits and signals


@contextlib.contextmanager
def instance_lock(paths: FleetPaths) -> Iterator[None]:
    """One router per fleet: two would both deliver and race on the cursor."""
    path = paths.router_state / "router.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackendError(
                "another router is running for this fleet",
                hints=["`gh fleet router status` shows it; `gh fleet router stop` stops it"],
            ) from None
        yield
    finally:
        os.close(fd)


def config_stamp(paths: FleetPaths) -> tuple[tuple[str, int, int, int], ...]:
    """(mtime, size, inode) of every config file: the loop reloads when this changes. The size
    and inode catch two edits within one mtime tick (the kernel's clock is coarse) and an
    editor's atomic rename."""
    files = [paths.fleet_toml, paths.routes_toml]
    if paths.agents.is_dir():
        files += sorted(paths.agents.glob("*/agent.toml"))
    out = []
    for f in files:
        with contextlib.suppress(FileNotFoundError):
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class Stop:
    """Set by SIGTERM/SIGINT; the loop finishes its cycle (deliveries recorded) and exits."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self.requested = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def run_loop(
    poller: Poller,
    load: Callable[[], RouterConfig],
    stamp: Callable[[], object],
    *,
    stop: Stop,
    sleep: Callable[[float], None] = time.sleep,
    max_cycles: int | None = None,
    wake: threading.Event | None = None,
    on_wake: Callable[[RouterConfig], None] | None = None,
) -> int:
    """Poll until stopped. Config edits are picked up between cycles, without a restart.

    `on_wake(config)` (webhook intake) runs before every cycle and whenever `wake` is set,
    in this thread: the cursor has one writer."""

    def woken() -> None:
        if on_wake is None:
            return
        try:
            on_wake(config)
        except Exception as exc:  # the daemon's boundary: the spool keeps what was not drained
            log.error("webhook intake failed: %s", exc)

    seen = stamp()  # before load(): an edit landing in between is picked up next turn
    config = load()
    cycles = 0
    log.info("router started (pid %d): %d watches, %d routes, %d agents", os.getpid(),
             len(config.watches), len(config.routes), len(config.agents))  # fmt: skip
    while not stop.requested:
        current = stamp()
        if current != seen:
            seen = current
            try:
                config = load()
                poller.last_error = None
                log.info("config reloaded: %d watches, %d routes, %d agents",
                         len(config.watches), len(config.routes), len(config.agents))  # fmt: skip
            except Exception as exc:  # the daemon's boundary: an edit must never kill it
                # Keep routing with the last good config; `router status` shows the problem.
                poller.last_error = f"config not reloaded: {exc}"
                log.error("%s; still running the last good config", poller.last_error)
        if wake is not None:
            wake.clear()
        woken()
        try:
            poller.run_once(config)
        except GitHubError as exc:
            if exc.status == 401:
                log.error("%s", exc)
                for hint in exc.hints:
                    log.error("hint: %s", hint)
                return 1
            raise
        cycles += 1
        if max_cycles is not None and cycles >= max_cycles:
            break
        wait = min(IDLE_MAX, poller.seconds_until_due(config, poller.clock()))
        # Sleep in small steps so SIGTERM is honoured promptly.
        end = time.monotonic() + wait
        while not stop.requested and time.monotonic() < end:
            step = min(0.2, max(0.0, end - time.monotonic()))
            if wake is None:
                sleep(step)
            elif wake.wait(step):
                wake.clear()
                woken()
    log.info("router stopped after %d cycle(s)", cycles)
    return 0


def setup_logging(paths: FleetPaths, *, foreground: bool = False) -> None:
    handler: logging.Handler
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
    else:
        paths.router_state.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(paths.router_log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("relayfleet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


# -- detached lifecycle ---------------------------------------------------------------------
def start(paths: FleetPaths, env: dict[str, str], *, timeout: float = 15.0) -> int:
    """Spawn the router detached; returns its PID once it holds the lock and wrote its PID."""
    running = live_pid(paths.router_pid)
    if running:
        return running.pid
    argv = [sys.executable, "-m", "relayfleet", "router", "run", "--detached-child"]
    child_env = dict(env)
    child_env["FLEET_ROOT"] = str(paths.root)
    pid = spawn_detached(argv, log=paths.router_log, env=child_env, cwd=paths.root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = live_pid(paths.router_pid)
        if rec and rec.pid == pid:
            return pid
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0
        if done:
            break
        time.sleep(0.05)
    raise BackendError(
        "the router did not start",
        hints=[f"see {paths.rel(paths.router_log)} for why"],
    )


def mark_running(paths: FleetPaths) -> None:
    write_pidfile(paths.router_pid)


def stop(paths: FleetPaths, *, grace: float = 10.0) -> bool:
    """TERM (the loop finishes its cycle), then KILL after `grace`. True if it was running."""
    rec = live_pid(paths.router_pid)
    if rec is None:
        return False
    stopped = stop_group(rec, grace=grace)
    with contextlib.suppress(FileNotFoundError):
        paths.router_pid.unlink()
    return stopped


def _iso(ts: float | None) -> str | None:
    from relayfleet.router.pipeline import iso

    return iso(ts) if isinstance(ts, (int, float)) and ts else None


def _last_hour(st: dict[str, Any], now: float) -> tuple[int | None, int | None]:
    """Requests and 304s in the hour before `now` (not before the router's last write: a router
    stopped yesterday made no requests in the last hour), from the per-minute buckets."""
    buckets = (st.get("rate_limit") or {}).get("buckets")
    if not isinstance(buckets, list):
        return st.get("requests_last_hour"), st.get("not_modified_last_hour")
    rows = [
        b
        for b in buckets
        if isinstance(b, list)
        and len(b) == 3
        and all(isinstance(x, (int, float)) for x in b)
        and b[0] + 60 > now - 3600
    ]
    return sum(b[1] for b in rows), sum(b[2] for b in rows)


def status(paths: FleetPaths, now: float | None = None) -> dict[str, Any]:
    """`router status --json` and the `router` object of `status --json` (ARCHITECTURE 3.9)."""
    now = time.time() if now is None else now
    rec = live_pid(paths.router_pid)
    st = read_state_dict(paths.router_status)  # a torn or mangled file must not break status
    cursor = read_state_dict(paths.cursor)
    saved = cursor.get("saved_at")
    last_ts = st.get("last_cycle_ts")
    last_ts = last_ts if isinstance(last_ts, (int, float)) else None
    saved = saved if isinstance(saved, (int, float)) else None
    rate_src = st.get("rate_limit")
    rate_src = rate_src if isinstance(rate_src, dict) else {}
    rate = {k: v for k, v in rate_src.items() if k != "buckets"}
    reset = rate.get("reset")
    paused = rate.get("paused_until")
    paused = paused if isinstance(paused, (int, float)) and paused > now else None
    requests, not_modified = _last_hour({**st, "rate_limit": rate_src}, now)
    streams = st.get("streams")
    streams = (
        {k: v for k, v in streams.items() if isinstance(v, dict)}
        if isinstance(streams, dict)
        else {}
    )
    catching = st.get("catching_up")
    catching = (
        {str(k): int(v) for k, v in catching.items() if isinstance(v, int)}
        if isinstance(catching, dict)
        else {}
    )
    return {
        "running": rec is not None,
        "pid": rec.pid if rec else None,
        "started_at": rec.started_at if rec else None,
        "last_cycle": st.get("last_cycle"),
        "last_cycle_age_s": round(now - last_ts, 1) if last_ts else None,
        "cursor_age_s": round(now - saved, 1) if saved else None,
        "requests_last_hour": requests,
        "not_modified_last_hour": not_modified,
        "rate_limit_remaining": rate.get("remaining"),
        "rate_limit_limit": rate.get("limit"),
        "rate_limit_reset": _iso(reset),
        "rate_limit_reset_in_s": round(reset - now) if isinstance(reset, (int, float)) else None,
        "paused_until": _iso(paused),
        "pause_reason": rate.get("pause_reason") if paused else None,
        "governor": st.get("governor", 1.0),
        "backing_off": {
            k: {
                "failures": v.get("failures"),
                "next_due": v.get("next_due"),
                "error": v.get("error"),
            }
            for k, v in streams.items()
            if v.get("failures")
        },
        "rate_limit": rate,
        "broken_watches": st.get("broken") or {},
        # stream -> pages left to read before its watermark may move (router/paging.py)
        "catching_up": catching,
        "catching_up_pages": sum(catching.values()),
        "pending": st.get("pending", 0),
        "held": _held(paths),  # items in the quarantine, waiting for a person
        "error": st.get("error"),
        "webhooks": _webhooks(
            st.get("webhook"), now, running=rec is not None, misses=st.get("webhook_misses")
        ),
        "streams": streams,
        "log": str(paths.router_log),
    }


def _webhooks(wh: Any, now: float, *, running: bool, misses: Any = None) -> dict[str, Any] | None:
    """The receiver's health for `status`: None when the router has no receiver."""
    from relayfleet.router.webhook_loop import health_line

    if not isinstance(wh, dict):
        return None
    misses = {k: v for k, v in (misses or {}).items() if isinstance(v, dict)}
    missed = sum(int(v.get("count") or 0) for v in misses.values())
    latest: dict[str, Any] = max(misses.values(), key=lambda v: str(v.get("at") or ""), default={})
    summary = health_line(wh, now) if running else "receiver stopped with the router"
    if missed:
        summary += (f"; {missed} change(s) came only by reconciliation "
                    f"(last: {latest.get('last')})")  # fmt: skip
    last = wh.get("last_delivery")
    last = last if isinstance(last, (int, float)) else None
    raw = wh.get("reconcile_sec")
    window = int(raw) if isinstance(raw, int) else 600
    return {
        "listen": wh.get("listen"),
        "healthy": running and last is not None and now - last <= window,
        "last_delivery": _iso(last),
        "last_delivery_age_s": round(now - last, 1) if last is not None else None,
        "last_event": wh.get("last_event") or None,
        "accepted": wh.get("accepted", 0),
        "duplicates": wh.get("duplicates", 0),
        "ignored": wh.get("ignored", 0),
        "rejected": wh.get("rejected", 0),
        "reconcile_sec": window,
        # changes webhooks should have brought that a reconciliation poll found, per repo
        "missed": missed,
        "missed_by_repo": misses,
        "missed_last": latest.get("last"),
        "missed_last_at": latest.get("at"),
        "summary": summary,
    }


def _held(paths: FleetPaths) -> int:
    from relayfleet.router.quarantine import Quarantine, quarantine_path

    try:
        return Quarantine(quarantine_path(paths)).count()
    except OSError:
        return 0


def tail_log(path: Path, n: int = 20) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-n:]
    except FileNotFoundError:
        return []
