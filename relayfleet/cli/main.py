"""`gh fleet` entry point: parse, dispatch, and the ONE error boundary (exit 0/1/2)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from relayfleet import __version__
from relayfleet.cli.context import Context
from relayfleet.core.errors import FleetError, UsageError

# Each module defines `register(subparsers)`; its heavy imports live inside its run functions,
# so `gh fleet --help` stays fast.
COMMAND_MODULES = (
    "init",
    "agents",
    "route",
    "host",
    "validate",
    "history",
    "doctor",
    "gateway",
    "lifecycle",
    "tell",
    "logs",
    "attach",
    "login",
    "router",
    "inbox",
    "status",
    "up",
    "demo",
    "tunnel",
)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(
        prog="gh fleet",
        description="A control plane for fleets of always-on Claude Code agents.",
    )
    parser.add_argument("--version", action="version", version=f"gh fleet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"relayfleet.cli.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None, ctx: Context | None = None) -> int:
    ctx = ctx or Context.from_process()
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("FLEET_DEBUG") == "1"
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        if not getattr(args, "func", None):
            parser.print_help(ctx.out)
            return 0 if not args_list else 2
        rc = args.func(ctx, args)
        return int(rc or 0)
    except FleetError as exc:
        if debug:
            traceback.print_exc(file=ctx.err)
        print(f"gh fleet: {exc}", file=ctx.err)
        for hint in exc.hints:
            print(f"  hint: {hint}", file=ctx.err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gh fleet: interrupted", file=ctx.err)
        return 130
    except BrokenPipeError:
        # `gh fleet list | head`: the reader went away; that is not our failure.
        return 0
    except Exception as exc:  # the one bare except: the CLI boundary
        if debug:
            traceback.print_exc(file=ctx.err)
        print(f"gh fleet: internal error: {type(exc).__name__}: {exc}", file=ctx.err)
        print("  hint: re-run with --debug (or FLEET_DEBUG=1) for a traceback", file=ctx.err)
        return 1
