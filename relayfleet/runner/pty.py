"""One program in a pseudo-terminal, driven from asyncio (ptyprocess on POSIX, pywinpty on Windows).

The PTY session is the only place that touches the terminal: it spawns the program in its own
process group, fans its output out to subscribers (the engine's screen, `gh fleet attach`), tees
it to a size-bounded `session.log`, and types into it. Typing follows what Claude Code's own
background-session supervisor does: bracketed paste (only when the program switched it on), a
short pause, then Enter as a separate write (research/claude-runner.md §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Subscriber = Callable[[bytes], object]

BRACKETED_ON = b"\x1b[?2004h"
BRACKETED_OFF = b"\x1b[?2004l"
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
ENTER = b"\r"

# C0 and C1 controls (ESC included) except TAB and LF; an embedded ESC[201~ would end a paste
# early and turn the rest of the text into keystrokes.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize(text: str, *, single_line: bool = False) -> str:
    """Text safe to type: no control characters; newlines folded to spaces if `single_line`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROLS.sub("", text)
    if single_line:
        text = " ".join(part for part in text.split("\n") if part.strip())
    return text


class Redactor:
    """Masks secret values in a byte stream, even when one is split across two chunks.

    A chunk's tail that could be the start of a secret is held back until the next chunk (or
    `flush`) says whether it is one; everything else passes through at once.
    """

    MASK = b"***"

    def __init__(self, secrets: Sequence[str]) -> None:
        found = {s.encode() for s in secrets if len(s) >= 4}  # shorter ones would mask noise
        self.secrets = sorted(found, key=len, reverse=True)
        self._carry = b""

    def filter(self, data: bytes) -> bytes:
        if not self.secrets:
            return data
        buf = self._carry + data
        for s in self.secrets:
            buf = buf.replace(s, self.MASK)
        hold = 0
        for s in self.secrets:
            for k in range(min(len(s) - 1, len(buf)), hold, -1):
                if buf.endswith(s[:k]):
                    hold = k
                    break
        self._carry = buf[len(buf) - hold :] if hold else b""
        return buf[: len(buf) - hold]

    def flush(self) -> bytes:
        out, self._carry = self._carry, b""
        return out


