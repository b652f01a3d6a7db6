"""Read and write `.fleet/*.toml` keeping the user's comments, order and formatting.

Reads for the model go through `tomllib` (`parse_plain`, fast and strict); edits go through
tomlkit documents (`load_doc` / `save_doc`). A file that fails to parse raises ConfigError with
`file:line` and is never written back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import ParseError
from tomlkit.items import AoT, Comment, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from relayfleet.core.atomic import write_atomic
from relayfleet.core.errors import ConfigError
from relayfleet.fleet.toml_read import HINT, last_line, line_of, parse_plain

_TOMLKIT_AT = re.compile(r"\s*at line (\d+) col (\d+)\s*$")


def parse_doc(text: str, rel: str) -> TOMLDocument:
    """Parse TOML for editing (tomlkit); a syntax error is ConfigError(file=rel, line=N)."""
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        detail = _TOMLKIT_AT.sub("", str(exc)).rstrip(".") or "invalid TOML"
        line = exc.line or None
        if "\\x00" in detail or "end of file" in detail.lower():
            # tomlkit reads past the end as NUL and reports a made-up position there.
            detail, line = "unexpected end of the file", last_line(text)
        raise ConfigError(
            f"TOML syntax error: {detail}",
            file=rel,
            line=line or last_line(text),
            hints=[HINT],
        ) from exc
    except (ValueError, KeyError) as exc:  # tomlkit raises plain errors on a few malformed inputs
        raise ConfigError(f"TOML syntax error: {exc}", file=rel, line=last_line(text)) from exc


def load_doc(path: Path, rel: str) -> TOMLDocument:
    """Read and parse `path` for editing; `rel` (e.g. `.fleet/routes.toml`) names it in errors."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=rel) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", file=rel) from exc
    return parse_doc(text, rel)


def dump_doc(doc: TOMLDocument) -> str:
    return tomlkit.dumps(doc)


def save_doc(path: Path, doc: TOMLDocument) -> None:
    """Write atomically. Only documents that parsed can reach here, so a broken file is never
    replaced; the output is re-parsed first so we never write something we could not read."""
    text = dump_doc(doc)
    parse_plain(text, str(path))
    write_atomic(Path(path), text)


# -- arrays of tables, keeping the comments with the table they describe ---------------------
#
# tomlkit stores the comment and blank lines that stand *above* a `[[x]]` header as trailing
# trivia of the *previous* table (deps-feasibility §2). A plain append would land after a
# following section comment; a plain delete would take the next table's comment with it.


def _tail(tbl: Table) -> Table:
    """The table whose body ends the text of `tbl`: its last sub-table (`[route.match]`), if any."""
    while tbl.value.body:
        key, last = tbl.value.body[-1]
        if key is None or not isinstance(last, Table):
            break
        tbl = last
    return tbl


def _pop_trailing(tbl: Table) -> list[tuple[Any, Any]]:
    """Detach the comment and blank lines at the end of `tbl` (they describe what follows)."""
    body = _tail(tbl).value.body
    out: list[tuple[Any, Any]] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Comment | Whitespace):
        out.insert(0, body.pop())
    return out


def _own_block(trailing: list[tuple[Any, Any]]) -> int:
    """Where the comment block directly above the next header starts (after the last blank)."""
    i = len(trailing)
    while i > 0 and isinstance(trailing[i - 1][1], Comment):
        i -= 1
    return i


