"""Pure parts: usage metering of split/compressed bodies, and the routing table from a Fleet."""

from __future__ import annotations

import gzip
import json

import pytest
from gateway_support import message_events

from relayfleet.core.errors import ConfigError
from relayfleet.core.sentinel import sentinel_for
from relayfleet.fleet.model import Agent, ClaudeConfig, Endpoint, Fleet, GatewayConfig
from relayfleet.gateway.routes import match, routes_table
from relayfleet.gateway.usage import UsageMeter


def test_sse_usage_survives_any_chunking() -> None:
    stream = b"".join(message_events("hello", input_tokens=42, output_tokens=9))
    for size in (1, 2, 3, 7, 64, len(stream)):
        meter = UsageMeter("text/event-stream; charset=utf-8")
        for i in range(0, len(stream), size):
            meter.feed(stream[i : i + size])
        u = meter.finish()
        assert (u.input_tokens, u.output_tokens) == (42, 9), size


def test_crlf_events_and_gzip_json_are_metered() -> None:
    crlf = b"".join(message_events("x", 5, 6)).replace(b"\n", b"\r\n")
    meter = UsageMeter("text/event-stream")
    meter.feed(crlf)
    assert meter.finish().output_tokens == 6

    body = gzip.compress(json.dumps({"usage": {"input_tokens": 3, "output_tokens": 4}}).encode())
    meter = UsageMeter("application/json", "gzip")
    meter.feed(body[:10])
    meter.feed(body[10:])
    u = meter.finish()
    assert (u.input_tokens, u.output_tokens) == (3, 4)


def fleet(**agents: Endpoint) -> Fleet:
    return Fleet(
        name="f",
        gateway=GatewayConfig(upstream="https://api.anthropic.com", stages={"pii": "http://p:1/"}),
        agents={
            n: Agent(name=n, role="coder", claude=ClaudeConfig(endpoint=ep))
            for n, ep in agents.items()
        },
    )


def test_routes_table_covers_gateway_agents_only() -> None:
    f = fleet(
        a=Endpoint("gateway"),
        b=Endpoint("gateway", url="https://eu.anthropic.com/", stages=("pii",)),
        c=Endpoint("custom", url="http://127.0.0.1:11434", via_gateway=True),
        d=Endpoint("default"),
        e=Endpoint("custom", url="http://127.0.0.1:11434"),
    )
    rows = routes_table(f, b"s" * 32)
    assert [(r["agent"], r["upstream"], r["stages"], r["credentials"]) for r in rows] == [
        ("a", "https://api.anthropic.com", [], True),
        ("b", "https://eu.anthropic.com", ["pii"], True),
        ("c", "http://127.0.0.1:11434", [], False),
    ]
    assert rows[1]["stage_urls"] == ["http://p:1"]
    assert rows[0]["sentinel"] == sentinel_for(b"s" * 32, "a")


def test_unknown_stage_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown gateway stage 'zip'"):
        routes_table(fleet(a=Endpoint("gateway", stages=("zip",))), b"s" * 32)


def test_match_finds_only_exact_sentinels() -> None:
    from relayfleet.gateway.routes import build_routes

    routes = build_routes(fleet(a=Endpoint("gateway"), b=Endpoint("gateway")), b"k" * 32)
    assert match(routes, routes[1].sentinel) is routes[1]
    assert match(routes, routes[1].sentinel[:-1]) is None
    assert match(routes, "") is None
