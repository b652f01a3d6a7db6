"""The gateway: an asyncio reverse proxy that swaps an agent's sentinel for the real credential.

For each request: find the agent by its sentinel (`x-api-key` or `Authorization: Bearer`; an
unknown key gets a 401 here and never reaches an upstream), read the machine's real credential
afresh, forward to the agent's first hop with hop-by-hop headers and every client credential
removed, and stream the response back chunk by chunk while metering its token usage. When the
client goes away, the handler is cancelled and the upstream connection is closed with it.

The log has one line per request: agent, method, path (no query), status, duration, tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from relayfleet.core.errors import CredentialError
from relayfleet.gateway.credentials import OAUTH_BETA, CredentialSource
from relayfleet.gateway.routes import AGENT_HEADER, NEXT_HEADER, GatewayRoute, match
from relayfleet.gateway.stats import Stats
from relayfleet.gateway.usage import UsageMeter

log = logging.getLogger("relayfleet.gateway")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: client credentials (the sentinel), and what the client must not steer
# (forwarding headers: an upstream behind its own proxy could route or trust by them).
_DROP_REQUEST = frozenset(
    {
        "host",
        "content-length",
        "x-api-key",
        "authorization",
        "cookie",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-real-ip",
    }
)
_MAX_BODY = 64 * 1024 * 1024

RouteProvider = Callable[[], Sequence[GatewayRoute]]


def _error(status: int, kind: str, message: str) -> web.Response:
    # The Messages API error shape, so clients show the message rather than a parse failure.
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status)


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    """Headers named in `Connection:` are hop-by-hop for this message (RFC 9110 7.6.1)."""
    named: set[str] = set()
    for value in headers.getall("connection", []):
        named.update(t.strip().lower() for t in value.split(",") if t.strip())
    return named


def escapes_prefix(raw_path: str) -> bool:
    """True when the path holds a `.`/`..` segment (plain or percent-encoded, `/` or `\\`).

    The URL client normalises dot segments, so `/../x` appended to an upstream `https://h/p`
    would reach `https://h/x` with the machine's credentials: outside the agent's upstream.
    """
    return any(seg in (".", "..") for seg in re.split(r"[/\\]", unquote(raw_path)))


def presented_key(headers: CIMultiDictProxy[str]) -> str:
    key = headers.get("x-api-key", "")
    if key:
        return key.strip()
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass
class Gateway:
    routes: RouteProvider
    credentials: CredentialSource
    stats: Stats
    flush_every: float = 2.0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bytes pass through exactly; the meter inflates its copy
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _cleanup(self, app: web.Application) -> None:
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        await self.session.close()
        self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            snap = self.stats.take_dirty()
            if snap is not None:
                try:
                    await asyncio.to_thread(self.stats.write, snap)
                except OSError as exc:
                    log.warning("could not write %s: %s", self.stats.path, exc)

    def flush(self) -> None:
        snap = self.stats.take_dirty()
        if snap is not None:
            self.stats.write(snap)

    def _upstream_headers(self, request: web.Request, route: GatewayRoute) -> CIMultiDict[str]:
        drop = HOP_BY_HOP | _DROP_REQUEST | _connection_tokens(request.headers)
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            low = name.lower()
            if low in drop or low.startswith("x-relayfleet-"):
                continue
            out.add(name, value)
        if route.credentials:
            cred = self.credentials.current()  # read now: a refreshed login is used at once
            if cred.expired:
                log.warning("agent=%s the machine's Claude login has expired", route.agent)
            out.update(cred.headers())
            if cred.kind == "oauth":
                betas = [b.strip() for v in out.getall("anthropic-beta", []) for b in v.split(",")]
                betas = [b for b in betas if b]
                if OAUTH_BETA not in betas:
                    betas.append(OAUTH_BETA)
                out["anthropic-beta"] = ",".join(betas)
        if route.stages:
            out[NEXT_HEADER] = ", ".join(route.next_hops)
            out[AGENT_HEADER] = route.agent
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        route = match(self.routes(), presented_key(request.headers))
        if route is None:
            self.stats.reject()
            log.info("agent=- %s %s 401 unknown key", request.method, request.path)
            return _error(401, "authentication_error", "gateway: unknown or missing agent key")
        status = 0
        meter = UsageMeter()  # replaced once the response's type is known
        try:
            try:
                headers = self._upstream_headers(request, route)
            except CredentialError as exc:
                status = 503
                return _error(503, "api_error", f"gateway: {exc}")
            if escapes_prefix(request.rel_url.raw_path):
                status = 400
                return _error(400, "invalid_request_error", "gateway: dot segments in path")
            body = await request.read()
            url = route.first_hop + request.rel_url.raw_path_qs
            try:
                upstream = await self.session.request(
                    request.method, url, headers=headers, data=body, allow_redirects=False
                )
            except (aiohttp.ClientError, OSError) as exc:
                status = 502
                log.warning("agent=%s upstream unreachable: %s", route.agent, type(exc).__name__)
                return _error(502, "api_error", "gateway: upstream unreachable")
            try:
                status = upstream.status
                meter = UsageMeter(
                    upstream.headers.get("content-type", ""),
                    upstream.headers.get("content-encoding", ""),
                )
                return await self._relay(request, upstream, meter)
            finally:
                # Not read to the end (client gone, error): close, never reuse, the connection.
                if not upstream.content.is_eof():
                    upstream.close()
                upstream.release()
        finally:
            usage = meter.finish()
            self.stats.record(route.agent, status or 499, usage)
            log.info(
                "agent=%s %s %s %s %.1fms in=%d out=%d",
                route.agent,
                request.method,
                request.path,
                status or 499,
                (time.perf_counter() - started) * 1000,
                usage.input_tokens,
                usage.output_tokens,
            )

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse, meter: UsageMeter
    ) -> web.StreamResponse:
        drop = HOP_BY_HOP | _connection_tokens(upstream.headers)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in drop:
                response.headers.add(name, value)
        await response.prepare(request)
        # iter_any(): whatever bytes have arrived, at once: an SSE event is never held back.
        async for chunk in upstream.content.iter_any():
            meter.feed(chunk)
            await response.write(chunk)
        await response.write_eof()
        return response


async def serve(gateway: Gateway, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start listening; returns the runner (call `.cleanup()` to stop) and the bound port."""
    # handler_cancellation: a client that disconnects cancels its handler, which closes the
    # upstream request instead of letting it run on for nobody.
    runner = web.AppRunner(gateway.app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    # aiohttp types `_server` as the abstract base, which has no `sockets`; the object is a
    # concrete asyncio Server (or uvloop's), so look the attribute up as before.
    sockets = getattr(site._server, "sockets", None)
    bound = port
    if sockets:
        bound = sockets[0].getsockname()[1]
    return runner, bound
