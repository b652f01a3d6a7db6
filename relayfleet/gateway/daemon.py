"""The gateway process: serve until SIGTERM, with its pid, address and stats in the state dir.

state/gateway/secret        the sentinel secret (0600), unless `[gateway] secret_env` is set
state/gateway/gateway.pid   pid + start time (core.procs)
state/gateway/gateway.json  {"pid", "url", "listen", "started_at", "credential"} while running
state/gateway/stats.json    per-agent requests and tokens (gateway.stats)
state/gateway/gateway.log   one line per request: no prompt content, no credential
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from relayfleet.core.addresses import is_loopback, split_listen
from relayfleet.core.atomic import write_json_atomic
from relayfleet.core.errors import ConfigError
from relayfleet.core.procs import write_pidfile
from relayfleet.core.sentinel import gateway_url, private_gateway_dir
from relayfleet.gateway.credentials import CredentialSource
from relayfleet.gateway.proxy import Gateway, RouteProvider, serve
from relayfleet.gateway.stats import Stats

log = logging.getLogger("relayfleet.gateway")


def gateway_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "gateway"


def pid_path(state_dir: Path) -> Path:
    return gateway_dir(state_dir) / "gateway.pid"


def info_path(state_dir: Path) -> Path:
    return gateway_dir(state_dir) / "gateway.json"


def stats_path(state_dir: Path) -> Path:
    return gateway_dir(state_dir) / "stats.json"


def log_path(state_dir: Path) -> Path:
    return gateway_dir(state_dir) / "gateway.log"


def parse_listen(listen: str) -> tuple[str, int]:
    parts = split_listen(listen)
    if parts is None:
        raise ConfigError(f"[gateway] listen must be HOST:PORT, got {listen!r}")
    return parts


def run(state_dir: Path, listen: str, routes: RouteProvider, env: Mapping[str, str]) -> int:
    """Serve in the foreground until SIGTERM/SIGINT; 0 on a clean stop."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s", force=True
    )
    logging.Formatter.converter = time.gmtime
    asyncio.run(_serve_until_signal(Path(state_dir), listen, routes, env))
    return 0


async def _serve_until_signal(
    state_dir: Path, listen: str, routes: RouteProvider, env: Mapping[str, str]
) -> None:
    host, port = parse_listen(listen)
    if not is_loopback(host):
        log.warning(
            "listening on %s: reachable beyond this machine; the sentinel is the gate", host
        )
    private_gateway_dir(gateway_dir(state_dir))  # `gateway run` may be the first to make it
    credentials = CredentialSource(env)
    if credentials.kind == "none":
        log.warning("no credential yet: set ANTHROPIC_API_KEY or log in with `claude`")
    gw = Gateway(routes, credentials, Stats(stats_path(state_dir)))
    runner, bound = await serve(gw, host, port)
    url = gateway_url(f"{host}:{bound}") if ":" not in host else f"http://[{host}]:{bound}"
    write_pidfile(pid_path(state_dir))
    write_json_atomic(
        info_path(state_dir),
        {
            "pid": os.getpid(),
            "url": url,
            "listen": f"{host}:{bound}",
            "started_at": time.time(),
            "credential": credentials.kind,
            "routes": len(routes()),
        },
    )
    log.info("gateway listening on %s (credential: %s)", url, credentials.kind)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # closes connections, flushes stats
        for path in (info_path(state_dir), pid_path(state_dir)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        log.info("gateway stopped")
