"""End to end: agent sessions whose only credential is a sentinel, talking through the gateway."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_support import FakeUpstream, GatewayThread, coder_spec, wait_until

from relayfleet.core.sentinel import load_or_create_secret, sentinel_for
from relayfleet.fleet.model import ClaudeConfig, Endpoint
from relayfleet.gateway.routes import GatewayRoute
from relayfleet.runner.endpoint import endpoint_env
from relayfleet.runner.engine import EngineSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import realclaude

pytestmark = pytest.mark.slow

REAL_KEY = "sk-ant-api03-REAL-operator-key-never-in-a-session"
FAKE_CLAUDE = (sys.executable, "-m", "relayfleet.fakes.fake_claude")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream(mode="sse", text="Hi from the fake model via the gateway").start()
    yield up
    up.stop()


def gateway_spec(tmp: Path, command: tuple[str, ...], listen: str, **env: str) -> EngineSpec:
    claude = ClaudeConfig(command=command, remote_control=False, endpoint=Endpoint("gateway"))
    return coder_spec(tmp, claude, listen=listen, env=env)


def start_gateway(tmp: Path, upstream: FakeUpstream) -> GatewayThread:
    secret = load_or_create_secret(tmp / ".fleet" / "state", {}, "RELAYFLEET_GATEWAY_SECRET")
    r = GatewayRoute(agent="coder", sentinel=sentinel_for(secret, "coder"), upstream=upstream.url)
    return GatewayThread(
        [r], env={"ANTHROPIC_API_KEY": REAL_KEY}, stats_path=tmp / "gateway-stats.json"
    )


def assert_only_real_key_upstream(upstream: FakeUpstream, sentinel: str) -> None:
    assert upstream.seen, "nothing reached the upstream"
    for seen in upstream.seen:
        assert seen.header("x-api-key") == REAL_KEY
        assert sentinel not in json.dumps(seen.headers) + seen.body.decode(errors="replace")


def test_fake_claude_session_in_gateway_mode_goes_through_the_gateway(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    from relayfleet.runner.channel import ChannelServer
    from relayfleet.runner.engine_claude import ClaudeEngine

    gw = start_gateway(tmp_path, upstream)
    log = tmp_path / "transcript.jsonl"
    try:
        spec = gateway_spec(
            tmp_path,
            FAKE_CLAUDE,
            gw.url.removeprefix("http://"),
            FAKE_CLAUDE_CALL_API="1",
            FAKE_CLAUDE_TRANSCRIPT=str(log),
        )

        async def session() -> dict[str, str]:
            srv = ChannelServer()
            url, token = await srv.start()
            engine = ClaudeEngine(dataclasses.replace(spec, mcp_url=url, mcp_token=token), srv)
            engine.channel_timeout = 10
            try:
                await engine.start()
                env = engine.env()
                await engine.deliver(
                    {"id": "evt_1", "ts": "", "source": "operator", "body": "hello", "metadata": {}}
                )
                await asyncio.to_thread(
                    wait_until, lambda: log.exists() and '"type": "api"' in log.read_text()
                )
                return env
            finally:
                await engine.stop(grace=2)
                await srv.stop()

        session_env = asyncio.run(session())
    finally:
        gw.stop()

    sentinel = session_env["ANTHROPIC_API_KEY"]
    assert sentinel.startswith("sk-ant-api03-") and REAL_KEY not in json.dumps(session_env)
    [api] = [json.loads(x) for x in log.read_text().splitlines() if '"type": "api"' in x]
    assert api["status"] == 200
    assert api["reply"] == "Hi from the fake model via the gateway"
    assert_only_real_key_upstream(upstream, sentinel)
    assert json.loads(upstream.seen[0].body)["stream"] is True
    assert gw.gateway.stats.agents["coder"]["output_tokens"] == 7


def test_real_claude_runs_a_streamed_turn_through_the_gateway(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    claude = realclaude.claude_binary()
    if claude is None:
        pytest.skip(realclaude.why_unavailable())
    gw = start_gateway(tmp_path, upstream)
    try:
        spec = gateway_spec(tmp_path, (str(claude),), gw.url.removeprefix("http://"))
        env = endpoint_env(spec, {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")})
        proc = subprocess.run(
            [str(claude), "-p", "Say hello", "--model", "sonnet"],
            env={**env, "DISABLE_AUTOUPDATER": "1"},
            cwd=spec.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        gw.stop()

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Hi from the fake model via the gateway" in proc.stdout
    sentinel = env["ANTHROPIC_API_KEY"]
    assert not {"ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"} & env.keys()
    assert_only_real_key_upstream(upstream, sentinel)
    messages = [s for s in upstream.seen if s.path_qs.startswith("/v1/messages")]
    assert messages and all(json.loads(s.body).get("stream") is True for s in messages)
    assert gw.gateway.stats.agents["coder"]["requests"] == len(upstream.seen)