class RotatingLog:
    """Append-only byte log that rotates at `max_bytes`: `session.log`, `.1`, … `.{backups}`.

    With `redact`, those values (the agent's resolved credentials) never reach the file, even if
    the session prints them."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 5 * 1024 * 1024,
        backups: int = 2,
        redact: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self._redactor = Redactor(redact) if redact else None
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115 - held open for the session's life
        self._size = self._fh.tell()

    def write(self, data: bytes) -> None:
        if self._redactor is not None:
            data = self._redactor.filter(data)
        self._write(data)

    def _write(self, data: bytes) -> None:
        while data:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            chunk, data = data[:room], data[room:]
            self._fh.write(chunk)
            self._size += len(chunk)
        self._fh.flush()

    def _rotate(self) -> None:
        self._fh.close()
        for i in range(self.backups, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._redactor is not None:
                self._write(self._redactor.flush())
            self._fh.close()


class PtySession:
    """A spawned program in a PTY. Create with `await PtySession.spawn(...)`.

    `held` is the input hold taken while a human is attached: typed deliveries (`paste`)
    wait until it is released, so the runner never types into a half-written prompt. Raw `write`
    (the attached human's keystrokes) is never held.
    """

    def __init__(self) -> None:
        self.pid = 0
        self.bracketed_paste = False
        self._subscribers: list[Subscriber] = []
        self._log: RotatingLog | None = None
        self._proc: Any = None
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Future[int] | None = None
        self._eof = asyncio.Event()
        self._released = asyncio.Event()
        self._released.set()
        self._tail = b""  # last bytes seen, so a mode switch split across reads is still found
        self._type_lock = asyncio.Lock()
        self.output_count = 0  # chunks read so far (readiness: "has it drawn anything yet?")

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        dimensions: tuple[int, int] = (50, 200),
        log_path: Path | None = None,
        log_max_bytes: int = 5 * 1024 * 1024,
        log_backups: int = 2,
        redact: Sequence[str] = (),
    ) -> PtySession:
        """Start `argv` (rows, cols = `dimensions`) in a new session / process group."""
        self = cls()
        self._loop = asyncio.get_running_loop()
        self._exit = self._loop.create_future()
        if log_path is not None:
            self._log = RotatingLog(
                log_path, max_bytes=log_max_bytes, backups=log_backups, redact=redact
            )
        full_env = dict(os.environ if env is None else env)
        full_env.setdefault("TERM", "xterm-256color")
        if sys.platform == "win32":  # pragma: no cover - ConPTY path, untested on this machine
            from winpty import PtyProcess as WinPty  # type: ignore[import-not-found]

            self._proc = WinPty.spawn(
                list(argv), cwd=str(cwd) if cwd else None, env=full_env, dimensions=dimensions
            )
            self.pid = self._proc.pid
            threading.Thread(target=self._win_reader, daemon=True).start()
        else:
            from ptyprocess import PtyProcess

            # ptyprocess forks with setsid(): the child leads its own session and process group,
            # so terminate() can signal the whole group (tools the program started included).
            self._proc = PtyProcess.spawn(
                list(argv), env=full_env, cwd=str(cwd) if cwd else None, dimensions=dimensions
            )
            self.pid = self._proc.pid
            self._fd = self._proc.fd
            os.set_blocking(self._fd, False)
            self._loop.add_reader(self._fd, self._on_readable)
        threading.Thread(target=self._reap, daemon=True, name=f"pty-wait-{self.pid}").start()
        return self

    def _reap(self) -> None:
        """Block in a thread until the child exits; resolve the exit future on the loop."""
        if sys.platform == "win32":  # pragma: no cover
            code = self._proc.wait()
        else:
            try:
                _, status = os.waitpid(self.pid, 0)
                code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                code = -1
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._set_exit, code)

    def _set_exit(self, code: int) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(code)

    @property
    def returncode(self) -> int | None:
        return self._exit.result() if self._exit is not None and self._exit.done() else None

    def alive(self) -> bool:
        return self.returncode is None

    async def wait(self) -> int:
        """The program's exit status (negative signal number if killed), once it has exited."""
        assert self._exit is not None
        code = await asyncio.shield(self._exit)
        # Drain what the program printed last before subscribers are told it is gone.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._eof.wait(), 0.5)
        self._close()
        return code

    async def terminate(self, grace: float = 5.0) -> int:
        """TERM the whole process group, KILL it after `grace` seconds; no orphans are left."""
        assert self._exit is not None
        self._signal_group(signal.SIGTERM)
        if sys.platform != "win32":
            # SIGHUP too: that is what closing a terminal sends, and some TUIs only listen to it.
            self._signal_group(signal.SIGHUP)
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), grace)
        except TimeoutError:
            pass
        # Children that ignored TERM or outlived the leader are still in the group: kill them.
        self._signal_group(signal.SIGKILL)
        code = await asyncio.shield(self._exit)
        self._close()
        return code

    def _signal_group(self, sig: int) -> None:
        if sys.platform == "win32":  # pragma: no cover
            with contextlib.suppress(Exception):
                self._proc.terminate(force=sig == signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _close(self) -> None:
        self._eof.set()
        if self._fd >= 0 and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            # Close the master ourselves: ptyprocess.close() would waitpid() a child that our
            # reaper thread already collected.
            with contextlib.suppress(OSError):
                self._proc.fileobj.close()
            self._proc.closed = True
            self._fd = -1
        if self._log is not None:
            self._log.close()

    # -- output --------------------------------------------------------------------------------

    def subscribe(self, cb: Subscriber) -> None:
        """Call `cb(data)` with every chunk the program prints (from the event loop thread)."""
        self._subscribers.append(cb)

    def unsubscribe(self, cb: Subscriber) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(cb)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the slave side is closed (program and its children are gone)
            data = b""
        if not data:
            assert self._loop is not None
            self._loop.remove_reader(self._fd)
            self._eof.set()
            return
        self._feed(data)

    def _win_reader(self) -> None:  # pragma: no cover - Windows only
        assert self._loop is not None
        while True:
            try:
                text = self._proc.read(65536)
            except EOFError:
                break
            self._loop.call_soon_threadsafe(self._feed, text.encode("utf-8", "replace"))
        self._loop.call_soon_threadsafe(self._eof.set)

    def _feed(self, data: bytes) -> None:
        self.output_count += 1
        window = self._tail + data
        on, off = window.rfind(BRACKETED_ON), window.rfind(BRACKETED_OFF)
        if on != off:  # the later of the two switches wins
            self.bracketed_paste = on > off
        self._tail = window[-(len(BRACKETED_ON) - 1) :]
        if self._log is not None:
            self._log.write(data)
        for cb in list(self._subscribers):
            try:
                cb(data)
            except Exception:  # a broken viewer must not stop the session's output
                self.unsubscribe(cb)

    # -- input ---------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Raw bytes to the program (keystrokes); not subject to the hold."""
        if sys.platform == "win32":  # pragma: no cover
            self._proc.write(data.decode("utf-8", "replace"))
            return
        if self._fd < 0:
            raise ProcessLookupError("the session has ended")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                # The PTY buffer is full (the program is not reading); wait for it briefly.
                import select

                select.select([], [self._fd], [], 1.0)
                continue
            view = view[n:]

    @property
    def held(self) -> bool:
        return not self._released.is_set()

    @held.setter
    def held(self, value: bool) -> None:
        if value:
            self._released.clear()
        else:
            self._released.set()

    async def wait_released(self) -> None:
        await self._released.wait()

    async def paste(
        self, text: str, *, enter_delay: float = 0.15, single_line: bool = False
    ) -> str:
        """Type `text` as one input and submit it; returns the sanitized text that was typed.

        Bracketed paste only when the program enabled it (else the markers arrive as literal
        garbage); Enter is a separate write after `enter_delay`, because a CR that arrives while
        the paste is still being processed becomes part of the paste.
        """
        clean = sanitize(text, single_line=single_line or not self.bracketed_paste)
        async with self._type_lock:
            await self._released.wait()
            payload = clean.encode("utf-8")
            if self.bracketed_paste:
                payload = PASTE_START + payload + PASTE_END
            self.write(payload)
            await asyncio.sleep(enter_delay)
            await self._released.wait()
            self.write(ENTER)
        return clean

    # -- readiness -----------------------------------------------------------------------------

    def tty_mode(self) -> list[Any] | None:
        """The terminal's current modes (the slave's termios, read through the master)."""
        if self._fd < 0 or sys.platform == "win32":
            return None
        import termios

        try:
            return termios.tcgetattr(self._fd)
        except (OSError, termios.error):
            return None

    def tree_waiting(self) -> bool | None:
        """Whether every thread of the program and its descendants is asleep (blocked waiting,
        most likely for input); None where /proc cannot say."""
        if sys.platform != "linux":
            return None
        todo, seen = [self.pid], False
        while todo:
            pid = todo.pop()
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                base = f"/proc/{pid}/task/{tid}"
                try:
                    with open(f"{base}/stat") as fh:
                        state = fh.read().rsplit(")", 1)[1].split()[0]
                    with open(f"{base}/children") as fh:
                        todo.extend(int(k) for k in fh.read().split())
                except (OSError, IndexError, ValueError):
                    continue
                seen = True
                if state not in ("S", "Z", "I"):
                    return False
        return True if seen else None

    async def settle(
        self,
        *,
        quiet: float = 0.15,
        silent_quiet: float = 0.4,
        timeout: float = 15.0,
        step: float = 0.03,
    ) -> bool:
        """Wait until the program is ready for typed input; False on timeout or exit.

        Ready means: for `quiet` seconds nothing was printed, the terminal modes did not change
        and the program was blocked waiting. A program that typically switches to raw mode with
        TCSAFLUSH (the default of `tty.setraw`) discards whatever was typed before, so typing
        before that switch loses the event. A program that has shown nothing and kept the
        inherited modes must stay waiting for the longer `silent_quiet` (it may be loading).
        Bracketed paste switched on is the program saying it is ready: `quiet` applies then too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        initial = self.tty_mode()
        seen = (self.output_count, initial)
        since = loop.time()
        while loop.time() < deadline:
            if not self.alive():
                return False
            now = loop.time()
            state = (self.output_count, self.tty_mode())
            if state != seen or self.tree_waiting() is False:
                seen, since = state, now
            acted = self.output_count > 0 or state[1] != initial or self.bracketed_paste
            if now - since >= (quiet if acted else silent_quiet):
                return True
            await asyncio.sleep(step)
        return False

    def resize(self, rows: int, cols: int) -> None:
        if sys.platform == "win32":  # pragma: no cover
            self._proc.setwinsize(rows, cols)
            return
        with contextlib.suppress(OSError):
            self._proc.setwinsize(rows, cols)
