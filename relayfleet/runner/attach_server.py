"""`gh fleet attach`: a 0600 unix socket in the agent's state dir that mirrors the live PTY.

The runner owns the PTY master, so attaching is a matter of fanning its output out to a socket
and writing the socket's bytes back in as keystrokes. While anyone is attached the PTY's `held`
flag is set: typed deliveries wait, so the runner never types into a human's half-written prompt.
The stream survives session restarts (`OutputHub` is fed by whichever PTY is current).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Viewer -> runner messages are framed: 1 byte kind, 2 bytes big-endian length, payload.
# `d` keystrokes; `w` the viewer's terminal size (rows, cols as two big-endian u16).
FRAME_DATA = b"d"
FRAME_WINSIZE = b"w"


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!H", len(payload)) + payload


def winsize_frame(rows: int, cols: int) -> bytes:
    return frame(FRAME_WINSIZE, struct.pack("!HH", rows, cols))


def data_frames(data: bytes) -> bytes:
    return b"".join(frame(FRAME_DATA, data[i : i + 65535]) for i in range(0, len(data), 65535))


REPLAY_BYTES = 64 * 1024  # screen history sent on attach, so the human sees where things stand
MAX_BUFFERED = 4 * 1024 * 1024  # a viewer this far behind is dropped, never the session


class OutputHub:
    """Fans session output out to attached viewers, keeping a short replay buffer."""

    def __init__(self) -> None:
        self._replay: deque[bytes] = deque()
        self._replay_size = 0
        self._listeners: list[Callable[[bytes], None]] = []

    def feed(self, data: bytes) -> None:
        self._replay.append(data)
        self._replay_size += len(data)
        while self._replay_size > REPLAY_BYTES and len(self._replay) > 1:
            self._replay_size -= len(self._replay.popleft())
        for cb in list(self._listeners):
            cb(data)

    def replay(self) -> bytes:
        return b"".join(self._replay)[-REPLAY_BYTES:]

    def listen(self, cb: Callable[[bytes], None]) -> None:
        self._listeners.append(cb)

    def unlisten(self, cb: Callable[[bytes], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(cb)


class AttachServer:
    def __init__(
        self,
        path: Path,
        hub: OutputHub,
        current_pty: Callable[[], Any],
        on_change: Callable[[int], None],
        on_submit: Callable[[], None] | None = None,
        on_resize: Callable[[tuple[int, int] | None], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.hub = hub
        self.current_pty = current_pty  # the live PtySession, or None between restarts
        self.on_change = on_change  # told the number of attached viewers
        self.on_submit = on_submit  # the human pressed Enter in the session
        self.on_resize = on_resize  # a viewer's size; None when the last one detached
        self.clients = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a killed runner
        old = os.umask(0o177)  # created 0600 from the start: no window where others could connect
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    @property
    def attached(self) -> bool:
        return self.clients > 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        self.on_change(self.clients)

        def forward(data: bytes) -> None:
            if writer.transport.get_write_buffer_size() > MAX_BUFFERED:
                writer.transport.abort()
                return
            writer.write(data)

        try:
            writer.write(self.hub.replay())
            self.hub.listen(forward)
            while True:
                try:
                    head = await reader.readexactly(3)
                    payload = await reader.readexactly(struct.unpack("!H", head[1:])[0])
                except asyncio.IncompleteReadError:
                    break
                if head[:1] == FRAME_WINSIZE and len(payload) == 4:
                    rows, cols = struct.unpack("!HH", payload)
                    if rows and cols and self.on_resize is not None:
                        self.on_resize((rows, cols))
                    continue
                if head[:1] != FRAME_DATA:
                    continue
                data = payload
                pty = self.current_pty()
                if pty is not None:
                    with contextlib.suppress(OSError, ProcessLookupError):
                        pty.write(data)
                    if b"\r" in data and self.on_submit is not None:
                        self.on_submit()
        except (ConnectionError, OSError):
            pass
        finally:
            self.hub.unlisten(forward)
            self.clients -= 1
            if self.clients == 0 and self.on_resize is not None:
                self.on_resize(None)  # back to the session's own size
            self.on_change(self.clients)
            with contextlib.suppress(Exception):
                writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
