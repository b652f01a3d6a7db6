"""`gh fleet up`: run the fleet in the foreground and keep it in step with `.fleet/`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from relayfleet.cli.context import Context
from relayfleet.core.errors import UsageError

if TYPE_CHECKING:
    from relayfleet.fleet.model import Fleet
    from relayfleet.up.supervisor import Options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        help="every INTERVAL (e.g. 60, 30s, 5m), git fetch and fast-forward the branch, so a "
        "merged pull request that changes .fleet/ takes effect by itself",
    )
    p.add_argument("--no-router", action="store_true", help="do not start the router")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run a copy of this fleet against the bundled fake GitHub (seeded with the fleet's "
        "repos) and fake claude: no token, no model, nothing touches your accounts; drive it "
        "with `gh fleet sandbox issue|pr|comment|label`",
    )
    p.set_defaults(func=run)


UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_interval(text: str) -> float:
    """`60`, `30s`, `5m`, `1h` -> seconds (at least one)."""
    t = text.strip().lower()
    scale = UNITS.get(t[-1:])
    try:
        value = float(t[:-1] if scale else t) * (scale or 1.0)
    except ValueError:
        raise UsageError(f"--pull: {text!r} is not an interval (e.g. 60, 30s, 5m)") from None
    if value < 1:
        raise UsageError("--pull INTERVAL must be at least 1 second")
    return value


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.up.supervisor import FleetUp, Options

    pull = parse_interval(args.pull) if args.pull is not None else None
    fleet = ctx.load()
    for name in args.agents:
        fleet.agent(name)  # an unknown name raises NotFound listing the known ones
    opts = Options(
        pull_interval=pull,
        with_router=not args.no_router,
        only=tuple(dict.fromkeys(args.agents)),
        colour=ctx.is_tty and not ctx.env.get("NO_COLOR"),
    )
    if args.sandbox:
        if pull is not None:
            raise UsageError("--sandbox runs a copy of the fleet; --pull does not apply to it")
        return _sandbox(ctx, fleet, opts)
    return FleetUp(ctx.paths, ctx.out, opts).run()


def _sandbox(ctx: Context, fleet: Fleet, opts: Options) -> int:
    """`up --sandbox`: the same supervisor, on a safe copy, against the fake GitHub."""
    import dataclasses

    from relayfleet.demo.sandbox import Sandbox, instructions
    from relayfleet.up.supervisor import FleetUp

    sb = Sandbox.create(ctx.paths, fleet)
    try:
        url = sb.start_github()
        for line in instructions(sb, url, sorted(fleet.agents)):
            print(line, file=ctx.out)
        ctx.out.flush()
        return FleetUp(sb.paths, ctx.out, dataclasses.replace(opts, env=sb.env())).run()
    finally:
        sb.close()
