"""Inbox transports (`runtime.inbox_transport`): how the router and `tell` reach an agent's inbox.

    file    the local inbox file (local agents; docker agents, whose own state dir is bind-mounted)
    shared  `<runtime.shared_path>/inbox.jsonl`: a directory both sides mount (NFS, SMB, a bind
            mount); it must exist, so an unmounted share is an error, not a silent local file
    ssh     append on the host over the pooled SSH connection, through one long-lived
            `core.inboxfile serve` worker per connection (`backends/inboxworker.py`) that takes
            the same flock and does the same idempotent append every other transport uses
    http    POST to the runner's loopback HTTP inbox (`runner/http_inbox.py`), reached directly
            (local, docker with host networking) or through an SSH local forward (ssh hosts)

Every transport is idempotent by event id and can `read` the inbox back (`gh fleet inbox`).
`transport_for()` wraps the chosen one in a `DeliveringTransport` with a durable local outbox
(`state/outbox/<agent>.jsonl`): an event that cannot land now waits there, in order, and is
retried with backoff until it lands (never dropped). `outbox_backlog()` is what `status` shows
as the agent's backlog.

This is the one inbox API: `tell`, `inbox`, the router, a runner's `handoff` and a plugin's
`emit` all go through it. A runner that does not run on the operator's machine cannot reach
every other agent's inbox from where it is: `transport_from()` gives it the agent's inbox file
when the target's inbox is on the same filesystem, and otherwise the sender's relay file
(`backends/relay.py`), which the router carries on to the target's own transport.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from relayfleet.core.atomic import (
    flocked,
    read_json,
    read_jsonl,
    repair_tail,
    write_atomic,
    write_json_atomic,
)
from relayfleet.core.errors import BackendError
from relayfleet.core.inboxfile import append_once, contains
from relayfleet.core.paths import FleetPaths
from relayfleet.core.privdir import ensure_private_dir
from relayfleet.fleet.model import Agent, Fleet

if TYPE_CHECKING:
    from relayfleet.backends.remote_layout import RemoteLayout
    from relayfleet.backends.sshpool import SshPool


class InboxTransport(Protocol):
    """Same shape as `router.transport.InboxTransport` (backends may not import router)."""

    def append(self, agent: str, event: dict[str, Any]) -> Any: ...

    def has(self, agent: str, event_id: str) -> bool: ...


def parse_jsonl(raw: bytes) -> list[dict[str, Any]]:
    """Every complete, parseable line of an inbox file's bytes (a torn tail never landed)."""
    out: list[dict[str, Any]] = []
    for line in raw[: raw.rfind(b"\n") + 1].split(b"\n"):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out


ENDPOINT_FILE = "http-inbox.json"  # written by runner/http_inbox.py in the agent's state dir
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0


@dataclass
class _Scan:
    size: int = 0
    inode: int = 0
    ids: set[str] = field(default_factory=set)


