"""Edit one entry of an array of tables in a large TOML file by re-parsing only its neighbours.

tomlkit keeps every comment, but parsing a 14,000-line `routes.toml` (1,000 watches and 1,000
routes) takes seconds. An edit touches one `[[watch]]` or `[[route]]` entry and, for the comments
that travel with it (`toml_io.aot_append` / `aot_remove`), the entries just before and after. So
the file is cut into top-level blocks at header lines, the blocks around the entry are parsed as
a small document, edited with the same functions, and spliced back. A layout this does not
understand (the array split by other tables, a plain `[watch]` table) falls back to the whole
document: the result is the same, only slower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tomlkit.toml_document import TOMLDocument

from relayfleet.fleet.toml_read import _HEADER, _KEYLINE, _split_key

# change(doc, offset): edit `doc`, whose first `[[key]]` entry is entry `offset` of the file.
Change = Callable[[TOMLDocument, int], None]


@dataclass(frozen=True)
class Block:
    key: str | None  # the first segment of the header that opens it; None: text before any
    aot: bool  # opened by `[[key]]`
    start: int  # 0-based index of its first line


def blocks(lines: list[str]) -> list[Block]:
    """Top-level blocks: a new one at every single-key header (`[[route]]`, `[fleet]`) and at
    every header whose first key differs from the block's (`[route.match]` stays with its
    `[[route]]`). Lines inside multi-line strings are never headers."""
    out = [Block(None, False, 0)]
    in_multiline: str | None = None
    for n, line in enumerate(lines):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if line.lstrip().startswith("["):
            h = _HEADER.match(line)
            if h and "=" not in line.split("]")[0]:
                segs = _split_key(h.group(2))
                if len(segs) == 1 or segs[0] != out[-1].key:
                    out.append(Block(segs[0], h.group(1) == "[[" and len(segs) == 1, n))
                continue
        if '"""' not in line and "'''" not in line:
            continue  # only a multi-line string can hide a header: skip the key parse
        k = _KEYLINE.match(line)
        if k:
            rest = line[k.end() :]
            for q in ('"""', "'''"):
                if rest.count(q) % 2 == 1:
                    in_multiline = q
    if len(out) > 1 and out[1].start == 0:
        out.pop(0)  # the file opens with a header: no preamble
    return out


def splice(text: str, rel: str, key: str, index: int | None, change: Change) -> str:
    """`text` with `change` applied around entry `index` (0-based) of `[[key]]`; None means
    after the last entry (an append). Same result as editing the whole document."""
    from relayfleet.fleet.toml_io import dump_doc, parse_doc

    lines = text.splitlines(keepends=True)
    bl = blocks(lines)
    entries = [i for i, b in enumerate(bl) if b.key == key]
    contiguous = bool(entries) and entries == list(range(entries[0], entries[-1] + 1))
    if not contiguous or not all(bl[i].aot for i in entries):
        doc = parse_doc(text, rel)
        change(doc, 0)
        return dump_doc(doc)
    if index is None:
        index = len(entries) - 1
    if not 0 <= index < len(entries):
        raise IndexError(f"no entry {index} of [[{key}]]")
    at = entries[index]
    lo, hi = max(0, at - 1), min(len(bl) - 1, at + 1)
    offset = sum(1 for i in entries if i < lo)
    start = bl[lo].start
    end = bl[hi + 1].start if hi + 1 < len(bl) else len(lines)
    doc = parse_doc("".join(lines[start:end]), rel)
    change(doc, offset)
    return "".join(lines[:start]) + dump_doc(doc) + "".join(lines[end:])


def append(text: str, rel: str, key: str, table: object) -> str:
    """`text` with `table` appended to `[[key]]` (`toml_io.aot_append`)."""
    from relayfleet.fleet.toml_io import aot_append

    def change(doc: TOMLDocument, offset: int) -> None:
        aot_append(doc, key, table)  # type: ignore[arg-type]

    return splice(text, rel, key, None, change)


def remove(text: str, rel: str, key: str, index: int) -> str:
    """`text` without entry `index` of `[[key]]` and its own comment block (`aot_remove`)."""
    from relayfleet.fleet.toml_io import aot_remove

    def change(doc: TOMLDocument, offset: int) -> None:
        target = doc[key][index - offset]
        aot_remove(doc, key, lambda t: t is target)

    return splice(text, rel, key, index, change)


def update(text: str, rel: str, key: str, index: int, edit: Callable[[object], None]) -> str:
    """`text` with `edit(table)` applied to entry `index` of `[[key]]` in place."""

    def change(doc: TOMLDocument, offset: int) -> None:
        edit(doc[key][index - offset])

    return splice(text, rel, key, index, change)


__all__ = ["Block", "append", "blocks", "remove", "splice", "update"]
