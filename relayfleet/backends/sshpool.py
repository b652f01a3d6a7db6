"""Pooled SSH connections: one authenticated asyncssh connection per host per process.

`status` for ten agents on one VM, the ssh inbox transport and the tunnel all share it. Host keys
are verified against known_hosts (the fleet's own `state/known_hosts`, then `~/.ssh/known_hosts`);
an unknown or changed key is a BackendError that says how to trust it, never accepted silently.

The CLI is synchronous, so the pool runs its own event loop in a daemon thread and `SshPool`
offers a small sync facade (`run`, `put`, `read`, …). Async callers use `connection()` directly.

Every command carries its own timeout end to end (the sync facade waits that long plus the
connect time, never a fixed cap); running out of it is a BackendError naming the host, the step
and the time allowed. A host user's login shell may print to stdout (a noisy `.bashrc`): each
command prints a random marker first and only what follows it is the command's output. Files go
over SFTP, which runs no shell at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shlex
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from relayfleet.core.errors import BackendError
from relayfleet.fleet.model import Host

if TYPE_CHECKING:
    import asyncssh

T = TypeVar("T")

KNOWN_HOSTS_FILE = "known_hosts"  # under .fleet/state/ (written by `gh fleet host trust`)


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect, plus which known_hosts files vouch for the host key."""

    name: str  # the [hosts] key, for messages
    addr: str
    port: int = 22
    user: str = ""
    key: str = ""  # private key path; "" = ssh-agent and ~/.ssh/id_*
    known_hosts: tuple[str, ...] = ()

    @classmethod
    def from_host(cls, host: Host, state_dir: Path | None = None) -> SshTarget:
        user, _, addr = host.host.rpartition("@")
        if not addr:
            raise BackendError(
                f"host {host.name!r} has no address",
                hints=[f"gh fleet host add {host.name} --backend ssh --host user@addr"],
            )
        files = []
        if state_dir is not None:
            files.append(str(state_dir / KNOWN_HOSTS_FILE))
        files.append(os.path.expanduser("~/.ssh/known_hosts"))
        return cls(
            name=host.name,
            addr=addr,
            port=host.port or 22,
            user=user,
            key=os.path.expanduser(host.key) if host.key else "",
            known_hosts=tuple(files),
        )

    @property
    def label(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.addr}:{self.port}"

    def known_host_pattern(self) -> str:
        return self.addr if self.port == 22 else f"[{self.addr}]:{self.port}"

    def trust_hints(self) -> list[str]:
        return [
            f"check the key's fingerprint, then run `gh fleet host trust {self.name}`",
            f"or: ssh-keyscan -p {self.port} {self.addr} >> ~/.ssh/known_hosts",
        ]


def load_known_hosts(files: tuple[str, ...]) -> asyncssh.SSHKnownHosts:
    import asyncssh

    text = ""
    for f in files:
        try:
            text += Path(f).read_text() + "\n"
        except (FileNotFoundError, NotADirectoryError):
            continue
    return asyncssh.import_known_hosts(text)


async def scan_host_key(target: SshTarget, timeout: float = 15) -> str:
    """The server's host key as a known_hosts line (what `host trust` appends), unverified."""
    import asyncssh

    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(target.addr, target.port), timeout
        )
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise BackendError(f"cannot reach {target.label}: {exc}") from exc
    if key is None:
        raise BackendError(f"{target.label} offered no host key")
    return f"{target.known_host_pattern()} {key.export_public_key().decode().strip()}"


