"""An agent's session, the same way on every backend: its logs (tail, follow) and its attach
socket, wherever its runner keeps them.

local and docker agents keep their state dir on this machine (docker's is bind-mounted at the
same path), so their logs are files here and the runner's attach socket is reachable here. An
ssh agent's are on its host: logs are read over SFTP (no shell: a noisy login shell cannot get
in the way) and the attach socket is reached through an SSH stream-local forward on the pooled
connection, to a 0700 directory of ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from relayfleet.backends.logtail import RenderedLog, render
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet

if TYPE_CHECKING:
    from relayfleet.backends.sshpool import SshPool, SshTarget


class StateFiles(Protocol):
    """An agent's state dir, wherever it is: sizes and bytes of its files by name."""

    where: str  # for messages

    def size(self, name: str) -> int | None: ...

    def read(self, name: str, offset: int = 0) -> bytes | None: ...


class LocalFiles:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.where = str(directory)

    def size(self, name: str) -> int | None:
        try:
            return (self.dir / name).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, name: str, offset: int = 0) -> bytes | None:
        try:
            with open(self.dir / name, "rb") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return None


class SshFiles:
    def __init__(self, pool: SshPool, target: SshTarget, directory: str, host: str) -> None:
        self.pool, self.target, self.dir = pool, target, directory
        self.where = f"{host}:{directory}"

    def size(self, name: str) -> int | None:
        return self.pool.size(self.target, f"{self.dir}/{name}", timeout=60)

    def read(self, name: str, offset: int = 0) -> bytes | None:
        return self.pool.read(self.target, f"{self.dir}/{name}", offset=offset, timeout=120)


def state_files(paths: FleetPaths, fleet: Fleet, agent: Agent) -> StateFiles:
    if agent.runtime.backend == "ssh":
        from relayfleet.backends.ssh import SshBackend

        backend = SshBackend()
        r = backend.remote(paths, fleet, agent)
        return SshFiles(backend.pool, r.target, r.layout.agent_state(agent.name), r.host.name)
    return LocalFiles(paths.agent_state(agent.name))


def tail(files: StateFiles, name: str, lines: int, *, raw: bool) -> str:
    """The last `lines` lines of `name`, reaching into `name.1` when `name` is short."""
    need = max(64 * 1024, lines * 400)
    parts: list[bytes] = []
    for n in (name, name + ".1"):
        size = files.size(n)
        if size is None:
            continue
        chunk = files.read(n, max(0, size - need)) or b""
        parts.insert(0, chunk)
        need -= len(chunk)
        if need <= 0:
            break
    data = b"".join(parts)
    if not raw:
        # What a person saw: \r, cursor moves and erases applied (backends/logtail.py).
        shown = render(data)[-lines:] if lines > 0 else []
        return "".join(ln + "\n" for ln in shown)
    out = data.decode("utf-8", "replace").split("\n")
    if out and out[-1] == "":
        out.pop()
    return "\n".join(out[-lines:]) + ("\n" if out else "") if lines > 0 else ""


def follow(
    files: StateFiles,
    name: str,
    out: TextIO,
    *,
    raw: bool,
    poll: float = 0.5,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Print what is appended to `name` until ^C (or `stop()`), across rotation: when the file
    shrank, the rest of the old one is read from `name.1` first."""
    offset = files.size(name) or 0
    pending = b""
    screen = None if raw else RenderedLog()
    if screen is not None:  # primed with what `tail` already printed
        screen.feed(files.read(name, max(0, offset - 64 * 1024)) or b"")
        screen.mark_shown()

    def emit(chunk: bytes) -> None:
        nonlocal pending
        if screen is not None:
            screen.feed(chunk)
            lines = screen.new_lines()
            if lines:
                out.write("".join(ln + "\n" for ln in lines))
                out.flush()
            return
        data = pending + chunk
        cut = data.rfind(b"\n") + 1  # whole lines: an escape sequence is never split
        done, pending = data[:cut], data[cut:]
        if done:
            out.write(done.decode("utf-8", "replace"))
            out.flush()

    try:
        while not (stop and stop()):
            size = files.size(name)
            if size is not None and size < offset:  # rotated: finish the old file first
                emit(files.read(name + ".1", offset) or b"")
                offset = 0
            if size is not None and size > offset:
                chunk = files.read(name, offset) or b""
                offset += len(chunk)
                emit(chunk)
                continue
            time.sleep(poll)
    except KeyboardInterrupt:
        pass


@contextlib.contextmanager
def attach_path(paths: FleetPaths, fleet: Fleet, agent: Agent) -> Iterator[Path]:
    """A unix socket path on this machine that reaches the runner's attach socket."""
    from relayfleet.core.atomic import read_json

    if agent.runtime.backend != "ssh":
        facts = read_json(paths.runner_status(agent.name), {}) or {}
        yield Path(facts.get("attach_socket") or paths.agent_state(agent.name) / "attach.sock")
        return
    from relayfleet.backends.ssh import SshBackend

    backend = SshBackend()
    r = backend.remote(paths, fleet, agent)
    raw = backend.pool.read(r.target, f"{r.layout.agent_state(agent.name)}/runner.json")
    facts = {}
    with contextlib.suppress(ValueError):
        facts = json.loads(raw or b"{}")
    remote = str(facts.get("attach_socket") or r.layout.attach_socket(agent.name))
    with tempfile.TemporaryDirectory(prefix="rf-attach-") as d:
        os.chmod(d, 0o700)
        local = os.path.join(d, "s")
        pool, target = backend.pool, r.target

        async def open_forward() -> object:
            conn = await pool.connection(target)
            try:
                return await conn.forward_local_path(local, remote)
            except OSError as exc:
                raise BackendError(
                    f"{agent.name}: cannot reach its attach socket on {r.host.name!r}: {exc}"
                ) from exc

        listener = pool.call(open_forward, timeout=60, target=target, step="opening attach")
        try:
            yield Path(local)
        finally:
            close = getattr(listener, "close", None)
            if close is not None:
                pool.submit(_call_soon(close))


async def _call_soon(fn: Callable[[], object]) -> None:
    fn()
