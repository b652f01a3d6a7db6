"""`gh fleet budget <agent> --raise N` and `gh fleet usage [--json] [--since DAY]`.

Token budgets and usage per UTC day (runner/budget.py): usage from the gateway's per-agent
counts for gateway agents, from the session transcripts for the others.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from relayfleet.cli.context import Context
from relayfleet.core.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("budget", help="an agent's daily token budget; --raise lifts it for today")
    p.add_argument("agent", help="the agent's name (see `gh fleet list`)")
    p.add_argument(
        "--raise",
        dest="raise_by",
        metavar="TOKENS",
        help="add this many tokens to today's limit (e.g. 500000, 500k, 2M)",
    )
    p.add_argument("--json", action="store_true", help="print the budget as JSON")
    p.set_defaults(func=run_budget)
    u = sub.add_parser("usage", help="tokens used per agent and day (and money, with prices)")
    u.add_argument("--json", action="store_true", help="print the usage as JSON")
    u.add_argument(
        "--since", default="", help="first UTC day to include: YYYY-MM-DD or Nd (default: today)"
    )
    u.set_defaults(func=run_usage)


def parse_tokens(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text or "")
    if m is None:
        raise UsageError(f"--raise {text!r}: give a number of tokens such as 500000, 500k or 2M")
    n = float(m.group(1).replace("_", "").replace(",", ""))
    n *= {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]
    if n <= 0:
        raise UsageError("--raise: the number of tokens must be positive")
    return int(n)


def parse_since(text: str, now: float) -> str:
    from relayfleet.runner.budget import utc_day

    if not text:
        return utc_day(now)
    m = re.fullmatch(r"(\d+)d", text)
    if m is not None:
        return utc_day(now - 86400 * (int(m.group(1)) - 1))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text
    raise UsageError(f"--since {text!r}: give a day (YYYY-MM-DD) or a number of days (7d)")


def run_budget(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.runner import budget as b

    fleet = ctx.load(fallback=True)
    agent = fleet.agent(args.agent)
    now = time.time()
    if args.raise_by is not None:
        raised = b.raise_budget(ctx.paths, agent.name, parse_tokens(args.raise_by), now)
        if not agent.budget.tokens_per_day and not fleet.budget.tokens_per_day:
            print(f"{agent.name}: no budget is set; the raise is kept for today", file=ctx.err)
    v = b.check(ctx.paths, fleet, agent, None, now)
    raised = b.raised_today(ctx.paths, agent.name, b.utc_day(now))
    out = {"agent": agent.name, "day": b.utc_day(now), "raised": raised, **v.to_json()}
    if args.json:
        print_json(ctx.out, out)
        return 0
    if v.state == "none":
        print(f"{agent.name}: no token budget; {v.used:,} tokens used today", file=ctx.out)
    else:
        extra = f" (raised by {raised:,} today)" if raised else ""
        print(f"{agent.name}: {v.describe()}{extra}", file=ctx.out)
    return 0


def usage_rows(ctx: Context, since: str) -> list[dict[str, Any]]:
    from relayfleet.runner import budget as b

    fleet = ctx.load(fallback=True)
    rows = []
    for name in sorted(fleet.agents):
        agent = fleet.agents[name]
        days = {d: c for d, c in b.usage_by_day(ctx.paths, agent).items() if d >= since}
        counts = {k: sum(c.get(k, 0) for c in days.values()) for k in b.USAGE_KEYS}
        rows.append(
            {
                "agent": name,
                "source": "gateway" if b.via_gateway(agent) else "transcripts",
                "since": since,
                "tokens": b.total(counts),
                **counts,
                "cost_usd": b.cost(counts, fleet.budget.prices),
                "days": {d: b.total(c) for d, c in sorted(days.items())},
                "tokens_per_day": agent.budget.tokens_per_day or None,
            }
        )
    return rows


def run_usage(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table

    since = parse_since(args.since, time.time())
    rows = usage_rows(ctx, since)
    if args.json:
        print_json(ctx.out, rows)
        return 0
    if not rows:
        print("no agents yet", file=ctx.out)
        return 0
    priced = any(r["cost_usd"] is not None for r in rows)
    headers = ("agent", "source", "tokens", "input", "output", "cache w", "cache r")
    table = [
        [
            r["agent"],
            r["source"],
            f"{r['tokens']:,}",
            f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}",
            f"{r['cache_creation_input_tokens']:,}",
            f"{r['cache_read_input_tokens']:,}",
        ]
        + ([f"${r['cost_usd']:.2f}"] if priced else [])
        for r in rows
    ]
    print(f"since {since} (UTC days)", file=ctx.out)
    print_table(ctx.out, (*headers, "cost") if priced else headers, table)
    return 0
