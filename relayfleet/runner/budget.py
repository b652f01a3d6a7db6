"""Token budgets: how much an agent (and the fleet) used today, and whether to deliver or hold.

Usage is counted in tokens per UTC day (input, output, cache writes and cache reads), from:

- the gateway's per-agent counts for an agent whose endpoint goes through the gateway: the file
  contract `state/gateway/stats.json`, `agents.<name>.by_day.<YYYY-MM-DD>.<usage key>` (this
  module never imports `gateway/`);
- otherwise the session's own transcripts (`projects/**/<session>.jsonl` in its config dir):
  every assistant message's `message.usage`, counted once per message id (runner/transcripts.py;
  the runner's gate reads only what was appended since its last count).

Each runner writes what its agent used today to `state/agents/<name>/usage.json`, so the fleet
total (`[budget] tokens_per_day` in fleet.toml) is the sum of those files. `gh fleet budget
<agent> --raise N` adds N tokens to that agent's limit for the rest of the UTC day
(`state/agents/<name>/budget.json`); a new day starts from the configured limit again.

At 80 % `status` warns; at 100 % the runner holds new events (they stay in the inbox, nothing is
lost), tells the session why once, and `status` says `over budget until 00:00 UTC`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet
from relayfleet.runner.transcripts import USAGE_KEYS as USAGE_KEYS  # (re-exported)
from relayfleet.runner.transcripts import TranscriptTally

PRICE_OF = {  # [budget.prices] key -> usage key
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_write": "cache_creation_input_tokens",
    "cache_read": "cache_read_input_tokens",
}
WARN_AT = 0.8
UNTIL = "00:00 UTC"

Counts = dict[str, int]


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def seconds_to_midnight(now: float) -> float:
    return 86400.0 - (now % 86400.0)


def total(counts: Counts) -> int:
    return sum(int(counts.get(k, 0)) for k in USAGE_KEYS)


def cost(counts: Counts, prices: dict[str, float]) -> float | None:
    """Dollars for `counts` at `[budget.prices]` ($ per million tokens); None without prices."""
    if not prices:
        return None
    return sum(counts.get(PRICE_OF[k], 0) * p for k, p in prices.items() if k in PRICE_OF) / 1e6


# -- where usage comes from ---------------------------------------------------------------------


def via_gateway(agent: Agent) -> bool:
    ep = agent.claude.endpoint
    return ep.mode == "gateway" or ep.via_gateway


def gateway_usage(paths: FleetPaths, agent: str) -> dict[str, Counts]:
    """Per-day counts from the gateway's stats file (the file contract above)."""
    data = read_json(paths.state / "gateway" / "stats.json", None)
    row = (data or {}).get("agents", {}).get(agent) if isinstance(data, dict) else None
    days = row.get("by_day") if isinstance(row, dict) else None
    if not isinstance(days, dict):
        return {}
    return {
        str(d): {k: int(v.get(k, 0) or 0) for k in USAGE_KEYS}
        for d, v in days.items()
        if isinstance(v, dict)
    }


def transcript_usage(files: Iterable[Path]) -> dict[str, Counts]:
    """Per-day counts from Claude Code transcripts (one JSON object per line), read whole."""
    return TranscriptTally().usage(files)


def transcript_files(paths: FleetPaths, agent: Agent, session_id: str | None) -> list[Path]:
    """The agent's transcripts: all of its own config dir's, or (sharing the machine's config
    dir) only its session's."""
    if agent.claude.isolate_config:
        root = paths.agent_state(agent.name) / "claude-config" / "projects"
        return sorted(root.glob("*/*.jsonl"))
    if not session_id:
        return []
    import os

    base = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    return sorted((base / "projects").glob(f"*/{session_id}.jsonl"))


def usage_by_day(
    paths: FleetPaths,
    agent: Agent,
    session_id: str | None = None,
    tally: TranscriptTally | None = None,
) -> dict[str, Counts]:
    """Per-day counts; `tally` keeps what earlier calls read of the transcripts (the runner's)."""
    if via_gateway(agent):
        return gateway_usage(paths, agent.name)
    if session_id is None:
        from relayfleet.runner.ledger import Ledger

        led = Ledger.load(paths.agent_state(agent.name) / "runner-state.json")
        session_id = led.session_id
    files = transcript_files(paths, agent, session_id)
    return (tally if tally is not None else TranscriptTally()).usage(files)


# -- raises and the shared per-agent figure -----------------------------------------------------


def raise_file(paths: FleetPaths, agent: str) -> Path:
    return paths.agent_state(agent) / "budget.json"


def usage_file(paths: FleetPaths, agent: str) -> Path:
    return paths.agent_state(agent) / "usage.json"


def raised_today(paths: FleetPaths, agent: str, day: str) -> int:
    d = read_json(raise_file(paths, agent), None)
    if isinstance(d, dict) and d.get("day") == day:
        return int(d.get("raised", 0) or 0)
    return 0


def raise_budget(paths: FleetPaths, agent: str, tokens: int, now: float) -> int:
    """Add `tokens` to today's limit; returns today's total raise."""
    day = utc_day(now)
    raised = raised_today(paths, agent, day) + tokens
    paths.agent_state(agent).mkdir(parents=True, exist_ok=True)
    write_json_atomic(raise_file(paths, agent), {"day": day, "raised": raised, "at": now})
    return raised


def fleet_used_today(paths: FleetPaths, fleet: Fleet, day: str, own: tuple[str, int]) -> int:
    used = own[1]
    for name in fleet.agents:
        if name == own[0]:
            continue
        d = read_json(usage_file(paths, name), None)
        if isinstance(d, dict) and d.get("day") == day:
            used += int(d.get("tokens", 0) or 0)
    return used


