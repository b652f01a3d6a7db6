"""`endpoint_env`: the environment an agent's session gets for each endpoint mode."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from gateway_support import coder_spec

from relayfleet.core.errors import ConfigError, CredentialError
from relayfleet.core.sentinel import (
    ENV_GATEWAY_URL,
    ENV_SENTINEL,
    agent_for,
    load_or_create_secret,
    sentinel_for,
)
from relayfleet.fleet.model import ClaudeConfig, Endpoint
from relayfleet.runner.endpoint import PLACEHOLDER_KEY, endpoint_env
from relayfleet.runner.engine import EngineSpec

MACHINE = {
    "HOME": "/home/op",
    "PATH": "/usr/bin",
    "ANTHROPIC_API_KEY": "sk-ant-api03-REAL-machine-key-xxxxxxxxxxxx",
    "ANTHROPIC_AUTH_TOKEN": "real-auth-token",
    "CLAUDE_CODE_OAUTH_TOKEN": "real-oauth-token",
    "ANTHROPIC_BASE_URL": "https://somewhere.example",
    "RELAYFLEET_GATEWAY_SECRET": "s3cret-s3cret-s3cret-s3cret",
}
REAL = ("sk-ant-api03-REAL", "real-auth-token", "real-oauth-token", "s3cret-s3cret")


def spec(
    tmp: Path, endpoint: Endpoint, *, env: dict[str, str] | None = None, **claude: bool
) -> EngineSpec:
    config = ClaudeConfig(endpoint=endpoint, **claude)
    return coder_spec(tmp, config, env=env, mcp=("http://127.0.0.1:1/mcp", "t"), session_id="s")


def seeded(env: dict[str, str]) -> dict:
    return json.loads((Path(env["CLAUDE_CONFIG_DIR"]) / ".claude.json").read_text())


def test_gateway_mode_holds_only_its_sentinel(tmp_path: Path) -> None:
    s = spec(tmp_path, Endpoint(mode="gateway"))
    env = endpoint_env(s, MACHINE)

    secret = load_or_create_secret(
        tmp_path / ".fleet" / "state", MACHINE, "RELAYFLEET_GATEWAY_SECRET"
    )
    assert env["ANTHROPIC_API_KEY"] == sentinel_for(secret, "coder")
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8799"
    for key in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "RELAYFLEET_GATEWAY_SECRET"):
        assert key not in env
    assert "CLAUDE_SECURESTORAGE_CONFIG_DIR" not in env
    assert not any(real in v for v in env.values() for real in REAL)
    assert env["CLAUDE_CONFIG_DIR"] == str(s.state_dir / "claude-config")
    assert seeded(env)["customApiKeyResponses"]["approved"] == [env["ANTHROPIC_API_KEY"][-20:]]
    assert env["PATH"] == "/usr/bin"


def test_gateway_mode_uses_a_running_gateways_url_and_a_backend_given_sentinel(
    tmp_path: Path,
) -> None:
    s = spec(tmp_path, Endpoint(mode="gateway"))
    gw = tmp_path / ".fleet" / "state" / "gateway"
    gw.mkdir(parents=True)
    (gw / "gateway.json").write_text(json.dumps({"url": "http://127.0.0.1:4242"}))
    assert endpoint_env(s, {})["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4242"

    remote = {ENV_SENTINEL: "sk-ant-api03-from-backend", ENV_GATEWAY_URL: "http://127.0.0.1:9"}
    env = endpoint_env(s, remote)
    assert (env["ANTHROPIC_API_KEY"], env["ANTHROPIC_BASE_URL"]) == (
        "sk-ant-api03-from-backend",
        "http://127.0.0.1:9",
    )
    assert ENV_SENTINEL not in env and ENV_GATEWAY_URL not in env


def test_default_isolated_inherits_the_machine_login_without_copying_it(tmp_path: Path) -> None:
    s = spec(tmp_path, Endpoint(mode="default"))
    env = endpoint_env(s, MACHINE)

    cdir = s.state_dir / "claude-config"
    assert env["CLAUDE_CONFIG_DIR"] == str(cdir)
    assert env["CLAUDE_SECURESTORAGE_CONFIG_DIR"] == ""  # the store stays ~/.claude
    assert "ANTHROPIC_BASE_URL" not in env
    assert "RELAYFLEET_GATEWAY_SECRET" not in env
    assert sorted(p.name for p in cdir.iterdir()) == [".claude.json"]  # no credentials file
    data = seeded(env)
    assert data["hasCompletedOnboarding"] is True
    assert data["projects"][str(s.workdir.resolve())]["hasTrustDialogAccepted"] is True
    assert stat.S_IMODE(os.stat(cdir / ".claude.json").st_mode) == 0o600


def test_default_inherit_follows_the_users_own_config_dir(tmp_path: Path) -> None:
    env = endpoint_env(spec(tmp_path, Endpoint()), {"CLAUDE_CONFIG_DIR": "/home/op/.claude-work"})
    assert env["CLAUDE_SECURESTORAGE_CONFIG_DIR"] == "/home/op/.claude-work"


def test_default_without_inherit_uses_only_the_agents_own_login(tmp_path: Path) -> None:
    s = spec(tmp_path, Endpoint(), inherit_auth=False)
    env = endpoint_env(s, MACHINE)
    assert "CLAUDE_SECURESTORAGE_CONFIG_DIR" not in env
    assert not any(real in v for v in env.values() for real in REAL)


def test_default_seeding_keeps_what_claude_wrote(tmp_path: Path) -> None:
    s = spec(tmp_path, Endpoint())
    cdir = s.state_dir / "claude-config"
    cdir.mkdir(parents=True)
    (cdir / ".claude.json").write_text(json.dumps({"numStartups": 7, "projects": {"/x": {}}}))
    data = seeded(endpoint_env(s, {}))
    assert data["numStartups"] == 7 and "/x" in data["projects"]


def test_not_isolated_leaves_the_users_config_alone(tmp_path: Path) -> None:
    env = endpoint_env(spec(tmp_path, Endpoint(), isolate_config=False), {"HOME": "/h"})
    assert "CLAUDE_CONFIG_DIR" not in env and "CLAUDE_SECURESTORAGE_CONFIG_DIR" not in env


def test_custom_never_hands_the_machine_login_to_a_custom_url(tmp_path: Path) -> None:
    s = spec(tmp_path, Endpoint(mode="custom", url="http://127.0.0.1:11434"))
    env = endpoint_env(s, MACHINE)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert env["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert "CLAUDE_SECURESTORAGE_CONFIG_DIR" not in env
    assert not any(real in v for v in env.values() for real in REAL)


def test_custom_keeps_a_declared_credential(tmp_path: Path) -> None:
    s = spec(
        tmp_path,
        Endpoint(mode="custom", url="http://proxy:4000"),
        env={"ANTHROPIC_API_KEY": "sk-declared-for-this-proxy"},
    )
    assert endpoint_env(s, MACHINE)["ANTHROPIC_API_KEY"] == "sk-declared-for-this-proxy"


def test_custom_via_gateway_goes_through_the_gateway(tmp_path: Path) -> None:
    s = spec(tmp_path, Endpoint(mode="custom", url="http://127.0.0.1:11434", via_gateway=True))
    env = endpoint_env(s, MACHINE)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8799"
    assert env["ANTHROPIC_API_KEY"].startswith("sk-ant-api03-")
    assert not any(real in v for v in env.values() for real in REAL)


def test_custom_without_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a url"):
        endpoint_env(spec(tmp_path, Endpoint(mode="custom")), {})


def test_sentinel_shape_and_lookup() -> None:
    a, b = sentinel_for(b"k" * 32, "coder"), sentinel_for(b"k" * 32, "reviewer")
    assert a.startswith("sk-ant-api03-") and len(a) == len("sk-ant-api03-") + 43
    assert "coder" not in a and a != b
    assert a == sentinel_for(b"k" * 32, "coder")  # deterministic
    assert agent_for(b"k" * 32, b, ["coder", "reviewer"]) == "reviewer"
    assert agent_for(b"k" * 32, a + "x", ["coder", "reviewer"]) is None
    assert agent_for(b"other" * 8, a, ["coder"]) is None


def test_secret_file_is_made_once_0600_and_env_wins(tmp_path: Path) -> None:
    one = load_or_create_secret(tmp_path, {}, "GW_SECRET")
    path = tmp_path / "gateway" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path, {}, "GW_SECRET") == one
    assert load_or_create_secret(tmp_path, {"GW_SECRET": "x" * 32}, "GW_SECRET") == b"x" * 32
    with pytest.raises(CredentialError, match="too short"):
        load_or_create_secret(tmp_path, {"GW_SECRET": "short"}, "GW_SECRET")
    path.chmod(0o644)
    with pytest.raises(CredentialError, match="readable by other users"):
        load_or_create_secret(tmp_path, {}, "GW_SECRET")


def test_trust_is_seeded_only_for_the_agents_own_workspace(tmp_path: Path) -> None:
    """Never the enclosing repository, never the operator's config dir."""
    operator = tmp_path / "operator-claude"
    operator.mkdir()
    (operator / ".claude.json").write_text("{}")
    s = spec(tmp_path, Endpoint())
    data = seeded(endpoint_env(s, {"CLAUDE_CONFIG_DIR": str(operator)}))
    trusted = [p for p, v in data["projects"].items() if v.get("hasTrustDialogAccepted")]
    assert trusted == [str(s.workdir.resolve())]
    assert (operator / ".claude.json").read_text() == "{}"
    # Not isolated: the operator's config dir is the session's, and nothing writes to it.
    env = endpoint_env(
        spec(tmp_path, Endpoint(), isolate_config=False), {"CLAUDE_CONFIG_DIR": str(operator)}
    )
    assert env["CLAUDE_CONFIG_DIR"] == str(operator)
    assert (operator / ".claude.json").read_text() == "{}"
