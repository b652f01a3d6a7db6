"""Detached processes tracked by PID *and* start time, so a recycled PID is never signalled."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
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
    # 0600: a start-up traceback may quote what the process was handling.
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "ab") as out, open(os.devnull, "rb") as devnull:
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


@dataclass(frozen=True)
class GroupRecord:
    """A process group, named by its id and its leader's start time (a recycled id never
    matches: a new process with that pid starts later, and the old group's members cannot
    have started before their leader)."""

    pgid: int
    start: str

    def to_json(self) -> dict[str, object]:
        return {"pgid": self.pgid, "start": self.start}


def recorded_group(runner_json: Mapping[str, object]) -> GroupRecord | None:
    """The session group a runner's runner.json records (`session_pgid` + its leader's start)."""
    pgid, start = runner_json.get("session_pgid"), runner_json.get("session_pgid_start")
    if isinstance(pgid, int) and pgid > 1 and start:
        return GroupRecord(pgid=pgid, start=str(start))
    return None


def group_record(pid: int) -> GroupRecord | None:
    """The group `pid` leads (a PTY session leads its own), with the leader's start time."""
    start = process_start_time(pid)
    try:
        pgid = os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
    return GroupRecord(pgid=pgid, start=start) if start is not None and pgid == pid else None


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_processes(rec: GroupRecord) -> list[PidRecord]:
    """Every live process of the recorded group, and what its leader started in other groups.

    Nothing when the group id now belongs to someone else: the leader's pid is alive with
    another start time, or a member started before the recorded leader did.
    """
    leader = process_start_time(rec.pgid)
    if leader is not None and leader != rec.start:
        return []  # the pid was recycled: this is not our group
    out: dict[int, PidRecord] = {}
    if leader is not None and not _is_zombie(rec.pgid):
        for r in process_tree(rec.pgid):  # tools that left the group (setsid) but not the tree
            out[r.pid] = r
    numeric = rec.start.isdigit()
    for d in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not d.isdigit() or int(d) in out:
            continue
        f = _stat_fields(d)
        if f is None or len(f) < 20 or f[2] != str(rec.pgid) or f[0] == "Z":
            continue
        if numeric and f[19].isdigit() and int(f[19]) < int(rec.start):
            continue  # older than the leader we recorded: not a member of that group
        out[int(d)] = PidRecord(pid=int(d), start=f[19], started_at=0.0)
    return list(out.values())


def kill_group(rec: GroupRecord | None) -> int:
    """SIGKILL what is left of a recorded group (see `group_processes`); how many there were.

    Each process is signalled by pid (never `killpg` on an id that may not be ours), in rounds,
    so a child forked between two reads of /proc goes too."""
    if rec is None:
        return 0
    killed: set[int] = set()
    for _ in range(5):
        procs = [p for p in group_processes(rec) if p.alive()]
        if not procs:
            break
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p.pid, signal.SIGKILL)
            killed.add(p.pid)
        wait_gone(procs)
    return len(killed)


def forbid_inspection() -> bool:
    """Linux: mark this process not dumpable, so other processes of the same user (the sessions
    it runs) can neither read its memory or /proc/<pid>/environ nor ptrace it. A child gets the
    normal setting back when it execs. False where this is not available."""
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


PR_SET_DUMPABLE = 4


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]
