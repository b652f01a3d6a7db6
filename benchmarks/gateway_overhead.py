"""The latency the gateway adds, next to a direct call in the same run; throughput at 50 streams.

    python benchmarks/gateway_overhead.py [--requests 400] [--concurrency 50] [--quick]

Three processes on loopback: a fake Messages API upstream, the gateway (the real `Gateway` app),
and this client. Each measurement alternates direct and gateway calls so machine noise hits both.
Goal: under 2 ms added at the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

SENTINEL = "sk-ant-api03-benchmark-sentinel"
BODY = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi " * 200}]}


FIGURE = r"gateway +\d+ streams/s"  # the figure the test suite looks for


def _events(n_deltas: int = 20) -> list[bytes]:
    def ev(kind: str, data: dict) -> bytes:
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    msg = {"type": "message", "usage": {"input_tokens": 10, "output_tokens": 1}}
    out = [ev("message_start", {"type": "message_start", "message": msg})]
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}
    out += [ev("content_block_delta", {**delta, "text": f"w{i} "}) for i in range(n_deltas)]
    out.append(ev("message_delta", {"type": "message_delta", "usage": {"output_tokens": 21}}))
    out.append(ev("message_stop", {"type": "message_stop"}))
    return out


async def upstream_main() -> None:
    events = _events()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.json_response(
                {"content": [], "usage": {"input_tokens": 10, "output_tokens": 5}}
            )
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for e in events:
            await resp.write(e)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def gateway_main(upstream: str, state: str) -> None:
    import logging

    from relayfleet.gateway.credentials import CredentialSource
    from relayfleet.gateway.proxy import Gateway, serve
    from relayfleet.gateway.routes import GatewayRoute
    from relayfleet.gateway.stats import Stats

    logging.getLogger("relayfleet.gateway").setLevel(logging.WARNING)
    routes = [GatewayRoute(agent="bench", sentinel=SENTINEL, upstream=upstream)]
    gw = Gateway(
        lambda: routes,
        CredentialSource({"ANTHROPIC_API_KEY": "sk-ant-api03-real-benchmark"}),
        Stats(Path(state) / "stats.json"),
    )
    _, port = await serve(gw, "127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.Event().wait()


def spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().strip()}"


async def one(session: aiohttp.ClientSession, base: str, stream: bool) -> float:
    t0 = time.perf_counter()
    async with session.post(
        f"{base}/v1/messages",
        json={**BODY, "stream": stream},
        headers={"x-api-key": SENTINEL, "anthropic-version": "2023-06-01"},
    ) as resp:
        async for _ in resp.content.iter_any():
            pass
        assert resp.status == 200, resp.status
    return (time.perf_counter() - t0) * 1000


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def latency(direct: str, gateway: str, n: int) -> None:
    async with aiohttp.ClientSession() as s:
        for stream in (False, True):
            for base in (direct, gateway):  # warm both connection pools
                for _ in range(20):
                    await one(s, base, stream)
            d, g = [], []
            for _ in range(n):
                d.append(await one(s, direct, stream))
                g.append(await one(s, gateway, stream))
            kind = "streamed (SSE, 23 events)" if stream else "non-streamed (JSON)"
            md, mg = statistics.median(d), statistics.median(g)
            print(f"\n{kind}, {n} sequential requests each")
            print(f"  {'':10} {'median ms':>10} {'p99 ms':>10}")
            print(f"  {'direct':10} {md:10.3f} {pct(d, 99):10.3f}")
            print(f"  {'gateway':10} {mg:10.3f} {pct(g, 99):10.3f}")
            print(f"  {'added':10} {mg - md:10.3f} {pct(g, 99) - pct(d, 99):10.3f}")


async def throughput(direct: str, gateway: str, concurrency: int, per_stream: int) -> None:
    print(f"\nthroughput: {concurrency} concurrent streams x {per_stream} requests")
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as s:
        for name, base in (("direct", direct), ("gateway", gateway)):

            async def worker(base: str = base) -> list[float]:
                return [await one(s, base, True) for _ in range(per_stream)]

            t0 = time.perf_counter()
            results = await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - t0
            lat = [x for r in results for x in r]
            rate, med, p99 = len(lat) / wall, statistics.median(lat), pct(lat, 99)
            print(f"  {name:8} {rate:8.0f} streams/s   median {med:7.2f} ms   p99 {p99:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--per-stream", type=int, default=20)
    ap.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-gateway", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="20 requests, 4 streams (test suite)")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.concurrency, a.per_stream = 20, 4, 5
    if a.serve_upstream:
        asyncio.run(upstream_main())
        return
    if a.serve_gateway:
        asyncio.run(gateway_main(*a.serve_gateway))
        return
    with tempfile.TemporaryDirectory() as state:
        up, direct = spawn("--serve-upstream")
        gw, gateway = spawn("--serve-gateway", direct, state)
        try:
            py = sys.version.split()[0]
            print(f"gateway overhead on loopback (python {py}, {os.cpu_count()} cpus)")
            asyncio.run(latency(direct, gateway, a.requests))
            asyncio.run(throughput(direct, gateway, a.concurrency, a.per_stream))
        finally:
            for p in (gw, up):
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
