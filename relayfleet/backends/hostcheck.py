"""`gh fleet host check <name>` and `host trust <name>`: is a host ready to run runners?

ssh hosts, each its own item (a failure never hides the next one): reachable, key trusted,
Python >= 3.11, SFTP, tmux, workdir writable, and which relayfleet version is installed there.
docker hosts: the engine answers, its version,
whether the runner image is present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


SSH_ITEMS = ("reachable", "key trusted", "python", "sftp", "tmux", "workdir", "runner")


def _check_ssh(paths: FleetPaths, fleet: Fleet, host: Host) -> list[Item]:
    """One item per thing a runner needs, each checked on its own: a failure is reported and
    the next item is still checked (those that need a session say why they could not be)."""
    import socket

    from relayfleet.backends.remote_layout import RemoteLayout, absolute_base, fleet_identity
    from relayfleet.backends.sshpool import SshTarget, default_pool, q

    pool = default_pool()
    items: list[Item] = []
    try:
        target = SshTarget.from_host(host, paths.state)
    except BackendError as exc:
        return [Item(FAIL, n, exc.message, tuple(exc.hints)) for n in SSH_ITEMS]
    try:
        socket.create_connection((target.addr, target.port), timeout=10).close()
        items.append(Item(OK, "reachable", f"{target.label} answers"))
    except OSError as exc:
        items.append(
            Item(
                FAIL,
                "reachable",
                f"{target.label}: {exc.strerror or exc}",
                (f"check host/port of {host.name!r} in fleet.toml and that sshd runs there",),
            )
        )
    home = ""
    try:
        home = pool.home(target)
        items.append(Item(OK, "key trusted", "host key verified, logged in"))
    except BackendError as exc:
        items.append(Item(FAIL, "key trusted", exc.message, tuple(exc.hints)))
    if not home:
        why = "not checked: no SSH session (fix the items above first)"
        return items + [Item(FAIL, n, why) for n in SSH_ITEMS[len(items) :]]

    def probe(name: str, fn: Callable[[], Item]) -> None:
        try:
            items.append(fn())
        except BackendError as exc:
            items.append(Item(FAIL, name, exc.message, tuple(exc.hints)))

    if host.os == "windows":
        r = pool.run(target, "python --version || py -3 --version")
        items.append(Item(OK if r.ok else FAIL, "python", (r.stdout or r.stderr).strip()))
        items.append(Item(WARN, "runner", "Windows hosts cannot run runners yet (no tmux)"))
        return items

    def python() -> Item:
        r = pool.run(target, "python3 -c 'import sys; print(sys.version.split()[0])'")
        ver = r.stdout.strip()
        try:
            ok = r.ok and tuple(int(x) for x in ver.split(".")[:2]) >= (3, 11)
        except ValueError:
            ok = False
        return Item(
            OK if ok else FAIL,
            "python",
            f"python3 {ver} (3.11 or newer needed)" if r.ok else "python3 not found",
            () if ok else ("install Python 3.11 or newer on the host, as `python3` on its PATH",),
        )

    sftp_ok = False

    def sftp() -> Item:
        nonlocal sftp_ok
        pool.size(target, home, timeout=30)
        sftp_ok = True
        return Item(OK, "sftp", "SFTP subsystem answers")

    def tmux() -> Item:
        r = pool.run(target, "tmux -V")
        return Item(
            OK if r.ok else FAIL,
            "tmux",
            r.stdout.strip() or "tmux not found",
            () if r.ok else ("install tmux on the host (runners live in tmux sessions)",),
        )

    base = absolute_base(host.workdir, home)

    def workdir() -> Item:
        r = pool.run(target, f"mkdir -p {q(base)} && test -w {q(base)}")
        return Item(
            OK if r.ok else FAIL,
            "workdir",
            f"{base} {'writable' if r.ok else 'not writable'}",
            ()
            if r.ok
            else (f"make {base} writable for {target.user or 'the ssh user'}, or set workdir",),
        )

    lay = RemoteLayout(base=base, fleet=fleet_identity(fleet.name, paths.root))

    def runner() -> Item:
        if not sftp_ok:
            return Item(FAIL, "runner", "not checked: it is read over SFTP")
        raw = pool.read(target, lay.marker)
        if not raw:
            return Item(
                WARN,
                "runner",
                f"relayfleet {__version__} not installed yet for this fleet",
                ("`gh fleet start <agent>` installs it",),
            )
        meta = json.loads(raw)
        same = meta.get("hash") == tree_hash(package_files())
        return Item(
            OK if same else WARN,
            "runner",
            f"relayfleet {meta.get('version')} installed"
            + ("" if same else " (differs from this checkout)"),
            () if same else ("the next `gh fleet start` re-syncs it",),
        )

    from relayfleet.backends.ssh import package_files, tree_hash

    for name, fn in (
        ("python", python),
        ("sftp", sftp),
        ("tmux", tmux),
        ("workdir", workdir),
        ("runner", runner),
    ):
        probe(name, fn)
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