# -- the decision -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    state: str  # "none" (no limit) | "ok" | "warn" | "over"
    used: int
    limit: int
    scope: str = "agent"  # which limit decided: "agent" | "fleet"

    @property
    def held(self) -> bool:
        return self.state == "over"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "used": self.used,
            "limit": self.limit,
            "scope": self.scope,
        }
        if self.held:
            out["until"] = UNTIL
        return out

    def describe(self) -> str:
        pct = f"{100 * self.used / self.limit:.0f}%" if self.limit else "-"
        who = "the fleet's" if self.scope == "fleet" else "its"
        if self.state == "over":
            return f"over budget until {UNTIL} ({who} {self.used:,} of {self.limit:,} tokens)"
        return f"{pct} of {who} daily token budget ({self.used:,} of {self.limit:,})"


def decide(used: int, limit: int, fleet_used: int = 0, fleet_limit: int = 0) -> Verdict:
    """Pure: the stricter of the agent's and the fleet's budget."""
    verdicts = []
    if limit > 0:
        verdicts.append(Verdict(_state(used, limit), used, limit, "agent"))
    if fleet_limit > 0:
        verdicts.append(Verdict(_state(fleet_used, fleet_limit), fleet_used, fleet_limit, "fleet"))
    if not verdicts:
        return Verdict("none", used, 0)
    rank = {"ok": 0, "warn": 1, "over": 2}
    return max(verdicts, key=lambda v: (rank[v.state], v.used / v.limit))


def _state(used: int, limit: int) -> str:
    if used >= limit:
        return "over"
    return "warn" if used >= WARN_AT * limit else "ok"


def check(
    paths: FleetPaths,
    fleet: Fleet,
    agent: Agent,
    session_id: str | None,
    now: float,
    tally: TranscriptTally | None = None,
) -> Verdict:
    """Today's verdict for `agent`; records its usage for the fleet-wide sum."""
    day = utc_day(now)
    used = total(usage_by_day(paths, agent, session_id, tally).get(day, {}))
    paths.agent_state(agent.name).mkdir(parents=True, exist_ok=True)
    write_json_atomic(usage_file(paths, agent.name), {"day": day, "tokens": used, "at": now})
    limit = agent.budget.tokens_per_day
    if limit:
        limit += raised_today(paths, agent.name, day)
    fleet_limit = fleet.budget.tokens_per_day
    if fleet_limit:  # a raise lets this agent past the fleet's limit by as much
        fleet_limit += raised_today(paths, agent.name, day)
    fleet_used = fleet_used_today(paths, fleet, day, (agent.name, used)) if fleet_limit else 0
    return decide(used, limit, fleet_used, fleet_limit)


# -- the runner's gate --------------------------------------------------------------------------


def notice(v: Verdict, day: str) -> dict[str, Any]:
    """What the session is told when its events start being held on `day` (an inbox-shaped
    event)."""
    return {
        "id": f"budget-{day}",
        "source": "relay",
        "body": (
            f"[FROM relay] Token budget reached: {v.describe()}. New events are held (none is "
            f"lost) until {UNTIL} or until an operator runs `gh fleet budget <agent> --raise`. "
            "Finish or park what you are doing and do not start new work."
        ),
    }


class BudgetGate:
    """Held in the delivery loop before each new event: returns when delivering is allowed."""

    fresh_for = 10.0  # a verdict is reused this long (then what transcripts appended is read)
    recheck = 30.0  # while over budget: how often to look again (a raise, a new day)

    def __init__(
        self,
        paths: FleetPaths,
        fleet: Fleet,
        agent: Agent,
        log: logging.Logger,
        session_id: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.paths, self.fleet, self.agent, self.log = paths, fleet, agent, log
        self.session_id = session_id
        self.clock = clock
        self.verdict = Verdict("none", 0, 0)
        self.tally = TranscriptTally()  # what was read of the transcripts, kept between checks
        self._at = -1e18
        self._told: str | None = None
        self.wake = asyncio.Event()

    @property
    def active(self) -> bool:
        return bool(self.agent.budget.tokens_per_day or self.fleet.budget.tokens_per_day)

    def refresh(self, *, force: bool = False) -> Verdict:
        now = self.clock()
        if self.active and (force or now - self._at >= self.fresh_for):
            try:
                sid = self.session_id()
                self.verdict = check(self.paths, self.fleet, self.agent, sid, now, self.tally)
            except OSError as exc:  # counting failed: deliver (never wedge on bookkeeping)
                self.log.warning("budget: cannot count usage: %s", exc)
            self._at = now
        return self.verdict

    @property
    def verdict_day(self) -> str:
        """The UTC day the verdict counted (not today's, if midnight passed since)."""
        return utc_day(self._at) if self._at > 0 else utc_day(self.clock())

    async def until_open(self, tell: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        v = await asyncio.to_thread(self.refresh)
        while v.held:
            # The day the verdict is about: past midnight, a verdict of yesterday's is not news.
            day = self.verdict_day
            if self._told != day:
                self._told = day
                self.log.warning("holding new events: %s", v.describe())
                await tell(notice(v, day))
            self.wake.clear()
            wait = min(self.recheck, seconds_to_midnight(self.clock()) + 1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)
            v = await asyncio.to_thread(self.refresh, force=True)
            if not v.held:
                self.log.info("delivering again: %s", v.describe() if v.limit else "no limit")
