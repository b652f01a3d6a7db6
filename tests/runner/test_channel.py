"""The loopback MCP channel server: bearer token, handshake era only, channel pushes, tools."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sessionkit import wait_until

from relayfleet.runner.channel import ChannelServer, validate_meta, write_mcp_config

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"},
    },
}
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def _rpc_from(resp: httpx.Response) -> dict[str, Any]:
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        data = [ln[5:].strip() for ln in resp.text.splitlines() if ln.startswith("data:")]
        return json.loads(next(d for d in data if d))
    return resp.json()


async def _probe(srv: ChannelServer) -> dict[str, Any]:
    url, token = await srv.start()
    auth = {"authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        out["no_token"] = (await http.post(url, json=INIT, headers=ACCEPT)).status_code
        bad = {**ACCEPT, "authorization": "Bearer nope"}
        out["bad_token"] = (await http.post(url, json=INIT, headers=bad)).status_code
        init = await http.post(url, json=INIT, headers={**ACCEPT, **auth})
        out["init_status"] = init.status_code
        out["init"] = _rpc_from(init)
        modern = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {}},
            headers={**ACCEPT, **auth, "mcp-protocol-version": "2026-07-28"},
        )
        out["modern_status"], out["modern"] = modern.status_code, modern.json()
        discover = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 3, "method": "server/discover", "params": {}},
            headers={**ACCEPT, **auth},
        )
        out["discover"] = discover.json()
    await srv.stop()
    return out


def test_raw_http_probe_token_and_handshake_era_only() -> None:
    out = asyncio.run(_probe(ChannelServer(instructions="events arrive as <channel>")))
    assert out["no_token"] == 401
    assert out["bad_token"] == 401
    assert out["init_status"] == 200
    result = out["init"]["result"]
    assert result["protocolVersion"] == "2025-11-25"
    assert result["capabilities"]["experimental"] == {"claude/channel": {}}
    assert result["instructions"] == "events arrive as <channel>"
    # A 2026-07-28 request is refused, naming only handshake-era versions (clients fall back).
    assert out["modern_status"] == 400
    assert out["modern"]["error"]["code"] == -32022
    assert "2026-07-28" not in out["modern"]["error"]["data"]["supported"]
    # The discovery probe does not exist here.
    assert out["discover"]["error"]["code"] == -32601


class ChannelParams(BaseModel):
    content: str
    meta: dict[str, str] = {}


def _client(url: str, token: str, mode: str, inbox: list[ChannelParams]) -> Any:
    from fastmcp import Client
    from mcp.client.extension import ClientExtension, NotificationBinding

    async def on_channel(params: ChannelParams) -> None:
        inbox.append(params)

    class ChannelExt(ClientExtension):
        identifier = "dev.relayfleet/channel"

        def notifications(self) -> list[NotificationBinding[Any]]:
            return [
                NotificationBinding(method=CHANNEL, params_type=ChannelParams, handler=on_channel)
            ]

    return Client(url, mode=mode, extensions=[ChannelExt()], auth=token)


CHANNEL = "notifications/claude/channel"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_client_receives_pushes_and_calls_tools(mode: str) -> None:
    acked: list[str] = []
    inbox: list[ChannelParams] = []

    async def ack_event(event_id: str) -> str:
        """Acknowledge an event."""
        acked.append(event_id)
        return "acknowledged"

    async def main() -> tuple[str, list[str], int]:
        srv = ChannelServer()
        srv.tool(ack_event)
        url, token = await srv.start()
        assert not srv.connected()
        try:
            async with _client(url, token, mode, inbox) as client:
                assert await srv.wait_connected(20)
                version = client.initialize_result.protocol_version
                sent = await srv.push("[FROM github] fix it", {"event_id": "evt_1", "number": 12})
                await wait_until(lambda: inbox)
                tools = [t.name for t in await client.list_tools()]
                await client.call_tool("ack_event", {"event_id": inbox[0].meta["event_id"]})
            await wait_until(lambda: not srv.connected())
        finally:
            await srv.stop()
        return version, tools, sent

    version, tools, sent = asyncio.run(main())
    # Even an `auto` client ends up on the handshake era, where pushes have a path.
    assert version == "2025-11-25"
    assert sent == 1
    assert inbox[0].content == "[FROM github] fix it"
    assert inbox[0].meta == {"event_id": "evt_1", "number": "12"}
    assert tools == ["ack_event"]
    assert acked == ["evt_1"]


def test_push_without_a_connected_session_reaches_nobody() -> None:
    async def main() -> int:
        srv = ChannelServer()
        await srv.start()
        try:
            return await srv.push("nobody listens", {"event_id": "e"})
        finally:
            await srv.stop()

    assert asyncio.run(main()) == 0


def test_meta_keys_are_identifiers_and_values_strings() -> None:
    assert validate_meta({"event_id": "e1", "number": 7, "resend": False, "x": None}) == {
        "event_id": "e1",
        "number": "7",
        "resend": "false",
    }
    for bad in ("bad-key", "1st", "", "a b"):
        with pytest.raises(ValueError, match="meta key"):
            validate_meta({bad: "v"})


def test_mcp_config_file_is_private_and_holds_a_literal_header(tmp_path: Path) -> None:
    path = write_mcp_config(tmp_path / "mcp.json", "relay", "http://127.0.0.1:9/mcp", "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "mcpServers": {
            "relay": {
                "type": "http",
                "url": "http://127.0.0.1:9/mcp",
                "headers": {"Authorization": "Bearer s3cret"},
            }
        }
    }


def test_a_port_another_process_has_bound_but_not_yet_listens_on_is_taken_whole() -> None:
    """Two runners asking for one port at once (two fleets with the same `port`): SO_REUSEADDR
    lets both bind it, and only the first `listen` wins. The channel listens as part of taking
    the port, so it never holds one that the other then listens on."""
    import errno
    import socket

    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", 0))
    port = other.getsockname()[1]
    srv = ChannelServer()
    ours = srv._bind(port)
    try:
        assert ours.getsockname()[1] == port
        with pytest.raises(OSError) as exc:
            other.listen(1)  # the other runner's listen fails: it falls back, not this one
        assert exc.value.errno == errno.EADDRINUSE
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # and connections reach this channel
    finally:
        ours.close()
        other.close()
