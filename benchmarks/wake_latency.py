"""Wake latency of idle sleep: inbox append -> first byte of the event in the session, for a
session that is asleep (`[runtime] idle_stop_min`: started again with `--resume`) next to the
same session awake, in one run.

An in-process runner drives the fake `claude` (claude engine, channel path) in a real PTY; the
fake stamps each channel notification on arrival (`--fake-input-stamps`). The goal (issue:
under 5 s with the real client's start-up) is about the real client; this figure is the
runner's own share plus the fake's start-up, and the ratio says what sleeping costs per event.

With `--real`, the session is the real Claude Code (tests/realclaude.py, offline, typed path)
and the figure is append -> the event's text reaching the (fake) Messages API in the model
request: the real client's whole start-up and `--resume` included.

    .venv/bin/python benchmarks/wake_latency.py [--rounds 5] [--real]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "runner"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # realclaude: tests.npmcache
from sessionkit import wait_until

from relayfleet.core.atomic import append_json
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, ClaudeConfig, Fleet, Runtime
from relayfleet.runner.supervisor import Runner

FAKE = (sys.executable, "-m", "relayfleet.fakes.fake_claude")


def arrival(stamps: Path, marker: str) -> float | None:
    if not stamps.exists():
        return None
    for line in stamps.read_text().splitlines():
        row = json.loads(line)
        if marker in row.get("data", ""):
            return float(row["t"])
    return None


API_KEY = "sk-ant-api03-relayfleet-offline-bench-key-0123456789abcdef"


async def measure(root: Path, rounds: int, real: bool) -> tuple[list[float], list[float]]:
    import dataclasses

    from relayfleet.fleet.model import Endpoint
    from relayfleet.runner.engine_claude import ClaudeEngine

    stamps = root / "stamps.jsonl"
    (root / ".fleet").mkdir()
    api = None
    if real:
        from realclaude import claude_binary, why_unavailable

        from relayfleet.fakes.messages_api import FakeMessagesAPI

        binary = claude_binary()
        if binary is None:
            raise SystemExit(f"real Claude Code unavailable: {why_unavailable()}")
        api = FakeMessagesAPI(default_text="Noted.")
        claude = ClaudeConfig(
            engine="claude",
            command=(str(binary),),
            remote_control=False,
            endpoint=Endpoint(mode="custom", url=api.start()),
        )
    else:
        claude = ClaudeConfig(
            engine="claude", command=FAKE, args=("--fake-input-stamps", str(stamps))
        )
    agent = Agent(name="coder", role="coder", claude=claude, runtime=Runtime(idle_stop_min=30))
    paths, fleet = FleetPaths(root), Fleet(name="bench", agents={"coder": agent})

    def engine(spec: object, channel: object) -> ClaudeEngine:
        env = {**spec.env, "ANTHROPIC_API_KEY": API_KEY}  # type: ignore[attr-defined]
        return ClaudeEngine(dataclasses.replace(spec, env=env), channel)  # type: ignore[type-var]

    r = Runner(paths, fleet, agent, backoff=(0.1, 0.2), engine_factory=engine)
    seen_at: dict[str, float] = {}

    def arrived(marker: str) -> float | None:
        if api is None:
            return arrival(stamps, marker)
        with api._lock:
            seen = [q for q in api.requests if marker in q.text()]
        return seen_at.setdefault(marker, time.time()) if seen else None

    r.idle.after = 3600.0  # awake rounds first
    task = asyncio.create_task(r.run())
    await wait_until(lambda: r._ready.is_set(), timeout=120)
    awake, asleep = [], []
    n = 0

    async def one(into: list[float]) -> None:
        nonlocal n
        n += 1
        marker = f"wake-bench-{n}"
        sent = time.time()
        append_json(paths.inbox("coder"), {"id": f"e{n}", "source": "operator", "body": marker})
        await wait_until(lambda: arrived(marker) is not None, timeout=180, step=0.01)
        got = arrived(marker)
        assert got is not None
        into.append(got - sent)
        if api is None:
            await wait_until(lambda: not r.ledger.pending, timeout=60)  # acked
        else:  # the typed path has no ack: let the turn finish before the idle clock counts
            await wait_until(lambda: f"e{n}" in r.ledger.pending, timeout=60)
            r.ledger.give_up(f"e{n}")
            await asyncio.sleep(2.0)

    for _ in range(rounds):
        await one(awake)
        await asyncio.sleep(0.3)
    r.idle.after = 0.5
    for _ in range(rounds):
        await wait_until(lambda: r.idle.asleep and not r._ready.is_set(), timeout=60)
        await one(asleep)
    r.request_stop()
    await task
    if api is not None:
        api.stop()
    return awake, asleep


FIGURE = r"asleep median [\d.]+s"  # the figure the test suite looks for


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--real", action="store_true", help="the real Claude Code, offline")
    ap.add_argument("--quick", action="store_true", help="one round (the test suite)")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 1
    with tempfile.TemporaryDirectory() as tmp:
        awake, asleep = asyncio.run(measure(Path(tmp), args.rounds, args.real))
    a, s = statistics.median(awake), statistics.median(asleep)
    what = (
        "real claude 2.1.331, typed path, to the model request"
        if args.real
        else ("fake claude, channel path")
    )
    print(
        f"wake latency ({what}, {args.rounds} rounds each): "
        f"asleep median {s:.2f}s max {max(asleep):.2f}s; awake median {a * 1000:.0f}ms; "
        f"sleeping costs {s / a:.0f}x per event"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
