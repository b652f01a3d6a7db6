"""Listen addresses as the config writes them: `host:port`, `[::1]:port` for IPv6."""

from __future__ import annotations

import ipaddress


def split_listen(listen: str) -> tuple[str, int] | None:
    """(host without IPv6 brackets, port) of `host:port`, port 0 included; None if malformed."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return host, int(port)


def listen_ok(listen: str) -> bool:
    """`host:port` with a port in range (not 0: a configured listener needs a real port)."""
    parts = split_listen(listen)
    return parts is not None and parts[1] > 0


def is_loopback(host: str) -> bool:
    """Reachable from this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
