"""The gateway as an attacker on loopback sees it: no key, a forged key, odd paths, odd headers.

A real gateway forwards to a real recording upstream mounted under a path prefix; the tests speak
raw HTTP/1.1 over a socket so that nothing in a client library normalises the request for them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.core.sentinel import sentinel_for
from relayfleet.gateway.routes import GatewayRoute
from tests.gateway.gateway_support import FakeUpstream, GatewayThread

REAL_KEY = "sk-ant-api03-REAL-machine-key-canary"
SECRET = b"s" * 32


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[FakeUpstream, int, str]]:
    up = FakeUpstream().start()
    sentinel = sentinel_for(SECRET, "coder")
    route = GatewayRoute(agent="coder", sentinel=sentinel, upstream=up.url + "/prefix")
    gw = GatewayThread(
        [route], env={"ANTHROPIC_API_KEY": REAL_KEY}, stats_path=tmp_path / "stats.json"
    )
    try:
        yield up, int(gw.url.rsplit(":", 1)[1]), sentinel
    finally:
        gw.stop()
        up.stop()


def raw(port: int, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    headers = {"Host": "127.0.0.1", "Connection": "close", **headers}
    lines = [f"GET {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "sk-ant-api03-forged"},
        {"x-api-key": sentinel_for(b"another-secret-xxxxxxxx", "coder")},
        {"Authorization": "Basic " + sentinel_for(SECRET, "coder")},  # not a bearer scheme
        {"Cookie": "x-api-key=" + sentinel_for(SECRET, "coder")},
        {"Proxy-Authorization": "Bearer " + sentinel_for(SECRET, "coder")},
    ],
    ids=["none", "forged", "other-secret", "basic-scheme", "cookie", "proxy-auth"],
)
def test_a_request_without_a_known_sentinel_is_refused_before_any_upstream(rig, headers) -> None:
    up, port, _ = rig
    status, body = raw(port, "/v1/messages", headers)
    assert status == 401
    assert up.seen == []
    assert REAL_KEY.encode() not in body


def test_the_sentinel_in_the_query_string_is_not_a_key(rig) -> None:
    up, port, sentinel = rig
    status, _ = raw(port, f"/v1/messages?x-api-key={sentinel}", {})
    assert status == 401
    assert up.seen == []


@pytest.mark.parametrize(
    "target",
    ["/../admin", "/%2e%2e/admin", "/v1/..%2f..%2fadmin", "/v1/../../admin", "/./x", "/v1/..\\x"],
)
def test_a_path_cannot_climb_out_of_the_upstream_prefix(rig, target) -> None:
    up, port, sentinel = rig
    status, _ = raw(port, target, {"x-api-key": sentinel})
    assert status == 400
    assert up.seen == []


@pytest.mark.parametrize(
    "target", ["http://evil.example/v1/messages", "//evil.example/v1/messages"]
)
def test_the_request_target_cannot_choose_the_upstream_host(rig, target) -> None:
    up, port, sentinel = rig
    status, _ = raw(port, target, {"x-api-key": sentinel, "Host": "evil.example"})
    assert status == 200
    assert len(up.seen) == 1 and up.seen[0].path_qs.startswith("/prefix/")


def test_client_headers_cannot_steer_or_leak(rig) -> None:
    up, port, sentinel = rig
    status, _ = raw(
        port,
        "/v1/messages",
        {
            "x-api-key": sentinel,
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-For": "10.9.9.9",
            "X-Forwarded-Proto": "http",
            "Forwarded": "host=evil.example",
            "X-Real-IP": "10.9.9.9",
            "X-Relayfleet-Next": "http://evil.example",
        },
    )
    assert status == 200
    seen = up.seen[0]
    assert seen.header("host") and "evil" not in seen.header("host")
    assert not {n for n in seen.names() if "forwarded" in n or n in ("x-real-ip", "forwarded")}
    assert "x-relayfleet-next" not in seen.names()
    assert seen.header("x-api-key") == REAL_KEY  # swapped in, the sentinel never goes upstream
    assert all(sentinel not in v for _, v in seen.headers)
