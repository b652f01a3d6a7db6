"""Read-only TOML helpers (stdlib only, so `gh fleet list` starts fast): parse to plain dicts
with file:line errors, and find the line of a key for messages. Edits live in `toml_io`."""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Sequence
from typing import Any

from relayfleet.core.errors import ConfigError

HINT = "fix the file by hand (it was left untouched), then run `gh fleet validate`"
_TOMLLIB_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def parse_plain(text: str, rel: str) -> dict[str, Any]:
    """Parse TOML into plain dicts (tomllib); a syntax error is ConfigError(file=rel, line=N)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOMLLIB_AT.search(msg)
        line = int(m.group(1)) if m else None
        if line is None and msg.endswith("(at end of document)"):
            line = last_line(text)  # an unclosed value: point at where the file stops
            msg = msg.removesuffix("(at end of document)").rstrip() + " at the end of the file"
        detail = _TOMLLIB_AT.sub("", msg) or "invalid TOML"
        raise ConfigError(
            f"TOML syntax error: {detail}",
            file=rel,
            line=line,
            hints=[HINT],
        ) from exc


def last_line(text: str) -> int:
    """The 1-based number of the file's last line (1 for an empty file)."""
    return max(1, len(text.splitlines()))


# -- locating keys for file:line messages ----------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[|\[)\s*(.+?)\s*(\]\]|\])\s*(#.*)?$")
_KEYLINE = re.compile(
    r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="""
)
_SEG = re.compile(r"""\s*("([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")


_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


def _split_key(raw: str) -> list[str]:
    if _BARE.match(raw):
        return [raw]  # the common case, without the segment scan
    out: list[str] = []
    for m in _SEG.finditer(raw):
        out.append(m.group(2) if m.group(2) is not None else m.group(3) or m.group(4) or "")
    return out


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line that defines `path` (e.g. `("route", 1, "match", "kind")`, indexes of
    arrays of tables 0-based), else the line of its nearest enclosing table or key found."""
    index = _line_index(text)
    want = tuple(path)
    for n in range(len(want), 0, -1):
        line = index.get(want[:n])
        if line is not None:
            return line
    return None


@functools.lru_cache(maxsize=32)
def _line_index(text: str) -> dict[tuple[str | int, ...], int]:
    """Every table and key path of `text` -> the first line that defines it. Built once per
    text (`validate` asks for a line per finding: thousands of findings on one file must not
    rescan it each time)."""
    index: dict[tuple[str | int, ...], int] = {}
    aot_count: dict[tuple[str | int, ...], int] = {}
    current: tuple[str | int, ...] = ()
    in_multiline: str | None = None

    def resolve(segs: list[str]) -> tuple[str | int, ...]:
        out: list[str | int] = []
        for s in segs:
            out.append(s)
            idx = aot_count.get(tuple(out))
            if idx is not None:
                out.append(idx)
        return tuple(out)

    for lineno, line in enumerate(text.splitlines(), 1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        h = _HEADER.match(line)
        if h and "=" not in line.split("]")[0]:
            segs = _split_key(h.group(2))
            if h.group(1) == "[[":
                parent = resolve(segs[:-1])
                base = (*parent, segs[-1])
                aot_count[base] = aot_count.get(base, -1) + 1
                current = (*base, aot_count[base])
            else:
                current = resolve(segs)
            index.setdefault(current, lineno)
            continue
        k = _KEYLINE.match(line)
        if k:
            index.setdefault((*current, *_split_key(k.group(1))), lineno)
            rest = line[k.end() :]
            for q in ('"""', "'''"):
                if rest.count(q) % 2 == 1:
                    in_multiline = q
    return index