def aot_append(doc: TOMLDocument | Container, key: str, table: Table | dict[str, Any]) -> None:
    """Append `table` to the array of tables `key` (creating it at the end of the document),
    right after its last entry and before any comment that introduces what follows."""
    if not isinstance(table, Table):
        t = tomlkit.table()
        for k, v in table.items():
            t[k] = v
        table = t
    if key not in doc:
        if len(doc.body) and not dump_doc(doc).endswith("\n\n"):  # type: ignore[arg-type]
            doc.add(tomlkit.nl())
        aot = tomlkit.aot()
        aot.append(table)
        doc.append(key, aot)
        return
    aot = doc[key]
    if not isinstance(aot, AoT):
        raise ConfigError(f"{key!r} is not an array of tables ([[{key}]])")
    if len(aot) == 0:
        aot.append(table)
        return
    last = aot[-1]
    trailing = _pop_trailing(last)
    _tail(last).value.body.append((None, Whitespace("\n")))  # a blank line between entries
    aot.append(table)
    aot[-1].trivia.indent = aot[-1].trivia.indent.lstrip("\n")  # we added the blank line
    # Whatever stood after the old last entry (a section comment, blank lines) now follows ours.
    _tail(aot[-1]).value.body.extend(trailing)


def aot_remove(doc: TOMLDocument | Container, key: str, pred: Callable[[Table], bool]) -> list[int]:
    """Remove every table of `key` for which `pred` holds, with the comment block directly
    above it, keeping the comments of what follows. Returns the 0-based indexes removed; the
    key goes away when emptied."""
    if key not in doc:
        return []
    aot = doc[key]
    removed: list[int] = []
    orphan = ""  # comments that followed the array's last table when it goes away
    i = 0
    orig = 0
    while i < len(aot):
        if not pred(aot[i]):
            i += 1
            orig += 1
            continue
        trailing = _pop_trailing(aot[i])
        del aot[i]
        removed.append(orig)
        orig += 1
        if i > 0:
            prev = aot[i - 1]
            own = _pop_trailing(prev)
            _tail(prev).value.body.extend(
                own[: _own_block(own)] + trailing[_leading_blanks(trailing) :]
            )
            if not trailing and i == len(aot):
                _trim_end(prev)
        else:
            _drop_block_before(doc, key)
            if i < len(aot):
                nxt = aot[i]
                text = "".join(t[1].as_string() for t in trailing[_leading_blanks(trailing) :])
                nxt.trivia.indent = text + nxt.trivia.indent
            else:
                orphan = "".join(t[1].as_string() for t in trailing[_leading_blanks(trailing) :])
    if removed and len(aot) == 0:
        slot = next(j for j, (k, _) in enumerate(doc.body) if k is not None and k.key == key)
        del doc[key]
        if orphan.strip():
            # Keep e.g. `# --- routes ---` that introduced the next section (in place, so the
            # container's key indexes stay valid).
            doc.body[slot] = (None, Whitespace(orphan))
    return removed


def _leading_blanks(trailing: list[tuple[Any, Any]]) -> int:
    n = 0
    while n < len(trailing) and isinstance(trailing[n][1], Whitespace):
        n += 1
    return n


def _trim_end(tbl: Table) -> None:
    """The file now ends with `tbl`: drop the blank lines that separated it from the removed one."""
    body = _tail(tbl).value.body
    while body and body[-1][0] is None and isinstance(body[-1][1], Whitespace):
        body.pop()


def _drop_block_before(doc: TOMLDocument | Container, key: str) -> None:
    """Remove the comment block that stands directly above the first `[[key]]`: it lives on the
    element before the array (a table's tail, or loose comments in the document body)."""
    body = doc.body
    idx = next((j for j, (k, _) in enumerate(body) if k is not None and k.key == key), None)
    if idx is None or idx == 0:
        return
    prev = body[idx - 1][1]
    if isinstance(prev, Table):
        own = _pop_trailing(prev)
        _tail(prev).value.body.extend(own[: _own_block(own)])
    elif isinstance(prev, AoT) and len(prev):
        own = _pop_trailing(prev[-1])
        _tail(prev[-1]).value.body.extend(own[: _own_block(own)])
    else:
        j = idx - 1
        while j >= 0 and body[j][0] is None and isinstance(body[j][1], Comment):
            body[j] = (None, Null())  # in place: keyed entries keep their indexes
            j -= 1


__all__ = [
    "aot_append",
    "aot_remove",
    "dump_doc",
    "line_of",
    "load_doc",
    "parse_doc",
    "parse_plain",
    "save_doc",
]
