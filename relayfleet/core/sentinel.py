"""Gateway sentinel keys: what a gateway-routed agent carries instead of a real credential.

A sentinel is `HMAC-SHA256(secret, label + agent)` shaped like an Anthropic API key
(`sk-ant-api03-<43 base64url chars>`), so Claude Code and the SDKs accept it unchanged. It reveals
nothing about the agent or the secret, is deterministic (restarts and remote hosts agree on it
without storing it), and only the gateway holding the secret can map it back to its agent.

The secret is the value of the env var named in `[gateway] secret_env` when set, else 32 random
bytes kept in `state/gateway/secret` (0600, created on first use).  It lives in `core` because
both the gateway (to recognise sentinels) and the runner (to hand one to its session) need it, and
they may not import each other.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from relayfleet.core.errors import CredentialError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.privdir import ensure_private_dir

PREFIX = "sk-ant-api03-"
# Domain separation: the secret may be reused elsewhere by an operator; these MACs stay distinct.
_LABEL = b"relayfleet/gateway/sentinel/v1\0"
_MIN_ENV_SECRET = 16

# What the runner reads when a backend computed the sentinel on the operator's machine (a remote
# runner has no secret). Neither is a credential: a sentinel only works at our own gateway.
ENV_SENTINEL = "RELAYFLEET_GATEWAY_SENTINEL"
ENV_GATEWAY_URL = "RELAYFLEET_GATEWAY_URL"


def sentinel_for(secret: bytes, agent: str) -> str:
    mac = hmac.new(secret, _LABEL + agent.encode(), hashlib.sha256).digest()
    return PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def agent_for(secret: bytes, sentinel: str, agents: Iterable[str]) -> str | None:
    """The agent whose sentinel this is, or None. Compares against every agent (no early exit)."""
    found: str | None = None
    given = sentinel.encode()
    for name in agents:
        if hmac.compare_digest(given, sentinel_for(secret, name).encode()) and found is None:
            found = name
    return found


def secret_path(state_dir: Path) -> Path:
    """`state/gateway/secret` under the fleet's state dir (`.fleet/state`)."""
    return Path(state_dir) / "gateway" / "secret"


def private_gateway_dir(path: Path) -> Path:
    """`state/gateway/` as a 0700 directory owned by us, whatever the caller's umask: the secret
    is 0600 on its own, but the directory also holds the gateway's log and stats, and whoever
    makes it first (`gateway start`, a runner, `login`, a tunnel) must not leave it open."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return ensure_private_dir(path)
    except PermissionError as exc:
        raise CredentialError(str(exc), hints=[f"remove {path}; it is made again"]) from None


def load_or_create_secret(
    paths: FleetPaths | Path, env: Mapping[str, str], secret_env: str
) -> bytes:
    """The gateway secret: `env[secret_env]` if set, else the 0600 state file (made on first use).

    `paths` is a `FleetPaths` or the fleet's state dir (`.fleet/state`).
    """
    if secret_env and env.get(secret_env):
        value = env[secret_env]
        if len(value) < _MIN_ENV_SECRET:
            raise CredentialError(
                f"${secret_env} is too short to be a gateway secret ({len(value)} chars)",
                hints=[
                    f"use at least {_MIN_ENV_SECRET} random characters, e.g. `openssl rand -hex 32`"
                ],
            )
        return value.encode()
    state_dir = paths.state if isinstance(paths, FleetPaths) else paths
    path = secret_path(Path(state_dir))
    private_gateway_dir(path.parent)
    if not path.exists():
        # Written aside, then hard-linked into place: link() fails if the file already exists,
        # so two processes starting at once never see a half-written or a different secret.
        tmp = path.with_name(f".secret.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(
            f"{path} is readable by other users (mode {stat.S_IMODE(st.st_mode):o})",
            hints=[f"chmod 600 {path}"],
        )
    value = path.read_text().strip()
    if not value:
        raise CredentialError(f"{path} is empty", hints=[f"delete {path}; a new one is made"])
    return value.encode()


def gateway_url(listen: str) -> str:
    """The URL a process on this machine uses to reach a gateway bound to `listen` (host:port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # bound to every interface: loopback is one of them
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
