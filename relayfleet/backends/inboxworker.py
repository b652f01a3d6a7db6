"""The ssh inbox transport's long-lived remote worker: `inboxfile serve`, one per pooled connection.

Each exec on an ssh host runs the user's login shell and rc files first (~100 ms with `pyenv init`
in `~/.bashrc`), so an exec per append is slow. Instead the first append on a connection starts
`exec <venv python> -m relayfleet.core.inboxfile serve` once and keeps its channel open; every
later append or `has` is one JSON line each way on that channel (see `core/inboxfile.py`).

Exactly-once survives a dying worker: the worker appends with `append_once` (flock + id check,
the same lock as the runner's local writers on the host), so when a reply never comes (the
worker was killed, the channel closed) the request is re-sent once to a fresh worker, which
answers "already there" if the first one had written it. A second failure, a wedged worker (no
reply within the timeout: it is killed) or a worker that cannot start is a BackendError, which
the outbox (`transports.DeliveringTransport`) retries later with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relayfleet.core.errors import BackendError

if TYPE_CHECKING:
    import asyncssh

    from relayfleet.backends.sshpool import SshPool, SshTarget

START_TIMEOUT = 30.0  # the first start also pays the login shell and a cold Python
REQUEST_TIMEOUT = 30.0  # a reply waits for the host's inbox flock, held briefly by writers
# An idle worker exits on its own (a router that delivers rarely leaves no process on the host
# between deliveries); the next request just starts a new one.
IDLE_EXIT = 600.0


@dataclass
class _Worker:
    conn: asyncssh.SSHClientConnection
    proc: asyncssh.SSHClientProcess[str]
    pid: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one request at a time

    def alive(self) -> bool:
        return (
            not self.conn.is_closed()
            and self.proc.exit_status is None
            and self.proc.exit_signal is None
            and not self.proc.stdout.at_eof()
        )

    def close(self) -> None:
        # Kill, not just close: a worker blocked on a stuck flock would otherwise linger until
        # it got the lock. Closing the channel alone is enough for an idle one (stdin EOF).
        with contextlib.suppress(Exception):
            self.proc.send_signal("KILL")
        with contextlib.suppress(Exception):
            self.proc.close()


async def _hello(proc: asyncssh.SSHClientProcess[str]) -> dict[str, Any]:
    """The worker's `{"ready": …}` line, past whatever a noisy login shell printed before it."""
    for _ in range(1000):
        line = await proc.stdout.readline()
        if not line:
            return {}
        if line.startswith("{"):
            try:
                info = json.loads(line)
            except ValueError:
                continue
            if isinstance(info, dict) and "ready" in info:
                return info
    return {}


