"""A Procfile-style manager: child processes with prefixed, coloured output, stopped cleanly."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

COLOURS = ("36", "33", "32", "35", "34", "91", "96", "93", "92", "95")
KILL_WAIT = 5.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    colour: str
    started_at: float = field(default_factory=time.time)
    reader: threading.Thread | None = None


class ProcessManager:
    """Owns the children; each runs in its own process group so a stop leaves no orphans."""

    def __init__(self, out: TextIO, *, colour: bool, on_exit: Callable[[str, int], None]) -> None:
        self.out = out
        self.colour = colour
        self.on_exit = on_exit
        self.children: dict[str, Child] = {}
        self._lock = threading.Lock()
        self._colours = itertools.cycle(COLOURS)
        self._width = 8

    def say(self, name: str, line: str, colour: str = "1") -> None:
        self._width = max(self._width, len(name))
        prefix = f"{time.strftime('%H:%M:%S')} {name.ljust(self._width)} | "
        if self.colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        with self._lock:
            self.out.write(prefix + line.rstrip("\n") + "\n")
            self.out.flush()

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        child = Child(name=name, argv=argv, proc=proc, colour=next(self._colours))
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        self.children[name] = child
        child.reader.start()
        self.say(name, f"started (pid {proc.pid})", child.colour)
        return child

    def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        for raw in iter(child.proc.stdout.readline, b""):
            self.say(child.name, raw.decode(errors="replace"), child.colour)
        rc = child.proc.wait()
        if self.children.get(child.name) is child:
            self.on_exit(child.name, rc)

    def running(self, name: str) -> bool:
        c = self.children.get(name)
        return bool(c and c.proc.poll() is None)

    def stop(self, name: str, *, grace: float = KILL_WAIT) -> None:
        child = self.children.pop(name, None)
        if child is None:
            return
        self._signal(child, signal.SIGTERM)
        try:
            rc = child.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal(child, signal.SIGKILL)
            rc = child.proc.wait()
        # The group may still hold the session's own children: make sure none survive.
        self._signal(child, signal.SIGKILL)
        if child.reader:
            child.reader.join(timeout=2)
        self.say(name, f"stopped (exit {rc})", child.colour)

    def stop_all(self, *, grace: float = KILL_WAIT) -> None:
        names = list(self.children)
        for name in names:
            c = self.children.get(name)
            if c:
                self._signal(c, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in names:
            c = self.children.get(name)
            if c:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            self.stop(name, grace=0.5)

    @staticmethod
    def _signal(child: Child, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)
