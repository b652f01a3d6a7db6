"""Real loopback servers for the gateway tests: a recording fake upstream, stages, the gateway.

Each server runs its own event loop in a thread, so tests talk to them with a plain blocking
HTTP client, as an agent would.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from relayfleet.fleet.model import Agent, ClaudeConfig, GatewayConfig
from relayfleet.gateway.credentials import CredentialSource
from relayfleet.gateway.proxy import Gateway, serve
from relayfleet.gateway.routes import AGENT_HEADER, NEXT_HEADER, GatewayRoute
from relayfleet.gateway.stats import Stats
from relayfleet.runner.engine import EngineSpec
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests that use this kit)


def coder_spec(
    tmp: Path,
    claude: ClaudeConfig,
    *,
    listen: str = "127.0.0.1:8799",
    env: dict[str, str] | None = None,
    mcp: tuple[str, str] = ("", ""),
    session_id: str = "11111111-2222-4333-8444-555555555555",
) -> EngineSpec:
    """The session spec of agent `coder` in a fleet at `tmp`: `.fleet/agents/coder`, its state
    in `.fleet/state/agents/coder` (made), working in `tmp/work` (made); the gateway on
    `listen`, the channel at `mcp` (url, token)."""
    state = tmp / ".fleet" / "state" / "agents" / "coder"
    state.mkdir(parents=True, exist_ok=True)
    (tmp / "work").mkdir(exist_ok=True)
    return EngineSpec(
        agent=Agent(name="coder", role="coder", claude=claude),
        agent_dir=tmp / ".fleet" / "agents" / "coder",
        state_dir=state,
        workdir=tmp / "work",
        session_log=state / "session.log",
        mcp_url=mcp[0],
        mcp_token=mcp[1],
        session_id=session_id,
        resume=False,
        gateway=GatewayConfig(listen=listen),
        env=dict(env or {}),
    )


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def message_events(text: str, input_tokens: int, output_tokens: int) -> list[bytes]:
    """A Messages API stream, in the order the real API sends it."""
    msg = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return [
        sse("message_start", {"type": "message_start", "message": msg}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


class LoopThread:
    """An asyncio loop in a daemon thread; `call(coro)` runs a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class FakeUpstream:
    """A recording Messages API. `mode`: json | sse | gated | endless | stage.

    - json: a JSON message with usage; sse: a stream (message_events);
    - gated: sends message_start, then waits for `gate` (set by the test) before the rest;
    - endless: sends message_start, then pings until the connection goes away (`cancelled`);
    - stage: a pipeline stage following the gateway's X-Relayfleet-Next convention.
    """

    mode: str = "json"
    text: str = "Hello from the fake model"
    input_tokens: int = 11
    output_tokens: int = 7
    seen: list[Seen] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    gate_released_by_test: bool | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def start(self) -> FakeUpstream:
        self._lt = LoopThread()
        self._runner, port = self._lt.call(self._start())
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _start(self) -> tuple[web.AppRunner, int]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        self._lt.call(self._runner.cleanup())
        self._lt.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path_qs, list(request.headers.items()), body))
        if self.mode == "stage":
            return await self._forward(request, body)
        if self.mode == "json":
            return web.json_response(
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": self.text}],
                    "usage": {
                        "input_tokens": self.input_tokens,
                        "output_tokens": self.output_tokens,
                    },
                }
            )
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        events = message_events(self.text, self.input_tokens, self.output_tokens)
        try:
            if self.mode == "gated":
                await resp.write(events[0])
                released = await asyncio.to_thread(self.gate.wait, 20)
                self.gate_released_by_test = released
                events = events[1:]
            elif self.mode == "endless":
                await resp.write(events[0])
                while True:
                    await asyncio.sleep(0.05)
                    await resp.write(sse("ping", {"type": "ping"}))
            for ev in events:
                await resp.write(ev)
            await resp.write_eof()
            self.finished.set()
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled.set()
            raise
        return resp

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        hops = [h.strip() for h in request.headers.get(NEXT_HEADER, "").split(",") if h.strip()]
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower()
            not in ("host", "content-length", "x-relayfleet-next", "x-relayfleet-agent")
        }
        if len(hops) > 1:
            headers[NEXT_HEADER] = ", ".join(hops[1:])
            headers[AGENT_HEADER] = request.headers.get(AGENT_HEADER, "")
        async with (
            aiohttp.ClientSession(auto_decompress=False) as s,
            s.request(request.method, hops[0] + request.path_qs, headers=headers, data=body) as r,
        ):
            resp = web.StreamResponse(status=r.status)
            if "content-type" in r.headers:
                resp.headers["content-type"] = r.headers["content-type"]
            await resp.prepare(request)
            async for chunk in r.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp


class GatewayThread:
    """The real `Gateway` app on loopback, in its own loop thread."""

    def __init__(
        self,
        routes: Sequence[GatewayRoute],
        *,
        env: dict[str, str],
        credentials_path: Path | None = None,
        stats_path: Path,
    ) -> None:
        self.routes = list(routes)
        self.gateway = Gateway(
            lambda: self.routes,
            CredentialSource(env, path=credentials_path),
            Stats(stats_path),
            flush_every=0.1,
        )
        self._lt = LoopThread()
        self._runner, port = self._lt.call(serve(self.gateway, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self._lt.call(self._runner.cleanup())
        self._lt.close()
