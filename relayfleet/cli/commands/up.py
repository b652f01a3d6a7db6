"""`gh fleet up`: run the fleet in the foreground and keep it in step with `.fleet/`."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context
from relayfleet.core.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up",
        help="run the router and every agent in the foreground; reconcile when .fleet/ changes",
        description=(
            "Start the router, every agent's runner (and the gateway when enabled), prefix their "
            "output, and reconcile whenever .fleet/ or git HEAD changes: new agents start, removed "
            "ones stop, a changed agent.toml restarts only that agent, changed routes reload "
            "without a restart, and an invalid change is refused while the last good config runs. "
            "Ctrl-C stops everything."
        ),
    )
    p.add_argument("agents", nargs="*", help="only these agents (default: all)")
    p.add_argument(
        "--pull",
        metavar="INTERVAL",
        type=float,
        help="every INTERVAL seconds, git fetch and fast-forward the branch (merged PRs apply)",
    )
    p.add_argument("--no-router", action="store_true", help="do not start the router")
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.up.supervisor import FleetUp, Options

    if args.pull is not None and args.pull < 5:
        raise UsageError("--pull INTERVAL must be at least 5 seconds")
    fleet = ctx.load()
    unknown = [a for a in args.agents if a not in fleet.agents]
    if unknown:
        fleet.agent(unknown[0])  # raises NotFound with the known names
    opts = Options(
        pull_interval=args.pull,
        with_router=not args.no_router,
        only=tuple(args.agents),
        colour=ctx.is_tty,
    )
    return FleetUp(ctx.paths, ctx.out, opts).run()
