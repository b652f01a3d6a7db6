"""Reverse SSH tunnels: processes on an ssh host reach the operator's gateway at localhost.

`open_tunnel()` starts a detached `python -m relayfleet.backends.tunnel <root> <host> <port>…`
that keeps one SSH connection with a remote forward `127.0.0.1:<port>` (on the host) ->
`127.0.0.1:<port>` (here) for each port (the gateway's listen port by default), and reconnects
with backoff (1 s doubling to 60 s) whenever the connection drops. State lives in
`state/tunnels/<host>.{pid,json,log}`; `.json` says whether it is connected right now.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.errors import BackendError, NotFound
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import live_pid, python_argv, spawn_detached, stop_group, write_pidfile
from relayfleet.fleet.model import Fleet

BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0


def tunnel_dir(paths: FleetPaths) -> Path:
    return paths.state / "tunnels"


def pidfile(paths: FleetPaths, host: str) -> Path:
    return tunnel_dir(paths) / f"{host}.pid"


def statefile(paths: FleetPaths, host: str) -> Path:
    return tunnel_dir(paths) / f"{host}.json"


def default_ports(fleet: Fleet) -> list[str]:
    port = fleet.gateway.listen.rpartition(":")[2]
    return [port] if port.isdigit() else []


def parse_port(spec: str) -> tuple[int, int]:
    """ "P" forwards host port P to local port P; "R:L" forwards host port R to local port L."""
    remote, _, local = str(spec).partition(":")
    try:
        return int(remote), int(local or remote)
    except ValueError:
        raise BackendError(f"bad tunnel port {spec!r} (use P or REMOTE:LOCAL)") from None


def targetfile(paths: FleetPaths, host: str) -> Path:
    return tunnel_dir(paths) / f"{host}.target.json"


def tunnel_status(paths: FleetPaths, host: str) -> dict[str, Any]:
    rec = live_pid(pidfile(paths, host))
    st = read_json(statefile(paths, host), {}) or {}
    return {
        "host": host,
        "running": rec is not None,
        "pid": rec.pid if rec else None,
        "connected": bool(rec and st.get("connected")),
        "ports": st.get("ports", []),
        "since": st.get("since"),
        "reconnects": st.get("reconnects", 0),
        "last_error": st.get("last_error", ""),
    }


def open_tunnel(
    paths: FleetPaths,
    fleet: Fleet,
    host: str,
    ports: list[str] | None = None,
    *,
    wait: float = 20.0,
) -> dict[str, Any]:
    """Start the tunnel process for `host` (no-op when it runs) and wait until it is connected."""
    h = fleet.hosts.get(host)
    if h is None:
        raise NotFound(f"no host named {host!r}", hints=["gh fleet host list"])
    if h.backend != "ssh":
        raise BackendError(f"host {host!r} uses the {h.backend} backend; tunnels need ssh")
    if live_pid(pidfile(paths, host)) is None:
        ports = [str(p) for p in ports or default_ports(fleet)]
        for p in ports:
            parse_port(p)
        if not ports:
            raise BackendError("nothing to forward: no gateway listen port and no --port given")
        tunnel_dir(paths).mkdir(parents=True, exist_ok=True)
        from dataclasses import asdict

        from relayfleet.backends.sshpool import SshTarget

        # The process gets its target from a file (backends do not load .fleet/ themselves).
        write_json_atomic(targetfile(paths, host), asdict(SshTarget.from_host(h, paths.state)))
        with contextlib.suppress(FileNotFoundError):
            statefile(paths, host).unlink()
        argv = python_argv("-m", "relayfleet.backends.tunnel", str(paths.root), host, *ports)
        pid = spawn_detached(argv, log=tunnel_dir(paths) / f"{host}.log", cwd=paths.root)
        write_pidfile(pidfile(paths, host), pid)
    deadline = time.monotonic() + wait
    while True:
        st = tunnel_status(paths, host)
        if st["connected"] or not st["running"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not st["running"]:
        raise BackendError(
            f"the tunnel to {host!r} exited: {st['last_error'] or 'see state/tunnels/*.log'}"
        )
    if not st["connected"]:
        raise BackendError(
            f"the tunnel to {host!r} is not connected yet (it keeps retrying): {st['last_error']}"
        )
    return st


def ensure_tunnel(
    paths: FleetPaths, fleet: Fleet, host: str, ports: list[str] | None = None
) -> dict[str, Any]:
    """The tunnel to `host`, running and carrying every port in `ports` (default: the gateway's).

    A tunnel that runs with other ports is restarted with the union, so opening it for one
    agent never cuts what another agent (or `tunnel open --port`) relies on.
    """
    want = [str(p) for p in ports or default_ports(fleet)]
    st = tunnel_status(paths, host)
    if st["running"]:
        have = [str(p) for p in st["ports"]]
        missing = [p for p in want if p not in have]
        if not missing:
            return open_tunnel(paths, fleet, host)  # waits until it is connected
        close_tunnel(paths, host)
        want = have + missing
    return open_tunnel(paths, fleet, host, want)


# -- the gateway, as seen from an agent's box --------------------------------------------------

REMOTE_PORT_ENV = "FLEET_GATEWAY_REMOTE_PORT"  # host-side port of the gateway tunnel


def local_gateway_port(paths: FleetPaths, fleet: Fleet) -> int:
    """The port the operator's gateway listens on: the running one's, else `[gateway] listen`."""
    running = read_json(paths.state / "gateway" / "gateway.json", None)
    url = running.get("url", "") if isinstance(running, dict) else ""
    port = str(url).rstrip("/").rpartition(":")[2] or fleet.gateway.listen.rpartition(":")[2]
    if not port.isdigit():
        raise BackendError(f"[gateway] listen {fleet.gateway.listen!r} has no port")
    return int(port)


def gateway_sentinel(paths: FleetPaths, fleet: Fleet, agent: str) -> str:
    """The agent's sentinel, computed here from the gateway secret (which never leaves)."""
    import os

    from relayfleet.core.sentinel import load_or_create_secret, sentinel_for

    secret = load_or_create_secret(paths, os.environ, fleet.gateway.secret_env)
    return sentinel_for(secret, agent)


def remote_gateway_env(paths: FleetPaths, fleet: Fleet, agent: str, host: str) -> dict[str, str]:
    """What a runner on ssh `host` needs to reach the gateway: its sentinel and the URL of the
    tunnel's end on the host. Opens (or widens) the reverse tunnel first.

    The host-side port is the gateway's own port unless `FLEET_GATEWAY_REMOTE_PORT` says
    otherwise (needed when that port is taken on the host, e.g. a host that is this machine).
    """
    import os

    from relayfleet.core.sentinel import ENV_GATEWAY_URL, ENV_SENTINEL

    local = local_gateway_port(paths, fleet)
    remote = int(os.environ.get(REMOTE_PORT_ENV) or local)
    ensure_tunnel(paths, fleet, host, [f"{remote}:{local}" if remote != local else str(local)])
    return {
        ENV_SENTINEL: gateway_sentinel(paths, fleet, agent),
        ENV_GATEWAY_URL: f"http://127.0.0.1:{remote}",
    }


def local_gateway_env(paths: FleetPaths, fleet: Fleet, agent: str) -> dict[str, str]:
    """The same for a box that shares this machine's network (docker with host networking)."""
    from relayfleet.core.sentinel import ENV_GATEWAY_URL, ENV_SENTINEL

    return {
        ENV_SENTINEL: gateway_sentinel(paths, fleet, agent),
        ENV_GATEWAY_URL: f"http://127.0.0.1:{local_gateway_port(paths, fleet)}",
    }


def close_tunnel(paths: FleetPaths, host: str) -> bool:
    rec = live_pid(pidfile(paths, host))
    if rec is None:
        return False
    stop_group(rec, grace=5)
    return True


async def serve(paths: FleetPaths, host: str, ports: list[str]) -> None:
    """Hold the forwards open; reconnect with backoff. Ends on SIGTERM/SIGINT."""
    from relayfleet.backends.sshpool import SshPool, SshTarget

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    state: dict[str, Any] = {"ports": ports, "connected": False, "reconnects": 0}
    backoff = BACKOFF_MIN

    def save(**kw: Any) -> None:
        state.update(kw)
        write_json_atomic(statefile(paths, host), state)

    while not stop.is_set():
        pool = SshPool(connect_timeout=10)
        try:
            raw = read_json(targetfile(paths, host), {})
            target = SshTarget(**{**raw, "known_hosts": tuple(raw.get("known_hosts", ()))})
            conn = await pool.connection(target)
            for p in ports:
                remote, local = parse_port(p)
                await conn.forward_remote_port("127.0.0.1", remote, "127.0.0.1", local)
            save(connected=True, since=time.time(), last_error="")
            backoff = BACKOFF_MIN
            closed = asyncio.ensure_future(conn.wait_closed())
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({closed, halt}, return_when=asyncio.FIRST_COMPLETED)
            halt.cancel()
            if not stop.is_set():
                save(connected=False, last_error="connection lost")
        except Exception as exc:  # any failure: record it and retry (this process's job)
            save(connected=False, last_error=str(exc)[:300])
        finally:
            with contextlib.suppress(Exception):
                await pool.aclose()
        if stop.is_set():
            break
        state["reconnects"] += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(BACKOFF_MAX, backoff * 2)
    save(connected=False)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m relayfleet.backends.tunnel <root> <host> <port>…", file=sys.stderr)
        return 2
    paths = FleetPaths(Path(argv[0]).resolve())
    asyncio.run(serve(paths, argv[1], argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
