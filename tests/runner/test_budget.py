"""Token budgets: counting (transcripts, the gateway's file), the verdict, and the runner's hold."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from sessionkit import echo_runner_setup, wait_until

from relayfleet.core.atomic import append_json, write_json_atomic
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Budget, ClaudeConfig, Endpoint, Fleet
from relayfleet.gateway.stats import Stats
from relayfleet.gateway.usage import Usage
from relayfleet.runner import budget as b
from relayfleet.runner.supervisor import Runner

DAY = "2026-12-03"
NOON = 1796299200.0  # 2026-12-03T12:00:00Z


def assistant(mid: str, ts: str, **usage: int) -> str:
    row = {"type": "assistant", "timestamp": ts, "message": {"id": mid, "usage": usage}}
    return json.dumps(row) + "\n"


def test_utc_day_and_midnight() -> None:
    assert b.utc_day(NOON) == DAY
    assert b.seconds_to_midnight(NOON) == 12 * 3600


def test_the_verdict_is_the_stricter_of_agent_and_fleet() -> None:
    assert b.decide(10, 0).state == "none"
    assert b.decide(79, 100).state == "ok"
    assert b.decide(80, 100).state == "warn"
    assert b.decide(100, 100).to_json() == {
        "state": "over",
        "used": 100,
        "limit": 100,
        "scope": "agent",
        "until": "00:00 UTC",
    }
    v = b.decide(10, 100, fleet_used=1000, fleet_limit=1000)
    assert (v.state, v.scope) == ("over", "fleet")
    assert b.decide(90, 100, fleet_used=10, fleet_limit=1000).state == "warn"


def test_transcripts_count_each_message_once_per_day(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    t.write_text(
        assistant("m1", f"{DAY}T10:00:00Z", input_tokens=100, output_tokens=10)
        # the same message again (one line per content block): counted once
        + assistant("m1", f"{DAY}T10:00:01Z", input_tokens=100, output_tokens=10)
        + assistant("m2", f"{DAY}T11:00:00Z", cache_read_input_tokens=1000)
        + assistant("m3", "2026-12-02T23:59:59Z", output_tokens=7)
        + '{"type": "user", "message": {"content": "usage"}}\n'
        + "not json\n"
    )
    days = b.transcript_usage([t])
    assert b.total(days[DAY]) == 1110
    assert days["2026-12-02"]["output_tokens"] == 7


def test_the_gateway_stats_file_is_the_contract(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    stats = Stats(paths.state / "gateway" / "stats.json", clock=lambda: NOON)
    stats.record("coder", 200, Usage(input_tokens=300, output_tokens=20))
    stats.record("coder", 200, Usage(cache_read_input_tokens=5))
    stats.write(stats.snapshot())
    assert Stats(stats.path).agents["coder"]["by_day"][DAY]["input_tokens"] == 300  # reloads
    agent = Agent(name="coder", role="coder", claude=ClaudeConfig(endpoint=Endpoint("gateway")))
    assert b.total(b.usage_by_day(paths, agent)[DAY]) == 325


def test_a_raise_is_for_today_only(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    assert b.raise_budget(paths, "coder", 500, NOON) == 500
    assert b.raise_budget(paths, "coder", 250, NOON + 60) == 750
    assert b.raised_today(paths, "coder", DAY) == 750
    assert b.raised_today(paths, "coder", b.utc_day(NOON + 86400)) == 0


def test_over_budget_holds_new_events_tells_the_session_and_a_raise_lifts_it(
    tmp_path: Path,
) -> None:
    paths, fleet, agent, typed = echo_runner_setup(tmp_path, budget=Budget(tokens_per_day=1000))
    # Today's transcript already shows 1200 tokens.
    projects = paths.agent_state("coder") / "claude-config" / "projects" / "work"
    projects.mkdir(parents=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (projects / "s1.jsonl").write_text(assistant("m1", now, input_tokens=1200))

    def typed_lines() -> list[str]:
        return typed.read_text().splitlines() if typed.exists() else []

    async def main() -> tuple[dict[str, object], dict[str, object]]:
        r = Runner(paths, fleet, agent, backoff=(0.1, 0.2))
        r.budget.recheck = 0.2
        r.budget.fresh_for = 0.0
        task = asyncio.create_task(r.run())
        await wait_until(lambda: r._ready.is_set())
        append_json(paths.inbox("coder"), {"id": "e1", "source": "operator", "body": "go"})
        await wait_until(lambda: any("Token budget reached" in x for x in typed_lines()))
        r.write_status()
        held = json.loads(paths.runner_status("coder").read_text())
        assert r.ledger.delivered_count == 0 and "e1" not in r.ledger.pending
        b.raise_budget(paths, "coder", 400, time.time())  # 1200 of 1400: 86 %
        r.budget.wake.set()
        await wait_until(lambda: r.ledger.delivered_count == 1)
        r.write_status()
        after = json.loads(paths.runner_status("coder").read_text())
        r.request_stop()
        await task
        return held, after

    held, after = asyncio.run(main())
    assert held["budget"] == {
        "state": "over",
        "used": 1200,
        "limit": 1000,
        "scope": "agent",
        "until": "00:00 UTC",
    }
    assert held["pending"] == 0
    assert after["budget"]["state"] == "warn"  # type: ignore[index]
    lines = typed_lines()
    assert lines[0].startswith("[FROM relay] Token budget reached: over budget until 00:00 UTC")
    assert lines[1:] == ["[FROM operator] go"]  # held, not lost; delivered once
    usage = json.loads(b.usage_file(paths, "coder").read_text())
    assert usage["tokens"] == 1200


def test_the_fleet_budget_sums_every_agents_usage(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    a = Agent(name="a", role="coder")
    fleet = Fleet(name="t", agents={"a": a, "b": Agent(name="b", role="coder")})
    fleet = Fleet(name="t", agents=fleet.agents, budget=Budget(tokens_per_day=500))
    write_json_atomic(b.usage_file(paths, "b"), {"day": b.utc_day(time.time()), "tokens": 600})
    v = b.check(paths, fleet, a, None, time.time())
    assert (v.state, v.scope, v.used) == ("over", "fleet", 600)


def test_a_new_utc_day_lifts_the_hold(tmp_path: Path) -> None:
    import logging

    paths = FleetPaths(tmp_path)
    agent = Agent(name="coder", role="coder", budget=Budget(tokens_per_day=100))
    fleet = Fleet(name="t", agents={"coder": agent})
    projects = paths.agent_state("coder") / "claude-config" / "projects" / "w"
    projects.mkdir(parents=True)
    (projects / "s.jsonl").write_text(assistant("m1", f"{DAY}T11:00:00Z", output_tokens=150))
    now = [NOON]
    told: list[dict[str, object]] = []

    async def tell(event: dict[str, object]) -> None:
        told.append(event)

    async def main() -> None:
        gate = b.BudgetGate(
            paths, fleet, agent, logging.getLogger("t"), lambda: "s", lambda: now[0]
        )
        gate.recheck = 0.05
        waiter = asyncio.create_task(gate.until_open(tell))
        await wait_until(lambda: told)
        await asyncio.sleep(0.2)
        assert not waiter.done() and gate.verdict.state == "over"
        now[0] = NOON + 12 * 3600 + 1  # 00:00:01 UTC the next day
        await asyncio.wait_for(waiter, 5)
        assert gate.verdict.state == "ok" and gate.verdict.used == 0

    asyncio.run(main())
    assert len(told) == 1 and "until 00:00 UTC" in str(told[0]["body"])