class InboxWorkers:
    """The workers of one SshPool, keyed by host and remote python; used on the pool's loop."""

    def __init__(self, pool: SshPool) -> None:
        self.pool = pool
        self.started = 0  # workers started so far (tests and the benchmark read this)
        self._workers: dict[tuple[SshTarget, str], _Worker] = {}
        self._starting: dict[tuple[SshTarget, str], asyncio.Lock] = {}

    async def _start(self, target: SshTarget, python: str) -> _Worker:
        import asyncssh

        from relayfleet.backends.sshpool import _translate, q

        cmd = f"exec {q(python)} -m relayfleet.core.inboxfile serve --idle {IDLE_EXIT:g}"
        for attempt in (1, 2):
            conn = await self.pool.connection(target)
            try:
                proc = await conn.create_process(cmd, encoding="utf-8")
            except asyncssh.ChannelOpenError as exc:
                self.pool.discard(target, conn)  # a connection that died under us: reopen once
                if attempt == 2:
                    raise _translate(target, exc) from exc
                continue
            except (OSError, asyncssh.Error) as exc:
                raise _translate(target, exc) from exc
            self.pool.commands += 1
            try:
                info = await asyncio.wait_for(_hello(proc), START_TIMEOUT)
            except (TimeoutError, OSError, asyncssh.Error):
                info = {}
            if not info.get("ready"):
                why = ""
                with contextlib.suppress(Exception):
                    proc.close()
                    why = (await asyncio.wait_for(proc.stderr.read(), 5)).strip()
                raise BackendError(
                    f"the inbox worker did not start on {target.name!r}: "
                    f"{' / '.join(why.splitlines()[-3:]) or 'no answer'}",
                    hints=["`gh fleet host check` shows whether the runner is installed there"],
                )
            self.started += 1
            return _Worker(conn, proc, int(info.get("pid", 0)))
        raise AssertionError("unreachable")

    async def worker(self, target: SshTarget, python: str) -> _Worker:
        """The live worker for (target, python), started when there is none or it died."""
        key = (target, python)
        w = self._workers.get(key)
        if w is not None and w.alive():
            return w
        async with self._starting.setdefault(key, asyncio.Lock()):
            w = self._workers.get(key)
            if w is not None and w.alive():
                return w
            if w is not None:
                w.close()
            w = await self._start(target, python)
            self._workers[key] = w
            return w

    def _drop(self, target: SshTarget, python: str, w: _Worker) -> None:
        w.close()
        if self._workers.get((target, python)) is w:
            del self._workers[(target, python)]

    async def request(
        self,
        target: SshTarget,
        python: str,
        req: dict[str, Any],
        timeout: float = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """Send `req`, return the worker's answer; re-sent once to a new worker if one died."""
        import asyncssh

        line = json.dumps(req, separators=(",", ":"), ensure_ascii=False) + "\n"
        for _attempt in (1, 2):
            w = await self.worker(target, python)
            async with w.lock:
                try:
                    w.proc.stdin.write(line)
                    raw = await asyncio.wait_for(w.proc.stdout.readline(), timeout)
                except TimeoutError as exc:
                    self._drop(target, python, w)  # wedged: do not wait twice as long
                    raise BackendError(
                        f"the inbox worker on {target.name!r} did not answer in {timeout:.0f} s"
                    ) from exc
                except (OSError, asyncssh.Error):
                    raw = ""
                if raw.endswith("\n"):
                    try:
                        resp: dict[str, Any] = json.loads(raw)
                    except ValueError as exc:
                        self._drop(target, python, w)
                        raise BackendError(
                            f"the inbox worker on {target.name!r} answered {raw[:200]!r}"
                        ) from exc
                    if not resp.get("ok"):
                        raise BackendError(
                            f"inbox {req.get('op')} failed on {target.name!r}: {resp.get('error')}"
                        )
                    return resp
            # No (complete) reply: the worker or its channel died. Whether the request landed
            # or not, re-sending it is safe (append_once is idempotent by id).
            self._drop(target, python, w)
        raise BackendError(f"the inbox worker on {target.name!r} died twice in a row")

    async def close(self, target: SshTarget) -> int:
        """End the workers on `target` (a later request starts a new one); how many ended."""
        gone = [k for k in self._workers if k[0] == target]
        for k in gone:
            w = self._workers.pop(k)
            async with w.lock:  # let an in-flight request finish first
                w.close()
        return len(gone)

    def pid(self, target: SshTarget, python: str) -> int | None:
        """The host pid of the current worker (None when there is none)."""
        w = self._workers.get((target, python))
        return w.pid if w is not None and w.alive() else None


_by_pool: weakref.WeakKeyDictionary[SshPool, InboxWorkers] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def workers_for(pool: SshPool) -> InboxWorkers:
    """The pool's workers (created on first use; they share its connections and its loop)."""
    with _guard:
        w = _by_pool.get(pool)
        if w is None:
            w = _by_pool[pool] = InboxWorkers(pool)
        return w


def close_workers(pool: SshPool, target: SshTarget) -> int:
    """`InboxWorkers.close` from synchronous code (`stop`: leave nothing running on the host)."""
    w = _by_pool.get(pool)
    if w is None:
        return 0
    return pool.call(
        lambda: w.close(target),
        timeout=REQUEST_TIMEOUT + 10,
        target=target,
        step="ending the inbox worker",
    )
