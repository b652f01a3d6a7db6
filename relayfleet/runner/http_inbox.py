"""The runner's HTTP inbox: the receiving end of the `http` inbox transport.

Served when an agent's `runtime.inbox_transport = "http"`, on 127.0.0.1 only, behind a random
bearer token. The port and token go to `<state_dir>/http-inbox.json` (0600), which the operator's
side reads (locally for docker's bind mount, over SFTP for ssh) and reaches through a tunnel.

    POST /inbox            body: one event (ARCHITECTURE 3.7)  -> {"appended": true|false}
    GET  /inbox/{event_id}                                     -> 200 present | 404

Appends are idempotent by event id (`core.inboxfile.append_once`), so a retried POST is harmless.
The supervisor starts it with `await start_http_inbox(state_dir)`; standalone (for tests and for
runners that don't embed it yet): `python -m relayfleet.runner.http_inbox <state_dir>`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import write_atomic
from relayfleet.core.inboxfile import append_once, contains

ENDPOINT_FILE = "http-inbox.json"


@dataclass
class HttpInbox:
    port: int
    token: str
    runner: Any  # aiohttp.web.AppRunner
    endpoint_file: Path

    async def stop(self) -> None:
        await self.runner.cleanup()
        try:
            self.endpoint_file.unlink()
        except FileNotFoundError:
            pass


async def start_http_inbox(state_dir: Path, host: str = "127.0.0.1", port: int = 0) -> HttpInbox:
    from aiohttp import web

    state_dir = Path(state_dir)
    inbox = state_dir / "inbox.jsonl"
    token = secrets.token_urlsafe(32)

    def authorized(request: web.Request) -> bool:
        got = request.headers.get("Authorization", "")
        return hmac.compare_digest(got.encode(), f"Bearer {token}".encode())

    async def post(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            event = json.loads(await request.read())
            if not isinstance(event, dict) or not isinstance(event.get("id"), str):
                raise ValueError("no id")
        except ValueError:
            return web.json_response({"error": "body must be one event with an id"}, status=400)
        appended = await asyncio.to_thread(append_once, inbox, event)
        return web.json_response({"appended": appended})

    async def has(request: web.Request) -> web.Response:
        if not authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        found = await asyncio.to_thread(contains, inbox, request.match_info["event_id"])
        return web.json_response({"present": found}, status=200 if found else 404)

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/inbox", post)
    app.router.add_get("/inbox/{event_id}", has)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint = state_dir / ENDPOINT_FILE
    payload = {"port": bound, "token": token, "pid": os.getpid()}
    write_atomic(endpoint, json.dumps(payload) + "\n", mode=0o600)
    return HttpInbox(port=bound, token=token, runner=runner, endpoint_file=endpoint)


async def _serve(state_dir: Path) -> None:
    srv = await start_http_inbox(state_dir)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await srv.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m relayfleet.runner.http_inbox <state_dir>", file=sys.stderr)
        sys.exit(2)
    asyncio.run(_serve(Path(sys.argv[1])))
