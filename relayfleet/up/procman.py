"""A Procfile-style manager: child processes with prefixed, coloured output, stopped cleanly.

Each child leads its own session (so the operator's Ctrl-C reaches only `up`, which then stops
the children in order). A stop sends TERM to the child, waits, then KILLs every process of the
child's tree that is still alive: the tree is read from /proc *before* the TERM, because a
runner's PTY session leads a session of its own and would otherwise be orphaned when the runner
dies first. Processes are remembered with their start time, so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from relayfleet.core.procs import PidRecord, process_tree, signal_tree, wait_gone

COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
KILL_WAIT = 5.0
TAIL_STEP = 0.2

Extras = Callable[[], list[PidRecord]]
# `2026-11-25 15:03:51,653 INFO relayfleet.runner: ` -> `` (the prefix already has the time);
# a WARNING or ERROR keeps its level.
LOG_HEAD = re.compile(
    r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)? "
    r"(?:(?:INFO|(DEBUG|WARNING|ERROR|CRITICAL)) [\w.]+: )?"
)


def tidy(line: str) -> str:
    """A child's log line without the timestamp and logger name that the prefix repeats."""
    m = LOG_HEAD.match(line)
    if m is None:
        return line
    level = m.group(1)
    return (f"{level}: " if level else "") + line[m.end() :]


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    colour: str
    started_at: float = field(default_factory=time.monotonic)
    extras: Extras | None = None  # more processes that belong to it (a runner's session)
    reader: threading.Thread | None = None
    tailer: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.proc.pid


class ProcessManager:
    """Owns the children; `say` is the one writer of the shared, prefixed output."""

    def __init__(
        self,
        out: TextIO,
        *,
        colour: bool,
        on_exit: Callable[[str, int], None],
        on_output_lost: Callable[[], None] | None = None,
    ) -> None:
        self.out = out
        self.colour = colour
        self.on_exit = on_exit
        self.on_output_lost = on_output_lost  # the terminal went away (EIO): stop the fleet
        self.output_lost = False
        self.children: dict[str, Child] = {}
        self._lock = threading.Lock()
        self._colours = itertools.cycle(COLOURS)
        self._assigned: dict[str, str] = {}
        self._width = 8

    def colour_of(self, name: str) -> str:
        if name not in self._assigned:
            self._assigned[name] = next(self._colours)
        return self._assigned[name]

    def say(self, name: str, line: str, colour: str | None = None) -> None:
        """One prefixed line (`colour` "31" marks a problem; default: the name's own colour)."""
        colour = colour or ("1" if name == "up" else self.colour_of(name))
        self._width = max(self._width, len(name))
        prefix = f"{time.strftime('%H:%M:%S')} {name.ljust(self._width)} | "
        text = line.rstrip("\r\n")
        if self.colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
            if colour == "31":
                text = f"\x1b[31m{text}\x1b[0m"
        with self._lock:
            if self.output_lost:
                return
            try:
                self.out.write(prefix + text + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):
                pass  # the reader went away (`up | head`); the fleet keeps running
            except OSError:
                # EIO: the terminal `up` runs in is gone (its window closed, ssh dropped). Never
                # raise here (a pump thread would die, or shutdown would stop half-way): say so.
                self.output_lost = True
        if self.output_lost and self.on_output_lost is not None:
            self.on_output_lost()

    # -- starting -------------------------------------------------------------------------
    def spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        cwd: Path | None = None,
        tail: Path | None = None,
        extras: Extras | None = None,
    ) -> Child:
        """Start `argv`; its stdout/stderr and (when given) new lines of `tail` are prefixed."""
        offset = _size(tail) if tail else 0
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        child = Child(name=name, argv=argv, proc=proc, colour=self.colour_of(name), extras=extras)
        self.children[name] = child
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        if tail is not None:
            child.tailer = threading.Thread(
                target=self._tail, args=(child, tail, offset), daemon=True
            )
            child.tailer.start()
        self.say(name, f"started (pid {proc.pid})")
        return child

    def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        with child.proc.stdout:
            for raw in iter(child.proc.stdout.readline, b""):
                self.say(child.name, tidy(raw.decode(errors="replace")), child.colour)
        rc = child.proc.wait()
        if self.children.get(child.name) is child:
            # It died on its own (a crash, a kill -9): what it left behind goes too, or a
            # restarted runner would run a second session next to the orphaned one.
            extras: list[PidRecord] = []
            if child.extras is not None:
                with contextlib.suppress(Exception):
                    extras = child.extras()
            killed = _kill_tree(child, extras)
            if killed:
                self.say(child.name, f"killed {killed} process(es) it left behind", "31")
        child.done.set()
        if self.children.get(child.name) is child:
            self.on_exit(child.name, rc)

    def _tail(self, child: Child, path: Path, offset: int) -> None:
        """Follow a log file the child writes (a runner logs to runner.log, not stdout)."""
        buf = b""
        while True:
            finished = child.done.is_set()
            try:
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size < offset:
                        offset = 0  # truncated or replaced
                    f.seek(offset)
                    chunk = f.read()
                    offset += len(chunk)
            except FileNotFoundError:
                chunk = b""
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                self.say(child.name, tidy(raw.decode(errors="replace")), child.colour)
            if finished:
                return
            child.done.wait(TAIL_STEP)

    # -- state ----------------------------------------------------------------------------
    def running(self, name: str) -> bool:
        c = self.children.get(name)
        return bool(c and c.proc.poll() is None)

    def uptime(self, name: str) -> float:
        c = self.children.get(name)
        return time.monotonic() - c.started_at if c else 0.0

    # -- stopping -------------------------------------------------------------------------
    def stop(self, name: str, *, grace: float = KILL_WAIT) -> None:
        self.stop_many([name], grace=grace)

    def stop_all(self, *, grace: float = KILL_WAIT) -> None:
        self.stop_many(list(self.children), grace=grace)

    def stop_many(self, names: list[str], *, grace: float = KILL_WAIT) -> None:
        """TERM them all at once, wait up to `grace`, then KILL whatever is left of each tree."""
        stopping: list[tuple[Child, list[PidRecord]]] = []
        for name in names:
            child = self.children.pop(name, None)
            if child is None:
                continue
            tree = process_tree(child.pid) if child.proc.poll() is None else []
            if child.extras is not None:
                with contextlib.suppress(Exception):
                    tree += child.extras()
            stopping.append((child, tree))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child, _ in stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for child, tree in stopping:
            killed = _kill_tree(child, tree)
            rc = child.proc.wait()
            if child.reader:
                child.reader.join(timeout=2)
            child.done.set()
            if child.tailer:
                child.tailer.join(timeout=2)
            extra = f"; killed {killed} leftover process(es)" if killed else ""
            self.say(child.name, f"stopped (exit {rc}){extra}")


def _kill_tree(child: Child, tree: list[PidRecord]) -> int:
    """KILL the child's group and every recorded process that is still alive; count them."""
    others = [r for r in tree + process_tree(child.pid) if r.pid != child.pid and r.alive()]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)  # the group it leads (tools it started)
    if child.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child.pid, signal.SIGKILL)
    signal_tree(others, signal.SIGKILL)  # a session leader (the PTY child): its group too
    wait_gone(others)
    return len(others)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
