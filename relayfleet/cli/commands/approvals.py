"""`gh fleet approvals [--json]`, `approve <id>`, `deny <id> [--reason …]`: the operator's one
queue of tool calls that `policy` sessions wait on (runner/permissions.py)."""

from __future__ import annotations

import argparse
import time

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("approvals", help="tool calls waiting for an operator, fleet-wide")
    p.add_argument("--json", action="store_true", help="the queue as JSON, oldest first")
    p.set_defaults(func=run_list)
    a = sub.add_parser("approve", help="let a waiting tool call run")
    a.add_argument("id", help="the request's id (see `gh fleet approvals`)")
    a.add_argument("--reason", default="", help="recorded in the audit log")
    a.set_defaults(func=run_answer, decision="allow")
    d = sub.add_parser("deny", help="refuse a waiting tool call")
    d.add_argument("id", help="the request's id (see `gh fleet approvals`)")
    d.add_argument("--reason", default="", help="told to the session and kept in the audit log")
    d.set_defaults(func=run_answer, decision="deny")


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.agent_facts import human_age
    from relayfleet.cli.output import print_json, print_table
    from relayfleet.runner.permissions import waiting

    queue = waiting(ctx.paths)
    if args.json:
        print_json(ctx.out, queue)
        return 0
    if not queue:
        print("no tool calls are waiting for approval", file=ctx.out)
        return 0
    now = time.time()
    rows = [
        [
            r["id"],
            r.get("agent", "?"),
            r.get("tool", "?"),
            str(r.get("detail", ""))[:80],
            r.get("event") or "-",
            human_age(now - float(r.get("asked_at") or now)),
        ]
        for r in queue
    ]
    print_table(ctx.out, ("id", "agent", "tool", "command or path", "event", "waiting"), rows)
    return 0


def run_answer(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.runner.permissions import answer

    who = ctx.env.get("USER") or ctx.env.get("LOGNAME") or "operator"
    decision = args.decision
    reason = args.reason or f"{'approved' if decision == 'allow' else 'denied'} by {who}"
    req = answer(ctx.paths, args.id, decision, reason, f"operator:{who}")
    verb = "approved" if decision == "allow" else "denied"
    what = f"{req.get('agent')} {req.get('tool')} {req.get('detail')}"
    print(f"{verb} {args.id}: {what}", file=ctx.out)
    return 0
