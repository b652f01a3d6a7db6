"""The runner's loopback MCP server: Claude Code channel pushes plus the runner's tools.

Streamable HTTP on 127.0.0.1 and the agent's `port` (an ephemeral one, with a notice, when that
is taken or unset), one bearer token per launch, and the
handshake-era (`initialize`) protocol only. Claude Code refuses to register a channel server that
negotiated the stateless 2026-07-28 revision (it has no path for unsolicited notifications), and
mcp 2.x / fastmcp 4.x serve both eras by default (research/claude-runner.md §1.4, §4). So a guard in
front of the SDK answers every modern-era request with -32022 naming only handshake versions, and
a `server/discover` probe with -32601: both make an `auto` client fall back to `initialize`.

This is the only module that imports fastmcp (≈1.4 s, ≈85 MB); it does so inside `start()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import write_atomic

log = logging.getLogger(__name__)

CHANNEL_METHOD = "notifications/claude/channel"
CHANNEL_CAPABILITY = "claude/channel"
META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# The handshake-era revisions (mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS in mcp 2.3.0),
# repeated here so the guard needs no MCP import on the request path.
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MAX_BODY = 4 * 1024 * 1024

DEFAULT_INSTRUCTIONS = """\
You are one agent of a gh-fleet. Work for you arrives from the fleet's runner as channel events:

