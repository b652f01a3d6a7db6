"""`gh fleet host check <name>` and `host trust <name>`: is a host ready to run runners?

ssh hosts: reachable with a verified host key, Python present, workdir writable, tmux present,
and which relayfleet version is installed there. docker hosts: the engine answers, its version,
whether the runner image is present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from relayfleet import __version__
from relayfleet.core.errors import BackendError, NotFound
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Fleet, Host

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Item:
    status: str  # ok | warn | fail
    name: str
    detail: str
    hints: tuple[str, ...] = ()


def _host(fleet: Fleet, name: str) -> Host:
    if name not in fleet.hosts:
        known = ", ".join(sorted(fleet.hosts)) or "none"
        raise NotFound(f"no host named {name!r} (hosts: {known})")
    return fleet.hosts[name]


def check_host(paths: FleetPaths, fleet: Fleet, name: str) -> list[Item]:
    host = _host(fleet, name)
    if host.backend == "docker":
        return _check_docker(host)
    return _check_ssh(paths, fleet, host)


def _check_ssh(paths: FleetPaths, fleet: Fleet, host: Host) -> list[Item]:
    from relayfleet.backends.remote_layout import RemoteLayout, absolute_base, fleet_identity
    from relayfleet.backends.ssh import package_files, tree_hash
    from relayfleet.backends.sshpool import SshTarget, default_pool, q

    pool = default_pool()
    try:
        target = SshTarget.from_host(host, paths.state)
        home = pool.home(target)
    except BackendError as exc:
        return [Item(FAIL, "reachable", exc.message, tuple(exc.hints))]
    items = [Item(OK, "reachable", f"{target.label}, host key verified")]
    if host.os == "windows":
        r = pool.run(target, "python --version || py -3 --version")
        items.append(Item(OK if r.ok else FAIL, "python", (r.stdout or r.stderr).strip()))
        items.append(Item(WARN, "runner", "Windows hosts cannot run runners yet (no tmux)"))
        return items
    r = pool.run(target, "python3 -c 'import sys; print(sys.version.split()[0])'")
    ver = r.stdout.strip()
    ok = r.ok and tuple(int(x) for x in ver.split(".")[:2]) >= (3, 11)
    items.append(
        Item(
            OK if ok else FAIL,
            "python",
            f"python3 {ver}" if r.ok else "python3 not found",
            () if ok else ("install Python 3.11 or newer on the host",),
        )
    )
    base = absolute_base(host.workdir, home)
    r = pool.run(target, f"mkdir -p {q(base)} && test -w {q(base)}")
    items.append(
        Item(OK if r.ok else FAIL, "workdir", f"{base} {'writable' if r.ok else 'not writable'}")
    )
    r = pool.run(target, "tmux -V")
    items.append(
        Item(
            OK if r.ok else FAIL,
            "tmux",
            r.stdout.strip() or "tmux not found",
            () if r.ok else ("install tmux on the host (runners live in tmux sessions)",),
        )
    )
    lay = RemoteLayout(base=base, fleet=fleet_identity(fleet.name, paths.root))
    raw = pool.read(target, lay.marker)
    if not raw:
        items.append(
            Item(
                WARN,
                "runner",
                f"relayfleet {__version__} not installed yet (`gh fleet start` installs it)",
            )
        )
    else:
        meta = json.loads(raw)
        same = meta.get("hash") == tree_hash(package_files())
        items.append(
            Item(
                OK if same else WARN,
                "runner",
                f"relayfleet {meta.get('version')} installed"
                + ("" if same else " (differs from this checkout; the next start re-syncs)"),
            )
        )
    return items


def _check_docker(host: Host) -> list[Item]:
    import docker

    from relayfleet.backends.docker import DEFAULT_IMAGE

    try:
        c = docker.DockerClient(base_url=host.host, timeout=15) if host.host else docker.from_env()
        info = c.version()
    except docker.errors.DockerException as exc:
        return [Item(FAIL, "engine", f"no docker engine at {host.host or 'default'}: {exc}")]
    items = [Item(OK, "engine", f"docker {info.get('Version')} (API {info.get('ApiVersion')})")]
    try:
        c.images.get(DEFAULT_IMAGE)
        items.append(Item(OK, "image", f"{DEFAULT_IMAGE} present"))
    except docker.errors.ImageNotFound:
        items.append(
            Item(
                WARN,
                "image",
                f"{DEFAULT_IMAGE} not built yet (start builds it, or agents name runtime.image)",
            )
        )
    return items


def trust_host(paths: FleetPaths, fleet: Fleet, name: str) -> tuple[str, str]:
    """Fetch the host's key and add it to the fleet's known_hosts; (line, fingerprint)."""
    import asyncssh

    from relayfleet.backends.sshpool import KNOWN_HOSTS_FILE, SshTarget, default_pool, scan_host_key
    from relayfleet.core.atomic import append_line

    host = _host(fleet, name)
    if host.backend != "ssh":
        raise BackendError(f"host {name!r} uses {host.backend}; only ssh hosts have host keys")
    target = SshTarget.from_host(host, paths.state)
    line = default_pool().call(lambda: scan_host_key(target))
    key = asyncssh.import_public_key(line.split(" ", 1)[1])
    append_line(paths.state / KNOWN_HOSTS_FILE, line)
    return line, key.get_fingerprint()
