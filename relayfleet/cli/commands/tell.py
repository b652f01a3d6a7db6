"""`gh fleet tell <agent> <msg…>`: put an operator message into an agent's inbox."""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from typing import Any

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tell", help="send an agent a message (it arrives as [FROM operator])")
    p.add_argument("agent", help="the agent's name (see `gh fleet list`)")
    p.add_argument(
        "message",
        nargs="+",
        help="the message (words are joined with spaces); `-` alone reads it from stdin",
    )
    p.add_argument("--json", action="store_true", help="print the event that was appended")
    p.set_defaults(func=run)


def operator_event(message: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    return {
        "id": f"evt_op_{uuid.uuid4().hex[:20]}",
        "ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": "operator",
        "body": f"[FROM operator] {message}",
        "metadata": {"kind": "message"},
    }


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.transports import transport_for
    from relayfleet.cli.output import print_json
    from relayfleet.core.errors import UsageError

    if args.message == ["-"]:
        message = ctx.stdin.read().strip()  # a multi-line message, or one from a script
    else:
        message = " ".join(args.message).strip()
    if not message:
        raise UsageError("the message is empty")
    paths = ctx.paths
    fleet = ctx.load(fallback=True)
    agent = fleet.agent(args.agent)
    event = operator_event(message)
    # The agent's own transport (file, shared, ssh, http), behind the durable outbox: an
    # unreachable host queues the message instead of losing it.
    landed = transport_for(paths, fleet, agent).append(agent.name, event)
    if args.json:
        print_json(ctx.out, {**event, "queued": not landed})
    elif landed:
        print(f"told {agent.name} ({event['id']})", file=ctx.out)
    else:
        print(
            f"queued for {agent.name} ({event['id']}): its inbox is unreachable right now; "
            "it will be delivered when it is",
            file=ctx.out,
        )
    return 0
