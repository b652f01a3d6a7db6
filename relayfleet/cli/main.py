"""`gh fleet` entry point: parse, dispatch, and the ONE error boundary (exit 0/1/2)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

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
    "import_seed",
    "sandbox",
    "webhook",
    "quarantine",
    "budget",
    "approvals",
)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, hidden_debug: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if hidden_debug:
            # `gh fleet list --debug` must work too: argparse hands everything after the command
            # to the subcommand's parser, which would reject a top-level flag.
            self.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if extras and self.prog != "gh fleet":
            # Report leftovers from the deepest parser, so the hint names the right `--help`.
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(
        prog="gh fleet",
        description="A control plane for fleets of always-on Claude Code agents.",
        hidden_debug=False,
    )
    parser.add_argument("--version", action="version", version=f"gh fleet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"relayfleet.cli.commands.{name}").register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """`gh fleet X --help` opens with X's one-line help (argparse shows it only in the parent)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None and helps.get(name):
                    child.description = str(helps[name])
                _describe(child)


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
