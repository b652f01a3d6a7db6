"""`gh fleet status [--json]`: the router and every agent at a glance (ARCHITECTURE 3.9)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.fleet.model import Fleet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="router state, cursor age, and every agent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _line_count(path: Any) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.endswith(b"\n") and line.strip())
    except FileNotFoundError:
        return 0


def agent_rows(ctx: Context, fleet: Fleet) -> list[dict[str, Any]]:
    """One row per agent: what its backend and its runner (runner.json) report.

    `delivery` is the path into the session in use (`channel` or `pty`); `pending` is what was
    delivered and not yet acknowledged; `inbox_events` counts the inbox's lines.
    """
    from relayfleet.cli.agent_facts import runner_facts

    paths = ctx.paths
    rows = []
    for name in sorted(fleet.agents):
        a = fleet.agents[name]
        row = runner_facts(paths, fleet, a)
        row["inbox_transport"] = a.runtime.inbox_transport
        row["inbox_events"] = _line_count(paths.inbox(name))
        rows.append(row)
    return rows


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table
    from relayfleet.router import daemon

    fleet = ctx.load()
    router = daemon.status(ctx.paths)
    agents = agent_rows(ctx, fleet)
    if args.json:
        print_json(ctx.out, {"router": router, "agents": agents})
        return 0
    state = f"running (pid {router['pid']})" if router["running"] else "stopped"
    age = router["cursor_age_s"]
    print(
        f"router: {state}; last cycle {router['last_cycle'] or 'never'}; "
        f"cursor age {'-' if age is None else f'{age:.0f}s'}",
        file=ctx.out,
    )
    if router["broken_watches"]:
        print("broken watches: " + ", ".join(sorted(router["broken_watches"])), file=ctx.out)
    if not agents:
        print("no agents yet (gh fleet new-agent <name> --role coder)", file=ctx.out)
        return 0
    from relayfleet.cli.agent_facts import TABLE_HEADERS, table_row

    print_table(ctx.out, TABLE_HEADERS, [table_row(r) for r in agents])
    for r in agents:
        for e in r.get("plugin_errors") or []:
            print(
                f"{r['name']}: plugin {e.get('plugin')} ({e.get('stage')}): {e.get('message')}",
                file=ctx.out,
            )
        if r.get("error"):
            print(f"{r['name']}: {r['error']}", file=ctx.out)
    return 0
