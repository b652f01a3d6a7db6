"""The flags every mutating command shares: `--wait SECONDS` (the fleet lock) and
`--include-pending` (take uncommitted edits of the changed files into the commit)."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context
from relayfleet.core.fleetlock import DEFAULT_WAIT_S
from relayfleet.fleet.txn import EditOptions


def add_edit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"wait this long for another gh fleet edit to finish (default {DEFAULT_WAIT_S:g})",
    )
    p.add_argument(
        "--include-pending",
        action="store_true",
        help="take uncommitted edits of the files it changes into its commit (named in the "
        "subject) instead of refusing",
    )


def edit_options(ctx: Context, args: argparse.Namespace) -> EditOptions:
    def notify(line: str) -> None:
        print(line, file=ctx.err, flush=True)

    wait = getattr(args, "wait", DEFAULT_WAIT_S)
    if wait < 0:
        from relayfleet.core.errors import UsageError

        raise UsageError("--wait must be 0 or more seconds")
    return EditOptions(
        wait=wait,
        include_pending=bool(getattr(args, "include_pending", False)),
        notify=notify,
    )