def _translate(target: SshTarget, exc: BaseException) -> BackendError:
    import asyncssh

    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return BackendError(
            f"host {target.name!r} ({target.label}): its SSH host key is not in known_hosts "
            "(or it changed); refusing to connect",
            hints=target.trust_hints(),
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return BackendError(
            f"host {target.name!r} ({target.label}): authentication failed",
            hints=["set the key with `gh fleet host add … --key PATH`, or load it in ssh-agent"],
        )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return BackendError(f"host {target.name!r} ({target.label}): timed out")
    if isinstance(exc, asyncssh.ChannelOpenError | asyncssh.SFTPError) and "ession request" in str(
        exc
    ):
        return no_sftp(target, exc)
    return BackendError(f"host {target.name!r} ({target.label}): {exc}")


def timed_out(target: SshTarget, step: str, allowed: float) -> BackendError:
    """The one shape of a remote timeout: which host, which step, how long it was given."""
    return BackendError(
        f"host {target.name!r}: {step or 'a remote command'} did not finish within {allowed:.0f} s",
        hints=[
            f"`gh fleet host check {target.name}` shows whether the host answers",
            "a slow host: try again (a finished step is not redone)",
        ],
    )


def no_sftp(target: SshTarget, exc: BaseException | str) -> BackendError:
    return BackendError(
        f"host {target.name!r} ({target.label}) offers no SFTP subsystem "
        f"(sshd refused 'sftp': {exc}); files are copied over SFTP",
        hints=[
            "add `Subsystem sftp internal-sftp` to the host's /etc/ssh/sshd_config and reload "
            "sshd (systemctl reload ssh)",
        ],
    )


def frame(command: str, marker: str) -> str:
    """`command`, preceded by a marker on stdout and stderr: what a noisy login shell prints
    before our command runs (a `.bashrc` that echoes) stays in front of it."""
    return f"printf '%s\\n' {marker}; printf '%s\\n' {marker} >&2; {command}"


def unframe(text: str, marker: str) -> str:
    """What the command printed: everything after the marker line (all of it when absent)."""
    at = text.find(marker + "\n")
    return text if at < 0 else text[at + len(marker) + 1 :]


@dataclass
class RunResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class SshPool:
    """One connection per target, reused across calls and threads, reopened when it drops."""

    def __init__(self, connect_timeout: float = 15.0) -> None:
        self.connect_timeout = connect_timeout
        self.opened = 0  # connections made so far (tests and benchmarks read this)
        self.commands = 0  # remote commands run so far (one exec channel each)
        self._conns: dict[SshTarget, asyncssh.SSHClientConnection] = {}
        self._locks: dict[SshTarget, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._homes: dict[SshTarget, str] = {}
        self._forwards: dict[tuple[SshTarget, int], Any] = {}

    # -- async API (runs on whatever loop calls it; the sync facade uses the pool's loop) --

    async def connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        import asyncssh

        conn = self._conns.get(target)
        if conn is not None and not conn.is_closed():
            return conn
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:
            conn = self._conns.get(target)
            if conn is not None and not conn.is_closed():
                return conn
            opts: dict[str, Any] = {
                "port": target.port,
                "known_hosts": load_known_hosts(target.known_hosts),
                "connect_timeout": self.connect_timeout,
                "keepalive_interval": 30,
            }
            if target.user:
                opts["username"] = target.user
            if target.key:
                opts["client_keys"] = [target.key]
            try:
                conn = await asyncssh.connect(target.addr, **opts)
            except (TimeoutError, OSError, asyncssh.Error) as exc:
                raise _translate(target, exc) from exc
            self.opened += 1
            self._conns[target] = conn
            return conn

    async def arun(
        self,
        target: SshTarget,
        command: str,
        *,
        input: str | None = None,
        timeout: float = 60,
        step: str = "",
    ) -> RunResult:
        import asyncssh

        marker = f"@relayfleet-{secrets.token_hex(6)}@"
        for attempt in (1, 2):
            conn = await self.connection(target)
            self.commands += 1
            try:
                r = await conn.run(
                    frame(command, marker), input=input, check=False, timeout=timeout
                )
            except asyncssh.TimeoutError as exc:
                raise timed_out(target, step, timeout) from exc
            except asyncssh.ChannelOpenError as exc:
                # A connection that died under us (VM rebooted, NAT timeout): reopen once.
                self._conns.pop(target, None)
                if attempt == 2:
                    raise _translate(target, exc) from exc
                continue
            except TimeoutError as exc:
                raise timed_out(target, step, timeout) from exc
            except (OSError, asyncssh.Error) as exc:
                raise _translate(target, exc) from exc
            status = r.exit_status if r.exit_status is not None else 255
            return RunResult(
                status, unframe(str(r.stdout or ""), marker), unframe(str(r.stderr or ""), marker)
            )
        raise AssertionError("unreachable")

    async def sftp(self, target: SshTarget) -> asyncssh.SFTPClient:
        """An SFTP session on the pooled connection; a host without the subsystem is named so."""
        import asyncssh

        conn = await self.connection(target)
        try:
            return await conn.start_sftp_client()
        except asyncssh.ChannelOpenError as exc:
            self.discard(target, conn)
            raise _translate(target, exc) from exc
        except (asyncssh.Error, OSError) as exc:
            raise no_sftp(target, exc) from exc

    def discard(self, target: SshTarget, conn: asyncssh.SSHClientConnection) -> None:
        """Forget `conn` (it died under a caller); the next `connection()` opens a new one."""
        if self._conns.get(target) is conn:
            del self._conns[target]

    async def aclose(self) -> None:
        conns = list(self._conns.values())
        self._conns.clear()
        for c in conns:
            c.close()
        for c in conns:
            try:
                await asyncio.wait_for(c.wait_closed(), 5)
            except (TimeoutError, OSError):
                pass

    async def ahome(self, target: SshTarget) -> str:
        """The remote user's home directory (cached: one round trip per host per process)."""
        if target not in self._homes:
            r = await self.arun(target, 'printf %s "$HOME"')
            if not r.ok or not r.stdout.startswith("/"):
                raise BackendError(f"host {target.name!r}: could not read $HOME: {r.stderr}")
            self._homes[target] = r.stdout
        return self._homes[target]

    async def aforward_local(self, target: SshTarget, remote_port: int) -> int:
        """A local port that reaches 127.0.0.1:`remote_port` on the host (cached listener)."""
        key = (target, remote_port)
        conn = await self.connection(target)
        held = self._forwards.get(key)
        if held is not None and held[0] is conn:  # still carried by the live connection
            return int(held[1].get_port())
        try:
            listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", remote_port)
        except OSError as exc:
            raise _translate(target, exc) from exc
        self._forwards[key] = (conn, listener)
        return int(listener.get_port())

    # -- sync facade --

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None or not self._thread or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="relayfleet-ssh", daemon=True)
                t.start()
                self._loop, self._thread = loop, t
            return self._loop

    def call(
        self,
        fn: Callable[[], Awaitable[T]],
        timeout: float | None = 120,
        *,
        target: SshTarget | None = None,
        step: str = "",
    ) -> T:
        """Run `fn()` on the pool's loop from synchronous code and wait for its result.

        `timeout` covers the whole call; the connection's own set-up comes on top of it."""
        loop = self._ensure_loop()

        async def wrapper() -> T:
            return await fn()

        fut: Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), loop)
        wait = None if timeout is None else timeout + self.connect_timeout + 5
        try:
            return fut.result(wait)
        except concurrent.futures.TimeoutError as exc:
            fut.cancel()
            if target is None:
                raise BackendError(
                    f"{step or 'a remote operation'} did not finish within {timeout:.0f} s"
                ) from exc
            raise timed_out(target, step, timeout or 0) from exc

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._ensure_loop())

    def run(
        self,
        target: SshTarget,
        command: str,
        *,
        input: str | None = None,
        timeout: float = 60,
        step: str = "",
    ) -> RunResult:
        # The remote timeout is the command's own; the facade's wait covers it plus connecting.
        return self.call(
            lambda: self.arun(target, command, input=input, timeout=timeout, step=step),
            timeout=timeout,
            target=target,
            step=step,
        )

    def check(
        self,
        target: SshTarget,
        command: str,
        *,
        input: str | None = None,
        timeout: float = 60,
        what: str = "",
    ) -> str:
        """Run `command`; its stdout, or a BackendError carrying its stderr."""
        r = self.run(target, command, input=input, timeout=timeout, step=what)
        if not r.ok:
            detail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise BackendError(
                f"{what or 'remote command'} failed on {target.name!r} "
                f"(exit {r.exit_status}): {' / '.join(detail)}"
            )
        return r.stdout

    def put(
        self,
        target: SshTarget,
        data: bytes,
        remote_path: str,
        mode: int = 0o644,
        *,
        timeout: float = 120,
    ) -> None:
        """Write `data` to `remote_path` over SFTP (tmp + rename), creating parents."""

        async def go() -> None:
            import asyncssh

            sftp = await self.sftp(target)
            try:
                async with sftp:
                    parent = remote_path.rsplit("/", 1)[0] if "/" in remote_path else ""
                    if parent:
                        await sftp.makedirs(parent, exist_ok=True)
                    tmp = f"{remote_path}.{os.getpid()}.tmp"
                    # Create with the final mode so a secret is never world-readable, not
                    # even for the instant between write and chmod.
                    attrs = asyncssh.SFTPAttrs(permissions=mode)
                    async with sftp.open(tmp, "wb", attrs) as f:
                        await f.write(data)
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, remote_path)
            except (OSError, asyncssh.Error) as exc:
                raise BackendError(
                    f"could not write {remote_path} on {target.name!r}: {exc}"
                ) from exc

        self.call(go, timeout=timeout, target=target, step=f"writing {remote_path}")

    def put_tree(
        self, target: SshTarget, files: dict[str, bytes], remote_root: str, *, timeout: float = 600
    ) -> None:
        """Write many files (relative path -> bytes) under `remote_root` in one SFTP session."""

        async def go() -> None:
            import asyncssh

            sftp = await self.sftp(target)
            try:
                async with sftp:
                    made: set[str] = set()
                    for rel, data in sorted(files.items()):
                        path = f"{remote_root}/{rel}"
                        parent = path.rsplit("/", 1)[0]
                        if parent not in made:
                            await sftp.makedirs(parent, exist_ok=True)
                            made.add(parent)
                        async with sftp.open(path, "wb") as f:
                            await f.write(data)
            except (OSError, asyncssh.Error) as exc:
                raise BackendError(f"could not sync files to {target.name!r}: {exc}") from exc

        self.call(go, timeout=timeout, target=target, step=f"copying files to {remote_root}")

    def read(
        self, target: SshTarget, remote_path: str, *, offset: int = 0, timeout: float = 120
    ) -> bytes | None:
        """The file's bytes from `offset` on, or None when it does not exist."""

        async def go() -> bytes | None:
            import asyncssh

            sftp = await self.sftp(target)
            try:
                async with sftp:
                    try:
                        async with sftp.open(remote_path, "rb") as f:
                            if offset:
                                await f.seek(offset)
                            data = await f.read()
                            # asyncssh's stubs type every read as str; "rb" gives bytes.
                            return data if isinstance(data, bytes) else data.encode()
                    except asyncssh.SFTPNoSuchFile:
                        return None
            except (OSError, asyncssh.Error) as exc:
                raise BackendError(
                    f"could not read {remote_path} on {target.name!r}: {exc}"
                ) from exc
            return None  # not reached (mypy cannot see that `async with` re-raises)

        return self.call(go, timeout=timeout, target=target, step=f"reading {remote_path}")

    def size(self, target: SshTarget, remote_path: str, *, timeout: float = 60) -> int | None:
        """The file's size (None when it does not exist): what `logs -f` polls."""

        async def go() -> int | None:
            import asyncssh

            sftp = await self.sftp(target)
            try:
                async with sftp:
                    try:
                        attrs = await sftp.stat(remote_path)
                    except asyncssh.SFTPNoSuchFile:
                        return None
                    return int(attrs.size or 0)
            except (OSError, asyncssh.Error) as exc:
                raise BackendError(
                    f"could not stat {remote_path} on {target.name!r}: {exc}"
                ) from exc
            return None  # not reached

        return self.call(go, timeout=timeout, target=target, step=f"reading {remote_path}")

    def forward_local(self, target: SshTarget, remote_port: int) -> int:
        return self.call(
            lambda: self.aforward_local(target, remote_port),
            timeout=60,
            target=target,
            step=f"forwarding to port {remote_port}",
        )

    def home(self, target: SshTarget) -> str:
        return self.call(
            lambda: self.ahome(target), timeout=60, target=target, step="reading $HOME"
        )

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self.call(self.aclose, timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread:
                self._thread.join(5)
            self._loop = None


_default: SshPool | None = None
_default_guard = threading.Lock()


def default_pool() -> SshPool:
    """The process-wide pool (one connection per host per process)."""
    global _default
    with _default_guard:
        if _default is None:
            _default = SshPool()
        return _default


def q(s: str) -> str:
    """Quote for a POSIX remote shell."""
    return shlex.quote(s)
