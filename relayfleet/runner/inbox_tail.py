"""Follow an agent's `inbox.jsonl` the moment a line is appended (inotify, never a sleep loop).

The tail keeps a byte offset and buffers a partial last line, so a writer caught mid-`write()`
is read once it finishes. It watches the inbox's *directory* rather than the file: the inbox may
not exist yet when the runner starts, and a file watch would be lost if someone replaced the file
(`os.replace` makes a new inode). A replaced or truncated inbox is read again from the start; the
ledger drops ids it already delivered. The runner's own compaction (runner/compaction.py) replaces
the file too, but tells the tail (`rebase`), which then carries on from the same line.

Linux uses inotify_simple (about 0.3 ms from append to wake-up, research deps-feasibility §8);
elsewhere watchfiles with a small step (about 2 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TailItem:
    """One parsed event and where its line sits in the file (`end` is the next line's start)."""

    event: dict[str, Any]
    start: int
    end: int


class InboxTail:
    """Async iterator over the events of one inbox file, from `offset` on, forever."""

    def __init__(
        self,
        path: Path,
        offset: int = 0,
        on_idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.offset = offset  # bytes consumed: every complete line before this was yielded
        # Awaited each time everything available was yielded and consumed, before sleeping:
        # the one moment nothing read from the file is still in flight (compaction runs here).
        self.on_idle = on_idle
        self._partial = b""
        self._buffer: deque[TailItem] = deque()  # read from the file, not yet handed out
        self._ino: int | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._watcher: _Watcher | None = None

    # -- reading --------------------------------------------------------------------------
    def read_available(self) -> list[TailItem]:
        """Every complete line appended since the last call (non-blocking)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            st = os.fstat(fd)
            if (self._ino is not None and st.st_ino != self._ino) or st.st_size < self.offset:
                # Replaced or truncated: start over; ids already delivered are skipped upstream.
                self.offset = 0
                self._partial = b""
            self._ino = st.st_ino
            pos = self.offset + len(self._partial)
            if st.st_size <= pos:
                return []
            os.lseek(fd, pos, os.SEEK_SET)
            chunks = []
            remaining = st.st_size - pos
            while remaining > 0:
                buf = os.read(fd, min(remaining, 1 << 20))
                if not buf:
                    break
                chunks.append(buf)
                remaining -= len(buf)
        finally:
            os.close(fd)
        data = self._partial + b"".join(chunks)
        items: list[TailItem] = []
        start = self.offset
        while True:
            nl = data.find(b"\n")
            if nl < 0:
                break
            line, data = data[:nl], data[nl + 1 :]
            end = start + nl + 1
            if line.strip():
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None  # a corrupt line is skipped, never fatal
                if isinstance(event, dict):
                    items.append(TailItem(event, start, end))
            start = end
        self.offset = start
        self._partial = data
        return items

    def take_ready(self, limit: int) -> list[TailItem]:
        """Up to `limit` more events that are already in the file, without waiting (the
        delivery loop coalesces a burst with them). The iterator goes on after the last one."""
        if not self._buffer:
            self._buffer.extend(self.read_available())
        return [self._buffer.popleft() for _ in range(min(limit, len(self._buffer)))]

    def rebase(self, cut: int, inode: int) -> None:
        """The file was replaced by itself minus its first `cut` bytes (compaction): keep going
        from the same line rather than starting over."""
        self.offset = max(0, self.offset - cut)
        self._ino = inode

    # -- following ------------------------------------------------------------------------
    async def __aiter__(self) -> AsyncIterator[TailItem]:
        self._watcher = _make_watcher(self.path.parent, self.path.name, self._wake)
        await self._watcher.start()
        try:
            while not self._closed:
                # Clear before reading: an append that lands while we read sets it again.
                self._wake.clear()
                self._buffer.extend(self.read_available())
                while self._buffer:
                    yield self._buffer.popleft()
                if self._closed:
                    break
                if self.on_idle is not None:
                    await self.on_idle()
                await self._wake.wait()
        finally:
            await self._watcher.stop()

    def close(self) -> None:
        self._closed = True
        self._wake.set()


class _Watcher:
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _InotifyWatcher(_Watcher):
    def __init__(self, directory: Path, name: str, wake: asyncio.Event) -> None:
        self.directory, self.name, self.wake = directory, name, wake
        self._inotify: Any = None

    async def start(self) -> None:
        from inotify_simple import INotify, flags

        self.directory.mkdir(parents=True, exist_ok=True)
        self._inotify = INotify(nonblocking=True)
        mask = flags.MODIFY | flags.CREATE | flags.MOVED_TO | flags.CLOSE_WRITE | flags.ATTRIB
        self._inotify.add_watch(str(self.directory), mask)
        asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._on_ready)

    def _on_ready(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            events = []
        if any(e.name == self.name for e in events):
            self.wake.set()

    async def stop(self) -> None:
        if self._inotify is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None


class _WatchfilesWatcher(_Watcher):
    """macOS/Windows: watchfiles (FSEvents / ReadDirectoryChangesW) with a small step."""

    def __init__(self, directory: Path, name: str, wake: asyncio.Event) -> None:
        self.directory, self.name, self.wake = directory, name, wake
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        from watchfiles import awatch

        async for changes in awatch(
            self.directory, step=2, debounce=20, stop_event=self._stop, recursive=False
        ):
            if any(Path(p).name == self.name for _, p in changes):
                self.wake.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def _make_watcher(directory: Path, name: str, wake: asyncio.Event) -> _Watcher:
    if sys.platform.startswith("linux"):
        return _InotifyWatcher(directory, name, wake)
    return _WatchfilesWatcher(directory, name, wake)