class FileInbox:
    """The agent's inbox on this machine (`state/agents/<name>/inbox.jsonl`).

    Under the inbox flock it reads whatever was appended since its last look (the whole file
    once per instance), so "is this id already there?" is exact whoever else appends, and a
    long-lived user (the router) never re-reads a large inbox per event.
    """

    def __init__(self, paths: FleetPaths) -> None:
        self.paths = paths
        self._scans: dict[str, _Scan] = {}

    def _refresh(self, agent: str, path: Path) -> _Scan:
        scan = self._scans.setdefault(agent, _Scan())
        try:
            st = path.stat()
        except FileNotFoundError:
            self._scans[agent] = _Scan()
            return self._scans[agent]
        if st.st_ino != scan.inode or st.st_size < scan.size:
            scan = self._scans[agent] = _Scan(inode=st.st_ino)  # rotated or truncated
        if st.st_size > scan.size:
            with open(path, "rb") as f:
                f.seek(scan.size)
                chunk = f.read(st.st_size - scan.size)
            # Only complete lines count; a torn tail is re-read next time (after repair).
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].split(b"\n"):
                if b'"id"' not in line:
                    continue
                try:
                    got = json.loads(line).get("id")
                except (ValueError, AttributeError):
                    continue
                if isinstance(got, str):
                    scan.ids.add(got)
            scan.size += end
        return scan

    def has(self, agent: str, event_id: str) -> bool:
        path = self.paths.inbox(agent)
        if not path.exists():
            return False
        with flocked(path):
            return event_id in self._refresh(agent, path).ids

    def append(self, agent: str, event: dict[str, Any]) -> None:
        path = self.paths.inbox(agent)
        # 0700: the agent's state dir holds session text (made here when the first event
        # arrives before its runner ever ran).
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = (json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        with flocked(path) as fd:
            repair_tail(fd, path)
            scan = self._refresh(agent, path)
            if event["id"] in scan.ids:
                return
            os.write(fd, line)
            os.fsync(fd)
            # The size we scanned up to moves past our own line: no need to re-read it.
            if os.fstat(fd).st_size == scan.size + len(line):
                scan.size += len(line)
                scan.ids.add(event["id"])

    def read(self, agent: str) -> list[dict[str, Any]]:
        return read_jsonl(self.paths.inbox(agent))


class SharedInbox:
    """`<dir>/inbox.jsonl` where `dir` is the agent's state dir as mounted on our side."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory).expanduser()

    def _inbox(self, agent: str) -> Path:
        if not self.dir.is_dir():
            raise BackendError(
                f"agent {agent!r}: shared inbox dir {self.dir} is not there (share not mounted?)"
            )
        return self.dir / "inbox.jsonl"

    def append(self, agent: str, event: dict[str, Any]) -> None:
        append_once(self._inbox(agent), event, create_parent=False)

    def has(self, agent: str, event_id: str) -> bool:
        return contains(self._inbox(agent), event_id)

    def read(self, agent: str) -> list[dict[str, Any]]:
        return read_jsonl(self._inbox(agent))


class SshInbox:
    """Append on an ssh host through its long-lived inbox worker (`backends/inboxworker.py`).

    `persistent=False` is the old way, one exec per call
    (`<venv python> -m relayfleet.core.inboxfile append <inbox>`), kept for the benchmark's
    side-by-side figure.
    """

    def __init__(
        self,
        fleet: Fleet,
        host_name: str,
        state_dir: Path,
        *,
        pool: SshPool | None = None,
        persistent: bool = True,
    ) -> None:
        from relayfleet.backends.remote_layout import fleet_identity
        from relayfleet.backends.sshpool import SshTarget, default_pool

        self.host = fleet.hosts[host_name]
        self.fleet_name = fleet.name
        # state_dir is `<root>/.fleet/state`: the fleet's identity on the host comes from root.
        self.fleet_id = fleet_identity(fleet.name, Path(state_dir).parent.parent)
        self.pool = pool or default_pool()
        self.target = SshTarget.from_host(self.host, state_dir)
        self.persistent = persistent

    def _layout(self) -> RemoteLayout:
        from relayfleet.backends.remote_layout import RemoteLayout, absolute_base

        base = self.host.workdir
        if not base.startswith("/"):
            base = absolute_base(base, self.pool.home(self.target))
        return RemoteLayout(base=base, fleet=self.fleet_id)

    def _ask(self, req: dict[str, Any]) -> dict[str, Any]:
        from relayfleet.backends.inboxworker import REQUEST_TIMEOUT, START_TIMEOUT, workers_for

        workers = workers_for(self.pool)
        python = self._layout().python
        return self.pool.call(
            lambda: workers.request(self.target, python, req),
            timeout=2 * (START_TIMEOUT + REQUEST_TIMEOUT) + 10,
            target=self.target,
            step=f"inbox {req.get('op')}",
        )

    def worker_pid(self) -> int | None:
        """The host pid of this host's inbox worker (None before the first append)."""
        from relayfleet.backends.inboxworker import workers_for

        return workers_for(self.pool).pid(self.target, self._layout().python)

    def append(self, agent: str, event: dict[str, Any]) -> None:
        from relayfleet.backends.sshpool import q

        lay = self._layout()
        if self.persistent:
            self._ask({"op": "append", "path": lay.inbox(agent), "event": event})
            return
        cmd = f"{q(lay.python)} -m relayfleet.core.inboxfile append {q(lay.inbox(agent))}"
        self.pool.check(self.target, cmd, input=json.dumps(event), what="inbox append")

    def has(self, agent: str, event_id: str) -> bool:
        from relayfleet.backends.sshpool import q

        lay = self._layout()
        if self.persistent:
            return bool(self._ask({"op": "has", "path": lay.inbox(agent), "id": event_id})["has"])
        cmd = (
            f"{q(lay.python)} -m relayfleet.core.inboxfile has {q(lay.inbox(agent))} {q(event_id)}"
        )
        r = self.pool.run(self.target, cmd, step="inbox check")
        if r.exit_status not in (0, 1):
            raise BackendError(f"inbox check failed on {self.host.name!r}: {r.stderr.strip()}")
        return r.exit_status == 0

    def read(self, agent: str) -> list[dict[str, Any]]:
        """The inbox on the host, read over SFTP (no shell, no worker)."""
        return parse_jsonl(self.pool.read(self.target, self._layout().inbox(agent)) or b"")


Endpoint = tuple[str, str]  # (base url, bearer token)


class HttpInbox:
    """POST to the runner's HTTP inbox; `endpoint()` says where it is now (it moves on restart)."""

    def __init__(
        self,
        endpoint: Callable[[str], Endpoint],
        timeout: float = 10.0,
        reader: Callable[[str], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.reader = reader  # the inbox file where the runner is (the runner serves no list)

    def _request(self, agent: str, method: str, path: str, body: bytes | None = None) -> int:
        import httpx

        url, token = self.endpoint(agent)
        try:
            r = httpx.request(
                method,
                url + path,
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise BackendError(f"agent {agent!r}: HTTP inbox unreachable: {exc}") from exc
        if r.status_code not in (200, 404):
            raise BackendError(f"agent {agent!r}: HTTP inbox answered {r.status_code}")
        return r.status_code

    def append(self, agent: str, event: dict[str, Any]) -> None:
        if self._request(agent, "POST", "/inbox", json.dumps(event).encode()) != 200:
            raise BackendError(f"agent {agent!r}: HTTP inbox refused the event")

    def has(self, agent: str, event_id: str) -> bool:
        from urllib.parse import quote

        return self._request(agent, "GET", f"/inbox/{quote(event_id, safe='')}") == 200

    def read(self, agent: str) -> list[dict[str, Any]]:
        if self.reader is None:
            raise BackendError(f"agent {agent!r}: its HTTP inbox cannot be read back")
        return self.reader(agent)


def local_http_endpoint(paths: FleetPaths) -> Callable[[str], Endpoint]:
    """The endpoint file in the (local or bind-mounted) state dir."""

    def endpoint(agent: str) -> Endpoint:
        info = read_json(paths.agent_state(agent) / ENDPOINT_FILE)
        if not info:
            raise BackendError(f"agent {agent!r}: its runner serves no HTTP inbox (not running?)")
        return f"http://127.0.0.1:{int(info['port'])}", str(info["token"])

    return endpoint


def ssh_http_endpoint(inbox: SshInbox) -> Callable[[str], Endpoint]:
    """Read the endpoint file over SFTP and reach its port through an SSH local forward."""

    def endpoint(agent: str) -> Endpoint:
        raw = inbox.pool.read(inbox.target, f"{inbox._layout().agent_state(agent)}/{ENDPOINT_FILE}")
        if not raw:
            raise BackendError(f"agent {agent!r}: its runner serves no HTTP inbox (not running?)")
        info = json.loads(raw)
        port = inbox.pool.forward_local(inbox.target, int(info["port"]))
        return f"http://127.0.0.1:{port}", str(info["token"])

    return endpoint


# -- the outbox ---------------------------------------------------------------------------------


RELAY_FILE = "relay-out.jsonl"


def relay_path(paths: FleetPaths, sender: str) -> Path:
    return paths.agent_state(sender) / RELAY_FILE


class RelayOut:
    """The sender runner's side: hand-offs it cannot deliver itself, for the router to carry."""

    def __init__(self, paths: FleetPaths, sender: str) -> None:
        self.path = relay_path(paths, sender)

    def append(self, agent: str, event: dict[str, Any]) -> bool:
        append_once(self.path, {"id": event["id"], "to": agent, "event": event})
        return False  # accepted, not landed yet: the router carries it on

    def has(self, agent: str, event_id: str) -> bool:
        return contains(self.path, event_id)


def outbox_path(paths: FleetPaths, agent: str) -> Path:
    return paths.state / "outbox" / f"{agent}.jsonl"


def outbox_backlog(paths: FleetPaths, agent: str) -> int:
    """How many events wait for `agent` in the local outbox (0 when all landed)."""
    return len(read_jsonl(outbox_path(paths, agent)))


class Outbox:
    """Events not yet landed, oldest first, plus the retry schedule (`<agent>.retry.json`)."""

    def __init__(self, paths: FleetPaths, agent: str) -> None:
        self.path = outbox_path(paths, agent)
        self.retry_path = self.path.with_suffix(".retry.json")
        self.lock_path = self.path.with_suffix(".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        # 0700 like an inbox's directory: the events waiting here are the same session text.
        self.path.parent.parent.mkdir(parents=True, exist_ok=True)
        ensure_private_dir(self.path.parent)
        with flocked(self.lock_path):
            yield

    def pending(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)

    def save(self, events: list[dict[str, Any]]) -> None:
        if not events:
            for p in (self.path, self.retry_path):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            return
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        write_atomic(self.path, text, mode=0o600)

    def due(self, now: float) -> bool:
        info = read_json(self.retry_path, {}) or {}
        return now >= float(info.get("next_at", 0))

    def failed(self, now: float, error: str) -> None:
        info = read_json(self.retry_path, {}) or {}
        attempts = int(info.get("attempts", 0)) + 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempts - 1))
        delay *= random.uniform(0.8, 1.2)  # jitter: many agents on one dead host don't align
        write_json_atomic(
            self.retry_path,
            {"attempts": attempts, "next_at": now + delay, "last_error": error[:300]},
            mode=0o600,
        )

    def last_error(self) -> str:
        return str((read_json(self.retry_path, {}) or {}).get("last_error", ""))


RETRYABLE = (BackendError, OSError)


class DeliveringTransport:
    """An InboxTransport that never drops: deliver now, else queue in the outbox and retry."""

    def __init__(
        self, inner: InboxTransport, paths: FleetPaths, clock: Callable[[], float] = time.time
    ) -> None:
        self.inner = inner
        self.paths = paths
        self.clock = clock

    def append(self, agent: str, event: dict[str, Any]) -> bool:
        """True when the event landed; False when it waits in the outbox (it will land later)."""
        box = Outbox(self.paths, agent)
        with box.locked():
            pending = box.pending()
            if not pending:
                try:
                    self.inner.append(agent, event)
                    return True
                except RETRYABLE as exc:
                    box.save([event])
                    box.failed(self.clock(), str(exc))
                    return False
            if all(e.get("id") != event.get("id") for e in pending):
                pending.append(event)  # behind the older ones: order is kept
                box.save(pending)
            self._flush_locked(agent, box, force=False)
            return not any(e.get("id") == event.get("id") for e in box.pending())

    def has(self, agent: str, event_id: str) -> bool:
        if any(e.get("id") == event_id for e in Outbox(self.paths, agent).pending()):
            return True  # accepted: it waits in the outbox and will land
        return self.inner.has(agent, event_id)

    def read(self, agent: str) -> list[dict[str, Any]]:
        """What landed in the agent's inbox, oldest first (not what still waits here)."""
        reader = getattr(self.inner, "read", None)
        if reader is None:
            raise BackendError(f"agent {agent!r}: its inbox transport cannot be read back")
        events: list[dict[str, Any]] = reader(agent)
        return events

    def flush(self, agent: str, *, force: bool = False) -> int:
        """Try to land what waits (backoff is respected unless `force`); how many remain."""
        box = Outbox(self.paths, agent)
        if not box.path.exists():
            return 0
        with box.locked():
            return self._flush_locked(agent, box, force=force)

    def _flush_locked(self, agent: str, box: Outbox, *, force: bool) -> int:
        pending = box.pending()
        if not pending or not (force or box.due(self.clock())):
            return len(pending)
        while pending:
            try:
                self.inner.append(agent, pending[0])
            except RETRYABLE as exc:
                box.save(pending)
                box.failed(self.clock(), str(exc))
                return len(pending)
            pending.pop(0)
            box.save(pending)  # after each landing: a crash re-sends at most one (idempotent)
        return 0


def inner_transport(paths: FleetPaths, fleet: Fleet, agent: Agent) -> InboxTransport:
    """The bare transport the agent's `runtime.inbox_transport` names."""
    rt = agent.runtime
    kind = rt.inbox_transport or "file"
    if kind == "file":
        if rt.backend == "ssh":
            raise BackendError(
                f"agent {agent.name!r} runs on ssh host {rt.host!r}; its inbox is remote",
                hints=[
                    f'set inbox_transport = "ssh" under [runtime] in '
                    f".fleet/agents/{agent.name}/agent.toml"
                ],
            )
        return FileInbox(paths)
    if kind == "shared":
        return SharedInbox(
            Path(rt.shared_path) if rt.shared_path else paths.agent_state(agent.name)
        )
    if kind in ("ssh", "http") and rt.backend == "ssh":
        if rt.host not in fleet.hosts:
            raise BackendError(f"agent {agent.name!r}: no host named {rt.host!r} in fleet.toml")
        ssh = SshInbox(fleet, rt.host, paths.state)
        return ssh if kind == "ssh" else HttpInbox(ssh_http_endpoint(ssh), reader=ssh.read)
    if kind == "http":
        return HttpInbox(local_http_endpoint(paths), reader=FileInbox(paths).read)
    if kind == "ssh":
        raise BackendError(
            f"agent {agent.name!r}: inbox_transport 'ssh' needs the ssh backend "
            f"(it runs on {rt.backend!r})"
        )
    raise BackendError(f"agent {agent.name!r}: unknown inbox_transport {kind!r}")


def transport_for(paths: FleetPaths, fleet: Fleet, agent: Agent | str) -> DeliveringTransport:
    """The transport the router and `tell` use for `agent`: its own kind, behind the outbox."""
    a = fleet.agent(agent) if isinstance(agent, str) else agent
    return DeliveringTransport(inner_transport(paths, fleet, a), paths)


def drain_outboxes(paths: FleetPaths, fleet: Fleet, *, force: bool = False) -> dict[str, int]:
    """Retry every agent's outbox (the router calls this each cycle); agent -> events left."""
    out: dict[str, int] = {}
    box_dir = paths.state / "outbox"
    if not box_dir.is_dir():
        return out
    for f in sorted(box_dir.glob("*.jsonl")):
        name = f.stem
        if name not in fleet.agents:
            continue
        try:
            out[name] = transport_for(paths, fleet, name).flush(name, force=force)
        except BackendError:
            out[name] = outbox_backlog(paths, name)
    return out


def runs_here(agent: Agent) -> bool:
    """The agent's runner runs on the operator's machine (its backend is local)."""
    return (agent.runtime.backend or "local") == "local"


def transport_from(
    paths: FleetPaths, fleet: Fleet, sender: Agent | str, target: Agent | str
) -> InboxTransport:
    """How the runner of `sender` (wherever it runs, with `paths` rooted there) reaches
    `target`'s inbox: a hand-off, or a plugin's `emit` (sender == target).

    - its own inbox: the file next to it (where the runner tails it);
    - from the operator's machine: the target's own transport, behind the outbox;
    - from a docker container: the relay (only the agent's own state dir is mounted there);
    - from an ssh host: the inbox file for an agent of the same fleet on the same host,
      else the relay (the router carries it on; the host may not reach the others).
    """
    s = fleet.agent(sender) if isinstance(sender, str) else sender
    t = fleet.agent(target) if isinstance(target, str) else target
    if s.name == t.name:
        return FileInbox(paths)
    if runs_here(s):
        return transport_for(paths, fleet, t)
    if (
        s.runtime.backend == "ssh"
        and t.runtime.backend == "ssh"
        and t.runtime.host == s.runtime.host
        and (t.runtime.inbox_transport or "file") in ("ssh", "http", "file")
    ):
        return FileInbox(paths)
    return RelayOut(paths, s.name)
