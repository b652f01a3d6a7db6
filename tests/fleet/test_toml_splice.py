"""fleet/toml_splice.py: editing the entries around one `[[watch]]`/`[[route]]` gives exactly
the text that editing the whole document gives (comments, blank lines, neighbours)."""

from __future__ import annotations

from typing import Any

import pytest
import tomlkit

from relayfleet.fleet import toml_splice
from relayfleet.fleet.toml_io import aot_append, aot_remove, dump_doc, parse_doc

ROUTES = """\
# the gate
# (a preamble comment)

# --- watches ---
# first watch
[[watch]]
name = "w0"
kind = "issues"
repo = "acme/a"

# second watch
[[watch]]
name = "w1"
kind = "pulls"
repo = "acme/b"
filter = \"\"\"--state open
[[route]] inside a string is not a header\"\"\"

[[watch]]
name = "w2"
kind = "issues"
repo = "acme/c"

# --- routes ---
# route one
[[route]]
to = ["a"]
[route.match]
watch = "w0"

[[route]]
to = ["b", "c"]
[route.match]
watch = ["w1", "w2"]
association = ["OWNER"]
# trailing comment of route two

# route three
[[route]]
to = ["c"]
"""


def whole(text: str, fn: Any) -> str:
    doc = parse_doc(text, "routes.toml")
    fn(doc)
    return dump_doc(doc)


def table(**values: Any) -> Any:
    t = tomlkit.table()
    for k, v in values.items():
        t[k] = v
    return t


@pytest.mark.parametrize("key", ["watch", "route"])
def test_append_matches_the_whole_document_edit(key: str) -> None:
    new = {"name": "wn", "kind": "runs", "repo": "a/b"} if key == "watch" else {"to": ["z"]}
    got = toml_splice.append(ROUTES, "routes.toml", key, table(**new))
    assert got == whole(ROUTES, lambda d: aot_append(d, key, table(**new)))
    assert got != ROUTES


@pytest.mark.parametrize(
    ("key", "index"), [("watch", i) for i in range(3)] + [("route", i) for i in range(3)]
)
def test_remove_matches_the_whole_document_edit(key: str, index: int) -> None:
    got = toml_splice.remove(ROUTES, "routes.toml", key, index)

    def fn(d: Any) -> None:
        target = d[key][index]
        aot_remove(d, key, lambda t: t is target)

    assert got == whole(ROUTES, fn)
    assert len(parse_doc(got, "r")[key]) == 2


def test_update_edits_one_entry_in_place() -> None:
    def narrow(t: Any) -> None:
        t["match"]["watch"] = "w2"

    got = toml_splice.update(ROUTES, "routes.toml", "route", 1, narrow)
    assert got == whole(ROUTES, lambda d: narrow(d["route"][1]))
    assert 'watch = "w2"' in got


def test_a_split_array_falls_back_to_the_whole_document() -> None:
    split = ROUTES + '\n[[watch]]\nname = "late"\nkind = "issues"\nrepo = "a/b"\n'
    got = toml_splice.append(split, "routes.toml", "watch", table(name="n", kind="runs"))
    assert got == whole(split, lambda d: aot_append(d, "watch", table(name="n", kind="runs")))


def test_blocks_never_start_inside_a_multiline_string() -> None:
    lines = ROUTES.splitlines(keepends=True)
    keys = [b.key for b in toml_splice.blocks(lines)]
    assert keys == [None, "watch", "watch", "watch", "route", "route", "route"]
