"""Tables and --json output (stable shapes, ARCHITECTURE 3.9)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from relayfleet.cli.context import Context
    from relayfleet.fleet.edit import EditResult


def print_json(out: TextIO, obj: Any) -> None:
    out.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def print_table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    body = [["" if c is None else str(c) for c in r] for r in rows]
    cells = [[str(h).upper() for h in headers], *body]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def report_edit(ctx: Context, result: EditResult) -> int:
    """What a `fleet.edit` call did: its warnings on stderr, its sentence and commit on stdout."""
    for w in result.warnings:
        print(f"gh fleet: warning: {w}", file=ctx.err)
    print(result.sentence, file=ctx.out)
    if result.commit:
        print(f"Committed {result.commit[:7]}: {result.message}", file=ctx.out)
    return 0
