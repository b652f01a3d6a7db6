"""Tables and --json output (stable shapes, ARCHITECTURE 3.9)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO


def print_json(out: TextIO, obj: Any) -> None:
    out.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def print_table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    body = [["" if c is None else str(c) for c in r] for r in rows]
    cells = [[str(h).upper() for h in headers], *body]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
