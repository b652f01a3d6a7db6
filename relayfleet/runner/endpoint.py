"""The model endpoint of an agent's session, and the whole environment the session starts with.

`endpoint_env(spec, base_env)` returns the COMPLETE environment for the session (every engine's):
an allowlist of the runner's environment (`session_base_env`: PATH, HOME, USER, LOGNAME, SHELL,
LANG, LC_*, TERM, TZ, TMPDIR, the XDG dirs, and the proxy/CA variables needed to reach an
endpoint at all), the agent's declared credentials (`spec.env`), and its `[claude.endpoint]`
(ARCHITECTURE 3.3). No other variable of the operator's reaches a session: an undeclared
`OPENAI_API_KEY` or a cloud key stays with the operator.

- `default`: Anthropic directly (`ANTHROPIC_BASE_URL` removed), with the machine's own Claude
  settings (`ANTHROPIC_*`, `CLAUDE_CODE_*`, `CLAUDE_CONFIG_DIR`; the AWS_/Google variables only
  when the machine uses Bedrock/Vertex). With `isolate_config` the session
  gets its own `CLAUDE_CONFIG_DIR` (`state/agents/<name>/claude-config`, `.claude.json` seeded:
  onboarding done, workdir trusted). With `inherit_auth` it reuses the machine's login through
  `CLAUDE_SECURESTORAGE_CONFIG_DIR` (the credential store stays `~/.claude`: nothing is copied or
  symlinked, so refreshes are shared); without it the agent uses its own login, made by
  `gh fleet login <agent>` inside that config dir, and the machine's env credentials are removed.
- `custom`: `ANTHROPIC_BASE_URL=<url>`. The machine's login is never handed to a custom URL; the
  agent has only the credentials it declares (else a placeholder key a local server accepts).
- `gateway`, or `custom` with `via_gateway`: `ANTHROPIC_BASE_URL=<gateway>` and
  `ANTHROPIC_API_KEY=<sentinel>`, and no other credential at all.

In every mode the gateway secret itself is removed: a session holding it could mint other agents'
sentinels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_atomic
from relayfleet.core.errors import ConfigError
from relayfleet.core.sentinel import (
    ENV_GATEWAY_URL,
    ENV_SENTINEL,
    gateway_url,
    load_or_create_secret,
    sentinel_for,
)
from relayfleet.runner.engine import EngineSpec

# Every way Claude Code can be given a credential through the environment.
CREDENTIAL_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_REFRESH_TOKEN",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "AWS_BEARER_TOKEN_BEDROCK",
)
# A custom endpoint with no declared key still needs one for the client to start; local model
# servers ignore it. It grants nothing anywhere.
PLACEHOLDER_KEY = "sk-ant-api03-relayfleet-custom-endpoint-placeholder-no-credential"
CONFIG_DIR_NAME = "claude-config"

# What every session gets from the runner's environment (and nothing else of it).
SESSION_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "TERM",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    # Without these a session behind a proxy or a private CA cannot reach any endpoint.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
)
SESSION_ENV_PREFIXES = ("LC_",)
# `default` mode runs the machine's own Claude setup: its settings and login come along.
CLAUDE_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_")
CLOUD_ENV = {
    "CLAUDE_CODE_USE_BEDROCK": ("AWS_",),
    "CLAUDE_CODE_USE_VERTEX": ("CLOUD_ML_", "GOOGLE_", "GCLOUD_", "VERTEX_REGION_"),
}


def session_base_env(base_env: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted part of the runner's environment that any session may see."""
    return {
        k: v for k, v in base_env.items() if k in SESSION_ENV or k.startswith(SESSION_ENV_PREFIXES)
    }


def machine_claude_env(base_env: Mapping[str, str]) -> dict[str, str]:
    """The machine's Claude Code settings and credentials (for `default` mode only)."""
    prefixes = list(CLAUDE_ENV_PREFIXES)
    for switch, cloud in CLOUD_ENV.items():
        if base_env.get(switch, "") not in ("", "0", "false"):
            prefixes += cloud
    out = {k: v for k, v in base_env.items() if k.startswith(tuple(prefixes))}
    if base_env.get("CLAUDE_CONFIG_DIR"):
        out["CLAUDE_CONFIG_DIR"] = base_env["CLAUDE_CONFIG_DIR"]
    return out


def config_dir(spec: EngineSpec) -> Path:
    """`state/agents/<name>/claude-config`: the agent's own CLAUDE_CONFIG_DIR (and its login)."""
    return spec.state_dir / CONFIG_DIR_NAME


