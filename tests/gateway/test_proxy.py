"""The gateway against a real recording upstream on loopback: what goes through, and what not."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_support import FakeUpstream, GatewayThread, wait_until

from relayfleet.core.sentinel import sentinel_for
from relayfleet.gateway.routes import GatewayRoute

SECRET = b"test-secret-0123456789abcdef"
REAL_KEY = "sk-ant-api03-REAL-operator-key-do-not-leak"
SENTINEL = sentinel_for(SECRET, "coder")
BODY = {"model": "claude-fake", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def route(upstream: FakeUpstream, **kw: object) -> GatewayRoute:
    return GatewayRoute(agent="coder", sentinel=SENTINEL, upstream=upstream.url, **kw)  # type: ignore[arg-type]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


@pytest.fixture
def gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[GatewayThread]:
    gw = GatewayThread(
        [route(upstream)],
        env={"ANTHROPIC_API_KEY": REAL_KEY},
        stats_path=tmp_path / "stats.json",
    )
    yield gw
    gw.stop()


def post(url: str, headers: dict[str, str], body: object = BODY) -> httpx.Response:
    return httpx.post(f"{url}/v1/messages?beta=true", headers=headers, json=body, timeout=30)


def test_sentinel_request_reaches_upstream_with_the_real_key_only(
    gateway: GatewayThread, upstream: FakeUpstream
) -> None:
    resp = post(
        gateway.url,
        {
            "x-api-key": SENTINEL,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "tools-2024",
            "Connection": "keep-alive, X-Hop-Secret",
            "X-Hop-Secret": "must-not-pass",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Relayfleet-Next": "http://attacker.example",
        },
    )

    assert resp.status_code == 200
    assert resp.json()["content"][0]["text"] == "Hello from the fake model"
    [seen] = upstream.seen
    assert (seen.method, seen.path_qs) == ("POST", "/v1/messages?beta=true")
    assert json.loads(seen.body) == BODY
    assert seen.header("x-api-key") == REAL_KEY
    assert seen.header("anthropic-version") == "2023-06-01"
    assert seen.header("anthropic-beta") == "tools-2024"
    assert seen.header("host") == upstream.url.removeprefix("http://")
    assert not seen.names() & {
        "authorization",
        "x-hop-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-relayfleet-next",
    }
    everything = json.dumps(seen.headers) + seen.body.decode()
    assert SENTINEL not in everything


def test_bearer_sentinel_is_accepted_and_swapped(
    gateway: GatewayThread, upstream: FakeUpstream
) -> None:
    resp = post(gateway.url, {"Authorization": f"Bearer {SENTINEL}"})

    assert resp.status_code == 200
    [seen] = upstream.seen
    assert seen.header("x-api-key") == REAL_KEY
    assert seen.header("authorization") is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": SENTINEL[:-1] + ("A" if SENTINEL[-1] != "A" else "B")},
        {"x-api-key": sentinel_for(b"another-secret-0123456789", "coder")},
        {"x-api-key": sentinel_for(SECRET, "someone-else")},
        {"Authorization": f"Basic {SENTINEL}"},
        {"x-api-key": REAL_KEY},
    ],
    ids=["none", "tampered", "other-secret", "unrouted-agent", "basic-scheme", "real-key"],
)
def test_unknown_or_forged_key_gets_401_and_never_reaches_upstream(
    gateway: GatewayThread, upstream: FakeUpstream, headers: dict[str, str]
) -> None:
    resp = post(gateway.url, headers)

    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"
    assert upstream.seen == []
    assert gateway.gateway.stats.rejected == 1


def test_rotated_oauth_credentials_are_picked_up_by_the_next_request(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    creds = tmp_path / "home" / ".claude" / ".credentials.json"
    creds.parent.mkdir(parents=True)

    def login(token: str) -> None:
        creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": token, "expiresAt": 0}}))

    login("oauth-token-one")
    gw = GatewayThread(
        [route(upstream)], env={"HOME": str(tmp_path / "home")}, stats_path=tmp_path / "s.json"
    )
    try:
        assert post(gw.url, {"x-api-key": SENTINEL, "anthropic-beta": "x-1"}).status_code == 200
        login("oauth-token-two")
        assert post(gw.url, {"x-api-key": SENTINEL}).status_code == 200
    finally:
        gw.stop()

    first, second = upstream.seen
    assert first.header("authorization") == "Bearer oauth-token-one"
    assert second.header("authorization") == "Bearer oauth-token-two"
    assert first.header("anthropic-beta") == "x-1,oauth-2025-04-20"
    assert second.header("anthropic-beta") == "oauth-2025-04-20"
    assert first.header("x-api-key") is None


def test_no_credential_at_all_is_a_503_not_a_forward(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = GatewayThread([route(upstream)], env={"HOME": str(tmp_path)}, stats_path=tmp_path / "s")
    try:
        resp = post(gw.url, {"x-api-key": SENTINEL})
    finally:
        gw.stop()
    assert resp.status_code == 503
    assert upstream.seen == []


def test_custom_upstream_gets_no_operator_credential(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = GatewayThread(
        [route(upstream, credentials=False)],
        env={"ANTHROPIC_API_KEY": REAL_KEY},
        stats_path=tmp_path / "s.json",
    )
    try:
        assert post(gw.url, {"x-api-key": SENTINEL}).status_code == 200
    finally:
        gw.stop()
    [seen] = upstream.seen
    assert seen.header("x-api-key") is None
    assert seen.header("authorization") is None


def test_sse_arrives_incrementally(gateway: GatewayThread, upstream: FakeUpstream) -> None:
    upstream.mode = "gated"
    body = {**BODY, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/messages", headers={"x-api-key": SENTINEL}, json=body, timeout=30
    ) as resp:
        chunks = resp.iter_raw()
        first = next(chunks)
        # The upstream is still holding the rest back: this chunk was not buffered.
        assert b"message_start" in first
        assert not upstream.finished.is_set()
        upstream.gate.set()
        rest = b"".join(chunks)
    assert upstream.gate_released_by_test is True
    assert b"message_stop" in rest
    assert resp.headers["content-type"].startswith("text/event-stream")


def test_client_disconnect_cancels_the_upstream_request(
    gateway: GatewayThread, upstream: FakeUpstream
) -> None:
    upstream.mode = "endless"
    host, port = gateway.url.removeprefix("http://").split(":")
    body = json.dumps({**BODY, "stream": True}).encode()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + f"x-api-key: {SENTINEL}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert b"message_start" in sock.recv(65536) or b"message_start" in sock.recv(65536)
    wait_until(upstream.cancelled.is_set)
    assert not upstream.finished.is_set()


def test_token_accounting_json_and_sse(
    tmp_path: Path, gateway: GatewayThread, upstream: FakeUpstream
) -> None:
    upstream.input_tokens, upstream.output_tokens = 100, 20
    assert post(gateway.url, {"x-api-key": SENTINEL}).status_code == 200
    upstream.mode, upstream.input_tokens, upstream.output_tokens = "sse", 30, 5
    resp = post(gateway.url, {"x-api-key": SENTINEL}, {**BODY, "stream": True})
    assert b"message_stop" in resp.content
    post(gateway.url, {"x-api-key": "forged"})

    row = gateway.gateway.stats.agents["coder"]
    assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (2, 130, 25)
    stats = tmp_path / "stats.json"
    wait_until(lambda: stats.exists() and json.loads(stats.read_text())["rejected"] == 1)
    saved = json.loads(stats.read_text())
    assert saved["agents"]["coder"]["input_tokens"] == 130
    assert saved["agents"]["coder"]["output_tokens"] == 25
    assert "hi" not in json.dumps(saved) and SENTINEL not in json.dumps(saved)


def test_stages_are_chained_in_order_before_the_upstream(tmp_path: Path) -> None:
    final = FakeUpstream().start()
    pii, compress = FakeUpstream(mode="stage").start(), FakeUpstream(mode="stage").start()
    r = GatewayRoute(
        agent="coder",
        sentinel=SENTINEL,
        upstream=final.url,
        stages=(pii.url, compress.url),
        stage_names=("pii", "compress"),
    )
    gw = GatewayThread([r], env={"ANTHROPIC_API_KEY": REAL_KEY}, stats_path=tmp_path / "s.json")
    try:
        resp = post(gw.url, {"x-api-key": SENTINEL})
    finally:
        gw.stop()
        for s in (final, pii, compress):
            s.stop()

    assert resp.status_code == 200
    [at_pii], [at_compress], [at_final] = pii.seen, compress.seen, final.seen
    assert at_pii.header("x-relayfleet-next") == f"{compress.url}, {final.url}"
    assert at_pii.header("x-relayfleet-agent") == "coder"
    assert at_compress.header("x-relayfleet-next") == final.url
    assert at_final.header("x-relayfleet-next") is None
    assert at_final.header("x-api-key") == REAL_KEY
    assert at_final.path_qs == "/v1/messages?beta=true"
    for seen in (at_pii, at_compress, at_final):
        assert SENTINEL not in json.dumps(seen.headers)


def test_log_lines_hold_no_prompt_and_no_credential(
    gateway: GatewayThread, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="relayfleet.gateway")
    secret_prompt = "my-private-prompt-text"
    post(
        gateway.url,
        {"x-api-key": SENTINEL},
        {**BODY, "messages": [{"role": "user", "content": secret_prompt}]},
    )
    post(gateway.url, {"x-api-key": "forged-key"})

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "agent=coder POST /v1/messages 200" in text
    assert "401" in text
    for leak in (secret_prompt, SENTINEL, REAL_KEY, "forged-key", "beta=true"):
        assert leak not in text
