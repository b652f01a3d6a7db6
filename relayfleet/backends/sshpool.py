"""Pooled SSH connections: one authenticated asyncssh connection per host per process.

`status` for ten agents on one VM, the ssh inbox transport and the tunnel all share it. Host keys
are verified against known_hosts (the fleet's own `state/known_hosts`, then `~/.ssh/known_hosts`);
an unknown or changed key is a BackendError that says how to trust it, never accepted silently.

The CLI is synchronous, so the pool runs its own event loop in a daemon thread and `SshPool`
offers a small sync facade (`run`, `put`, `read`, …). Async callers use `connection()` directly.
"""

from __future__ import annotations

import asyncio
import os
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
    return BackendError(f"host {target.name!r} ({target.label}): {exc}")


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
        self, target: SshTarget, command: str, *, input: str | None = None, timeout: float = 60
    ) -> RunResult:
        import asyncssh

        for attempt in (1, 2):
            conn = await self.connection(target)
            self.commands += 1
            try:
                r = await conn.run(command, input=input, check=False, timeout=timeout)
            except asyncssh.ChannelOpenError as exc:
                # A connection that died under us (VM rebooted, NAT timeout): reopen once.
                self._conns.pop(target, None)
                if attempt == 2:
                    raise _translate(target, exc) from exc
                continue
            except (TimeoutError, OSError, asyncssh.Error) as exc:
                raise _translate(target, exc) from exc
            status = r.exit_status if r.exit_status is not None else 255
            return RunResult(status, str(r.stdout or ""), str(r.stderr or ""))
        raise AssertionError("unreachable")

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

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float | None = 120) -> T:
        """Run `fn()` on the pool's loop from synchronous code and wait for its result."""
        loop = self._ensure_loop()

        async def wrapper() -> T:
            return await fn()

        fut: Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), loop)
        return fut.result(timeout)

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._ensure_loop())

    def run(
        self, target: SshTarget, command: str, *, input: str | None = None, timeout: float = 60
    ) -> RunResult:
        return self.call(lambda: self.arun(target, command, input=input, timeout=timeout))

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
        r = self.run(target, command, input=input, timeout=timeout)
        if not r.ok:
            detail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise BackendError(
                f"{what or 'remote command'} failed on {target.name!r} "
                f"(exit {r.exit_status}): {' / '.join(detail)}"
            )
        return r.stdout

    def put(self, target: SshTarget, data: bytes, remote_path: str, mode: int = 0o644) -> None:
        """Write `data` to `remote_path` over SFTP (tmp + rename), creating parents."""

        async def go() -> None:
            import asyncssh

            conn = await self.connection(target)
            try:
                async with conn.start_sftp_client() as sftp:
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

        self.call(go)

    def put_tree(self, target: SshTarget, files: dict[str, bytes], remote_root: str) -> None:
        """Write many files (relative path -> bytes) under `remote_root` in one SFTP session."""

        async def go() -> None:
            import asyncssh

            conn = await self.connection(target)
            try:
                async with conn.start_sftp_client() as sftp:
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

        self.call(go, timeout=600)

    def read(self, target: SshTarget, remote_path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""

        async def go() -> bytes | None:
            import asyncssh

            conn = await self.connection(target)
            try:
                async with conn.start_sftp_client() as sftp:
                    try:
                        async with sftp.open(remote_path, "rb") as f:
                            data = await f.read()
                            # asyncssh's stubs type every read as str; "rb" gives bytes.
                            return data if isinstance(data, bytes) else data.encode()
                    except asyncssh.SFTPNoSuchFile:
                        return None
            except (OSError, asyncssh.Error) as exc:
                raise BackendError(
                    f"could not read {remote_path} on {target.name!r}: {exc}"
                ) from exc

        return self.call(go)

    def forward_local(self, target: SshTarget, remote_port: int) -> int:
        return self.call(lambda: self.aforward_local(target, remote_port))

    def home(self, target: SshTarget) -> str:
        return self.call(lambda: self.ahome(target))

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
