"""`gh fleet status [--json]`: the router and every agent at a glance (ARCHITECTURE 3.9)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context
from relayfleet.cli.status_snapshot import snapshot

if TYPE_CHECKING:
    pass


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="router state, cursor age, and every agent")
    p.add_argument("--json", action="store_true", help="print the status as JSON (stable shape)")
    p.add_argument(
        "--watch", action="store_true", help="a live table (q or Ctrl-C quits; needs a terminal)"
    )
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table

    if args.watch:
        from relayfleet.cli.status_watch import watch

        return watch(ctx, interval=max(0.1, args.interval))
    fleet = ctx.load(fallback=True)
    snap = snapshot(ctx, fleet)  # (what `--json` prints and `--watch` redraws)
    router, agents = snap["router"], snap["agents"]
    if args.json:
        print_json(ctx.out, snap)
        return 0
    if snap["up"].get("running"):
        from relayfleet.up.drift import describe_drift

        print(describe_drift(snap["up"]), file=ctx.out)
    state = f"running (pid {router['pid']})" if router["running"] else "stopped"
    age = router["cursor_age_s"]
    print(
        f"router: {state}; last cycle {router['last_cycle'] or 'never'}; "
        f"cursor age {'-' if age is None else f'{age:.0f}s'}",
        file=ctx.out,
    )
    if router["last_cycle"]:
        left = router.get("rate_limit_remaining")
        print(
            f"github: {router['requests_last_hour']} request(s) in the last hour "
            f"({router['not_modified_last_hour']} were 304); rate limit "
            f"{'-' if left is None else left} left"
            + (f", resets {router['rate_limit_reset']}" if router.get("rate_limit_reset") else "")
            + (f"; paused until {router['paused_until']}" if router.get("paused_until") else ""),
            file=ctx.out,
        )
    if router.get("webhooks"):
        print(f"webhooks: {router['webhooks']['summary']}", file=ctx.out)
    if router.get("catching_up"):
        from relayfleet.cli.commands.router import catching_up

        print(f"catching up: {catching_up(router)}", file=ctx.out)
    for name, why in sorted(router["broken_watches"].items()):
        print(f"broken watch {name}: {why}", file=ctx.out)
    if router.get("held"):
        print(f"quarantine: {router['held']} item(s) held from untrusted authors "
              "(gh fleet quarantine list)", file=ctx.out)  # fmt: skip
    if snap["approvals_waiting"]:
        print(
            f"approvals: {snap['approvals_waiting']} tool call(s) waiting (gh fleet approvals)",
            file=ctx.out,
        )
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
        if r.get("port_notice") and r.get("running"):
            print(f"{r['name']}: warning: channel {r['port_notice']}", file=ctx.out)
        elif (r.get("engine") or {}).get("blocked") and r.get("running"):
            # A dialog that appeared after start holds the session: deliveries wait for a human.
            title = r["engine"]["blocked"]
            print(
                f"{r['name']}: blocked: {title} (answer it: gh fleet attach {r['name']})",
                file=ctx.out,
            )
        if r.get("session") == "asleep" and r.get("running"):
            print(f"{r['name']}: asleep (idle; the next event wakes it)", file=ctx.out)
        budget = r.get("budget") or {}
        if budget.get("state") in ("warn", "over") and r.get("running"):
            print(f"{r['name']}: {budget_line(budget)}", file=ctx.out)
        if r.get("channel_notice") and r.get("running"):
            print(f"{r['name']}: delivery {r.get('delivery')}: {r['channel_notice']}", file=ctx.out)
        for line in workspace_lines(ctx, r.get("workspace") or {}):
            print(f"{r['name']}: {line}", file=ctx.out)
    return 0


def workspace_lines(ctx: Context, w: dict[str, Any]) -> list[str]:
    """`workspace <path> on <branch> (ahead 1, behind 0, dirty)`; a failed fetch on its own line."""
    if w.get("mode", "none") == "none":
        return []
    from pathlib import Path

    path = Path(w["path"])
    shown = (
        ctx.paths.rel(path) if path.is_absolute() and path.is_relative_to(ctx.paths.root) else path
    )
    if w.get("branch") is None:
        lines = [f"workspace {shown} ({w['mode']}): not made yet (the runner makes it at start)"]
    else:
        counts = ", ".join(f"{k} {w[k]}" for k in ("ahead", "behind") if w.get(k) is not None)
        state = ", ".join(x for x in (counts, "dirty" if w.get("dirty") else "clean") if x)
        lines = [f"workspace {shown} on {w['branch']} ({state})"]
    if w.get("fetch_error"):
        lines.append(f"workspace fetch failed: {w['fetch_error']}")
    return lines


def budget_line(b: dict[str, Any]) -> str:
    """`over budget until 00:00 UTC (…)` or `warning: 85% of its daily token budget (…)`."""
    who = "the fleet's" if b.get("scope") == "fleet" else "its"
    used, limit = int(b.get("used") or 0), int(b.get("limit") or 0)
    if b.get("state") == "over":
        until = b.get("until", "00:00 UTC")
        return f"over budget until {until} ({who} {used:,} of {limit:,} tokens)"
    pct = f"{100 * used / limit:.0f}%" if limit else "-"
    return f"warning: {pct} of {who} daily token budget used ({used:,} of {limit:,} tokens)"
