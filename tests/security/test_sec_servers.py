"""The runner's servers: loopback only, and nothing answers without its token.

Real servers on real sockets: the MCP channel (uvicorn), the http inbox (aiohttp) and the
attach socket (a unix socket, 0600), plus the 0600 files that carry their tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path

import httpx
import pytest

from relayfleet.core.privdir import ensure_private_dir
from relayfleet.runner.attach_server import AttachServer, OutputHub
from relayfleet.runner.channel import ChannelServer, write_mcp_config
from relayfleet.runner.http_inbox import start_http_inbox

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-03-26",
        "capabilities": {},
        "clientInfo": {"name": "intruder", "version": "0"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_mcp_channel_is_loopback_and_refuses_a_missing_or_wrong_token(tmp_path: Path) -> None:
    async def main() -> None:
        srv = ChannelServer()
        url, token = await srv.start()
        try:
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(timeout=20) as c:
                for auth in ({}, {"authorization": "Bearer wrong"}, {"authorization": token}):
                    r = await c.post(url, json=INIT, headers={**MCP_HEADERS, **auth})
                    assert r.status_code == 401, auth
                r = await c.post(
                    url, json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}
                )
                assert r.status_code == 200
            assert srv.methods_seen == ["initialize"]  # the refused ones never got through
        finally:
            await srv.stop()

    asyncio.run(main())
    cfg = write_mcp_config(tmp_path / "mcp.json", "relay", "http://127.0.0.1:1/mcp", "tok")
    assert mode(cfg) == 0o600


def test_the_http_inbox_is_loopback_and_refuses_a_missing_or_wrong_token(tmp_path: Path) -> None:
    async def main() -> None:
        inbox = await start_http_inbox(tmp_path)
        try:
            endpoint = tmp_path / "http-inbox.json"
            assert mode(endpoint) == 0o600
            assert json.loads(endpoint.read_text())["token"] == inbox.token
            base = f"http://127.0.0.1:{inbox.port}"
            event = {"id": "evt_x", "body": "hi"}
            async with httpx.AsyncClient(timeout=20) as c:
                for auth in ({}, {"authorization": "Bearer nope"}, {"authorization": inbox.token}):
                    assert (
                        await c.post(f"{base}/inbox", json=event, headers=auth)
                    ).status_code == 401
                    assert (await c.get(f"{base}/inbox/evt_x", headers=auth)).status_code == 401
                assert not (tmp_path / "inbox.jsonl").exists()
                ok = {"authorization": f"Bearer {inbox.token}"}
                assert (await c.post(f"{base}/inbox", json=event, headers=ok)).status_code == 200
            # Not reachable on another interface of this machine.
            other = [a for a in _local_addresses() if not a.startswith("127.")]
            for addr in other:
                with pytest.raises(OSError):
                    socket.create_connection((addr, inbox.port), timeout=2).close()
        finally:
            await inbox.stop()
        assert not (tmp_path / "http-inbox.json").exists()  # the token goes with the server

    asyncio.run(main())


def _local_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({i[4][0] for i in infos})


def test_the_attach_socket_is_0600_from_the_start(tmp_path: Path) -> None:
    async def main() -> int:
        old = os.umask(0)  # the most permissive umask a runner could inherit
        try:
            srv = AttachServer(tmp_path / "attach.sock", OutputHub(), lambda: None, lambda n: None)
            await srv.start()
        finally:
            os.umask(old)
        try:
            return mode(tmp_path / "attach.sock")
        finally:
            await srv.stop()

    assert asyncio.run(main()) == 0o600


def test_the_private_fallback_dir_refuses_a_squatted_or_linked_path(tmp_path: Path) -> None:
    fresh = ensure_private_dir(tmp_path / "mine")
    assert mode(fresh) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    assert mode(ensure_private_dir(loose)) == 0o700  # ours: tightened

    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(PermissionError):
        ensure_private_dir(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(PermissionError):
        ensure_private_dir(tmp_path / "file")
    if os.getuid() == 0:  # root can stage "another user's" directory
        squat = tmp_path / "squat"
        squat.mkdir(mode=0o777)
        os.chown(squat, 65534, 65534)
        with pytest.raises(PermissionError):
            ensure_private_dir(squat)