def endpoint_env(
    spec: EngineSpec, base_env: Mapping[str, str], state_root: Path | None = None
) -> dict[str, str]:
    """The full environment for the agent's `claude` session (see the module docstring).

    `base_env`: the runner's environment (usually `os.environ`). `spec.env` is applied on top.
    `state_root`: the fleet's `.fleet/state` (default: derived from `spec.state_dir`); used to find
    the gateway secret and a running gateway's URL.
    """
    state_root = state_root or spec.state_dir.parent.parent
    agent = spec.agent
    claude = agent.claude
    ep = claude.endpoint
    via_gateway = ep.mode == "gateway" or (ep.mode == "custom" and ep.via_gateway)
    env = session_base_env(base_env)
    if ep.mode == "default" and not via_gateway:
        env.update(machine_claude_env(base_env))
    env.update(spec.env)
    if spec.gateway.secret_env:
        env.pop(spec.gateway.secret_env, None)
    if ep.mode not in ("default", "custom", "gateway"):
        raise ConfigError(f"agent {agent.name!r}: unknown endpoint mode {ep.mode!r}")
    if ep.mode == "custom" and not ep.url:
        raise ConfigError(
            f"agent {agent.name!r}: endpoint mode custom needs a url",
            hints=[f"gh fleet agent set {agent.name} claude.endpoint.url http://127.0.0.1:PORT"],
        )

    if via_gateway:
        sentinel, url = _gateway_target(spec, base_env, state_root)
        _scrub(env)
        env["ANTHROPIC_BASE_URL"] = url
        env["ANTHROPIC_API_KEY"] = sentinel
    elif ep.mode == "custom":
        declared = {k: v for k, v in spec.env.items() if k in CREDENTIAL_ENV}
        _scrub(env)
        env.update(declared)
        env["ANTHROPIC_BASE_URL"] = ep.url
        if not any(env.get(k) for k in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")):
            env["ANTHROPIC_API_KEY"] = PLACEHOLDER_KEY
    else:
        env.pop("ANTHROPIC_BASE_URL", None)
    env.pop(ENV_SENTINEL, None)
    env.pop(ENV_GATEWAY_URL, None)

    env.pop("CLAUDE_SECURESTORAGE_CONFIG_DIR", None)
    # A gateway agent is always isolated: its session must not find the machine's login on disk.
    if claude.isolate_config or via_gateway:
        cdir = config_dir(spec)
        machine_dir = base_env.get("CLAUDE_CONFIG_DIR", "")
        env["CLAUDE_CONFIG_DIR"] = str(cdir)
        if ep.mode == "default" and claude.inherit_auth:
            # Empty = the default store (~/.claude); a user's own CLAUDE_CONFIG_DIR is where
            # their login lives instead (research/claude-runner.md 3.2-3.4).
            env["CLAUDE_SECURESTORAGE_CONFIG_DIR"] = machine_dir
        elif ep.mode == "default":
            _scrub(env)  # the agent's own login (in cdir) only
            env.update({k: v for k, v in spec.env.items() if k in CREDENTIAL_ENV})
        seed_config(cdir, spec.workdir, env.get("ANTHROPIC_API_KEY", ""))
    return env


def _scrub(env: dict[str, str]) -> None:
    for key in CREDENTIAL_ENV:
        env.pop(key, None)


def _gateway_target(
    spec: EngineSpec, base_env: Mapping[str, str], state_root: Path
) -> tuple[str, str]:
    """(sentinel, gateway URL): from the backend when it computed them, else from local state."""
    sentinel = base_env.get(ENV_SENTINEL) or spec.env.get(ENV_SENTINEL)
    if not sentinel:
        secret = load_or_create_secret(state_root, base_env, spec.gateway.secret_env)
        sentinel = sentinel_for(secret, spec.agent.name)
    url = base_env.get(ENV_GATEWAY_URL) or spec.env.get(ENV_GATEWAY_URL)
    if not url:
        running = read_json(state_root / "gateway" / "gateway.json", default=None)
        url = running.get("url") if isinstance(running, dict) else None
    return sentinel, url or gateway_url(spec.gateway.listen)


def seed_config(cdir: Path, workdir: Path, api_key: str = "") -> None:
    """Merge the keys that keep a fresh config dir free of dialogs into `.claude.json`."""
    cdir.mkdir(parents=True, exist_ok=True)
    os.chmod(cdir, 0o700)
    path = cdir / ".claude.json"
    data: Any = read_json(path, default=None)
    if not isinstance(data, dict):
        data = {}
    data["hasCompletedOnboarding"] = True
    projects = data.setdefault("projects", {})
    project = projects.setdefault(str(Path(workdir).resolve()), {})
    project["hasTrustDialogAccepted"] = True
    if api_key:
        # Approve this key once (Claude Code keys approvals by its last 20 characters).
        responses = data.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
        approved = responses.setdefault("approved", [])
        if api_key[-20:] not in approved:
            approved.append(api_key[-20:])
        rejected = responses.setdefault("rejected", [])
        if api_key[-20:] in rejected:
            rejected.remove(api_key[-20:])
    write_atomic(path, json.dumps(data, indent=2) + "\n", mode=0o600)
