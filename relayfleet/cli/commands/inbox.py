"""`gh fleet inbox <agent> [--json] [-n N]`: what has been delivered to an agent, oldest first."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inbox", help="print an agent's inbox (events delivered to it)")
    p.add_argument("agent", help="the agent's name (see `gh fleet list`)")
    p.add_argument("--json", action="store_true", help="the events as a JSON array (3.7 shape)")
    p.add_argument("-n", "--limit", type=int, default=0, help="only the last N events")
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.transports import outbox_backlog, transport_for
    from relayfleet.cli.output import print_json

    paths = ctx.paths
    fleet = ctx.load(fallback=True)
    agent = fleet.agent(args.agent)  # NotFound names the known agents
    # Read where the agent's inbox is, through its own transport (an ssh host's file over SFTP).
    events = transport_for(paths, fleet, agent).read(agent.name)
    if args.limit > 0:
        events = events[-args.limit :]
    if args.json:
        print_json(ctx.out, events)
        return 0
    if not events:
        print(f"{agent.name}: inbox is empty", file=ctx.out)
        return 0
    for e in events:
        line = f"{e.get('ts', '?')}  {e.get('source', '?'):<8} {e.get('body', '')}"
        hidden = (e.get("metadata") or {}).get("hygiene") if isinstance(e, dict) else None
        if isinstance(hidden, dict) and hidden:
            # What the router removed from the GitHub text (router/hygiene.py): worth a look.
            line += " [hidden: " + ", ".join(f"{k} {v}" for k, v in sorted(hidden.items())) + "]"
        print(line, file=ctx.out)
    waiting = outbox_backlog(paths, agent.name)
    if waiting:
        print(f"({waiting} more wait in the outbox: its inbox is unreachable now)", file=ctx.out)
    # The runner moves long-acknowledged events out of the live inbox (runner/compaction.py).
    inbox = paths.inbox(agent.name)
    older = sorted(inbox.parent.glob(f"{inbox.name}.[0-9]*"))
    if older:
        print(f"(older events archived in {', '.join(str(p) for p in older)})", file=ctx.out)
    return 0
