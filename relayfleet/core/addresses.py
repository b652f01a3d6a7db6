"""Listen addresses as the config writes them: `host:port`, `[::1]:port` for IPv6."""

from __future__ import annotations

import ipaddress


def listen_ok(listen: str) -> bool:
    """`host:port` with a port in range."""
    host, sep, port = listen.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def is_loopback(host: str) -> bool:
    """Reachable from this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
