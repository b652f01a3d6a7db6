"""Detached processes tracked by PID *and* start time, so a recycled PID is never signalled."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from relayfleet.core.atomic import write_atomic


def process_start_time(pid: int) -> str | None:
    """An opaque token that changes when `pid` is reused (Linux: /proc starttime; else ps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Field 22 (starttime) after the ")" that closes the command name.
        return stat.rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return None
    return out or None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start: str | None
    started_at: float

    def alive(self) -> bool:
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        if _is_zombie(self.pid):
            return False
        return self.start is None or process_start_time(self.pid) == self.start


def write_pidfile(path: Path, pid: int | None = None) -> PidRecord:
    pid = os.getpid() if pid is None else pid
    rec = PidRecord(pid=pid, start=process_start_time(pid), started_at=time.time())
    write_atomic(path, json.dumps(rec.__dict__) + "\n")
    return rec


def read_pidfile(path: Path) -> PidRecord | None:
    try:
        d = json.loads(Path(path).read_text())
        return PidRecord(pid=int(d["pid"]), start=d.get("start"), started_at=d["started_at"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def live_pid(path: Path) -> PidRecord | None:
    rec = read_pidfile(path)
    return rec if rec and rec.alive() else None


def spawn_detached(
    argv: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start `argv` in its own session (so signals to us never reach it); stdout/err to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            argv,
            stdin=devnull,
            stdout=out,
            stderr=out,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def stop_group(rec: PidRecord, *, grace: float = 5.0) -> bool:
    """TERM the process group, then KILL after `grace` seconds. True if it was running."""
    if not rec.alive():
        return False
    try:
        pgid = os.getpgid(rec.pid)
    except ProcessLookupError:
        return False
    group = pgid == rec.pid  # a detached leader: signal its whole group, children included

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pgid, sig)
            else:
                os.kill(rec.pid, sig)

    send(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not rec.alive():
            break
        time.sleep(0.05)
    # Whatever is left of the group (the session and its tools) is killed too: no orphans.
    send(signal.SIGKILL)
    deadline = time.monotonic() + 2
    while rec.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(pid: int) -> list[PidRecord]:
    """`pid` and every descendant, each with its start time (Linux /proc; else just `pid`)."""
    kids = _children()
    out: list[PidRecord] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        start = process_start_time(p)
        if start is None:
            continue
        out.append(PidRecord(pid=p, start=start, started_at=0.0))
        todo.extend(kids.get(p, []))
    return out


def signal_tree(recs: list[PidRecord], sig: int) -> None:
    """Send `sig` to every live process of `recs`, and to the whole group of each group leader."""
    groups: set[int] = set()
    for r in recs:
        if not r.alive():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            pgid = os.getpgid(r.pid)
            if pgid == r.pid and pgid not in groups:
                groups.add(pgid)
                os.killpg(pgid, sig)  # a group leader: its whole group (tools it started)
            os.kill(r.pid, sig)


def wait_gone(recs: list[PidRecord], timeout: float = 3.0) -> None:
    """A SIGKILL is not instant: return once every process is really gone (or a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(r.alive() for r in recs):
        time.sleep(0.02)


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]