<channel source="relay" event_id="evt_…" source_kind="github" kind="issues" repo="owner/name" \
number="12" resend="false">
[FROM github | issues owner/name#12 updated] one-line summary
</channel>

`content` is a short summary; call `get_event(event_id)` for the full payload. An event with
resend="true" was delivered before but never acknowledged: check whether you already handled it.
Every event must end with `ack_event(event_id)` once you have handled it (or decided to ignore
it), otherwise the runner sends it again. Use `list_pending` to see unacknowledged events,
`handoff(agent, message)` to pass work to another agent of the fleet, and `fleet_status` to see
the fleet."""


def validate_meta(meta: Mapping[str, object]) -> dict[str, str]:
    """Channel meta as Claude Code accepts it: identifier keys, string values (else dropped)."""
    out: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not META_KEY.match(key):
            raise ValueError(f"channel meta key {key!r} must match {META_KEY.pattern}")
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def write_mcp_config(path: Path, name: str, url: str, token: str) -> Path:
    """Write the 0600 `--mcp-config` file with a literal bearer header (never put it in argv)."""
    doc = {
        "mcpServers": {
            name: {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}
        }
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=2) + "\n", mode=0o600)
    os.chmod(path, 0o600)
    return path


LISTEN_BACKLOG = 128


class ChannelServer:
    """A loopback MCP server that pushes `notifications/claude/channel` and serves tools."""

    def __init__(
        self,
        name: str = "relay",
        instructions: str = DEFAULT_INSTRUCTIONS,
        *,
        host: str = "127.0.0.1",
        path: str = "/mcp",
        version: str = "0.1.0",
    ) -> None:
        self.name = name
        self.instructions = instructions
        self.host = host
        self.path = path
        self.version = version
        self.token = ""
        self.url = ""
        self.port = 0
        self.port_notice = ""  # why the channel is not on the port it was asked for
        self.methods_seen: list[str] = []  # JSON-RPC methods received (authenticated ones)
        self._tools: list[tuple[Callable[..., Any], str | None, str | None]] = []
        self._connections: dict[str, Any] = {}  # MCP session id -> mcp Connection
        self._open_streams: dict[str, int] = {}  # MCP session id -> open GET/SSE streams
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # -- setup ---------------------------------------------------------------------------------

    def tool(
        self, fn: Callable[..., Any], name: str | None = None, description: str | None = None
    ) -> None:
        """Register a tool (a typed function, sync or async); call before `start()`."""
        if self._server is not None:
            raise RuntimeError("register tools before the channel server starts")
        self._tools.append((fn, name, description))

    async def start(self, port: int = 0) -> tuple[str, str]:
        """Serve on 127.0.0.1:`port` (0, or when it is taken: an ephemeral one, and
        `port_notice` says why); returns (url, bearer token)."""
        import uvicorn
        from fastmcp import FastMCP
        from fastmcp.server.auth.providers.jwt import StaticTokenVerifier
        from mcp_types import NotificationParams
        from starlette.middleware import Middleware

        self.token = secrets.token_urlsafe(32)
        mcp = FastMCP(
            self.name,
            instructions=self.instructions,
            version=self.version,
            experimental_capabilities={CHANNEL_CAPABILITY: {}},
            auth=StaticTokenVerifier(tokens={self.token: {"client_id": "claude", "scopes": []}}),
        )
        for fn, tool_name, description in self._tools:
            mcp.tool(fn, name=tool_name, description=description)
        low = mcp._mcp_server
        # Handshake era only: no `server/discover` (the guard refuses it before it gets here).
        low._request_handlers.pop("server/discover", None)
        low.add_notification_handler(
            "notifications/initialized", NotificationParams, self._on_initialized
        )
        app = mcp.http_app(
            path=self.path,
            transport="http",
            middleware=[Middleware(_Guard, channel=self)],
            host_origin_protection="auto",
        )
        sock = self._bind(port)
        self.port = sock.getsockname()[1]
        if port and self.port != port:
            self.port_notice = f"{self.port_notice}; listening on {self.port} instead"
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="mcp-channel")
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()  # raises the startup error
                raise RuntimeError("MCP channel server exited during start-up")
            await asyncio.sleep(0.01)
        self.url = f"http://{self.host}:{self.port}{self.path}"
        return self.url, self.token

    def _bind(self, port: int) -> socket.socket:
        """A socket bound to `port`, else (taken, not allowed) to an ephemeral port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # SO_REUSEADDR: a restarted runner gets its port back past TIME_WAIT; a port another
        # process listens on still refuses (Linux), which is what the fallback is for. With it,
        # two processes may both *bind* a port neither listens on yet; only the first `listen`
        # wins, so the listen is part of the attempt.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
            sock.listen(LISTEN_BACKLOG)
            return sock
        except OSError as exc:
            if not port:
                sock.close()
                raise
            self.port_notice = f"port {port} is taken ({exc.strerror or exc})"
        sock.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(LISTEN_BACKLOG)
        return sock

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self._connections.clear()
        self._open_streams.clear()

    # -- sessions ------------------------------------------------------------------------------

    async def _on_initialized(self, ctx: Any, _params: Any) -> None:
        conn = ctx.session._connection  # private in mcp 2.3: the only handle on the GET stream
        sid = conn.session_id or f"anon-{id(conn)}"
        self._connections[sid] = conn

        async def forget() -> None:
            self._connections.pop(sid, None)
            self._changed.set()

        conn.exit_stack.push_async_callback(forget)
        self._changed.set()

    def _stream_opened(self, sid: str) -> None:
        self._open_streams[sid] = self._open_streams.get(sid, 0) + 1
        self._changed.set()

    def _stream_closed(self, sid: str) -> None:
        left = self._open_streams.get(sid, 1) - 1
        if left > 0:
            self._open_streams[sid] = left
        else:
            self._open_streams.pop(sid, None)
        self._changed.set()

    def _live(self) -> list[Any]:
        return [c for sid, c in self._connections.items() if self._open_streams.get(sid)]

    def connected(self) -> bool:
        """A client finished the handshake and holds its standalone GET/SSE stream open."""
        return bool(self._live())

    def session_count(self) -> int:
        return len(self._connections)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until `connected()`; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.connected():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return True

    async def push(self, content: str, meta: Mapping[str, object]) -> int:
        """Send one channel event to every connected session; returns how many got it."""
        params = {"content": str(content), "meta": validate_meta(meta)}
        sent = 0
        for conn in self._live():
            await conn.notify(CHANNEL_METHOD, params)
            sent += 1
        return sent


class _QuietServer:
    """uvicorn.Server without its signal capture: the runner owns SIGTERM/SIGINT."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Quiet(config)


class _Guard:
    """ASGI front door: bearer check, handshake-era only, stream bookkeeping."""

    def __init__(self, app: Any, channel: ChannelServer) -> None:
        self.app = app
        self.channel = channel

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        expected = f"Bearer {self.channel.token}"
        # A bare 401 (no OAuth metadata): Claude Code would otherwise start OAuth discovery.
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode()):
            await _respond(send, 401, {"error": "unauthorized"})
            return
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in HANDSHAKE_VERSIONS:
            await _respond(send, 400, _rpc_error(None, -32022, version))
            return
        method = scope.get("method", "GET")
        sid = headers.get("mcp-session-id")
        if method == "POST":
            body = await _read_body(receive)
            if body is None:
                await _respond(send, 413, {"error": "request body too large"})
                return
            msgs = _parse(body)
            for msg in msgs:
                if "method" in msg:
                    self.channel.methods_seen.append(str(msg["method"]))
            probe = next((m for m in msgs if m.get("method") == "server/discover"), None)
            if probe is not None:
                await _respond(send, 200, _rpc_error(probe.get("id"), -32601, None))
                return
            await self.app(scope, _replay(body, receive), send)
            return
        if method == "GET" and sid:
            self.channel._stream_opened(sid)
            try:
                await self.app(scope, receive, send)
            finally:
                self.channel._stream_closed(sid)
            return
        await self.app(scope, receive, send)


def _rpc_error(req_id: Any, code: int, requested: str | None) -> dict[str, Any]:
    if code == -32022:
        error: dict[str, Any] = {
            "code": code,
            "message": "Unsupported protocol version: this server speaks the handshake-era "
            "(initialize) protocol only",
            "data": {"supported": list(HANDSHAKE_VERSIONS), "requested": requested or ""},
        }
    else:
        error = {"code": code, "message": "Method not found: use initialize (handshake era only)"}
    return {"jsonrpc": "2.0", "id": req_id, "error": error}


def _parse(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    items = doc if isinstance(doc, list) else [doc]
    return [m for m in items if isinstance(m, dict)]


async def _read_body(receive: Any) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Callable[[], Any]:
    """The body we already read, then the real `receive` (which reports a disconnect)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Any, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
