"""tomlkit edits keep the user's bytes: comments stay with the table they describe."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayfleet.core.errors import ConfigError
from relayfleet.fleet.toml_io import (
    aot_append,
    aot_remove,
    dump_doc,
    line_of,
    load_doc,
    parse_doc,
    parse_plain,
    save_doc,
)

ROUTES = """\
# The gate.

# --- watches ---
[[watch]]
name = "a"   # first
kind = "issues"

# the second watch
[[watch]]
name = "b"
kind = "pulls"

# --- routes ---

# to the coder
[[route]]
to = ["coder"]
[route.match]
watch = "a"

# to the reviewer
[[route]]
to = ["reviewer"]
[route.match]
watch = "b"
"""


def test_parse_then_dump_is_byte_identical() -> None:
    assert dump_doc(parse_doc(ROUTES, "r")) == ROUTES


def test_append_goes_after_the_last_entry_not_after_the_next_section_comment() -> None:
    doc = parse_doc(ROUTES, "r")
    aot_append(doc, "watch", {"name": "c", "kind": "runs"})
    out = dump_doc(doc)
    assert out == ROUTES.replace(
        'kind = "pulls"\n', 'kind = "pulls"\n\n[[watch]]\nname = "c"\nkind = "runs"\n'
    )


def test_remove_middle_takes_its_own_comment_and_keeps_the_next_sections() -> None:
    doc = parse_doc(ROUTES, "r")
    assert aot_remove(doc, "watch", lambda t: t["name"] == "b") == [1]
    out = dump_doc(doc)
    assert "# the second watch" not in out
    assert "# --- routes ---" in out
    gone = '# the second watch\n[[watch]]\nname = "b"\nkind = "pulls"\n\n'
    assert out == ROUTES.replace(gone, "")


def test_remove_first_keeps_the_next_tables_comment() -> None:
    doc = parse_doc(ROUTES, "r")
    aot_remove(doc, "route", lambda t: t["to"] == ["coder"])
    out = dump_doc(doc)
    gone = '# to the coder\n[[route]]\nto = ["coder"]\n[route.match]\nwatch = "a"\n\n'
    assert out == ROUTES.replace(gone, "")


def test_remove_last_route_with_a_subtable_drops_its_comment() -> None:
    doc = parse_doc(ROUTES, "r")
    aot_remove(doc, "route", lambda t: t["to"] == ["reviewer"])
    out = dump_doc(doc)
    assert "# to the reviewer" not in out
    assert out.endswith('watch = "a"\n')
    assert tomllib.loads(out)["route"] == [{"to": ["coder"], "match": {"watch": "a"}}]


def test_removing_every_entry_keeps_the_following_section_comment() -> None:
    doc = parse_doc(ROUTES, "r")
    aot_remove(doc, "watch", lambda t: True)
    out = dump_doc(doc)
    assert "watch" not in tomllib.loads(out)
    assert "# --- routes ---" in out and "# to the coder" in out


def test_append_creates_the_array_in_an_empty_document() -> None:
    doc = parse_doc("# only a comment\n", "r")
    aot_append(doc, "watch", {"name": "x"})
    aot_append(doc, "watch", {"name": "y"})
    assert dump_doc(doc) == '# only a comment\n\n[[watch]]\nname = "x"\n\n[[watch]]\nname = "y"\n'


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as e:
        parse_doc("a = 1\nb = = 2\n", ".fleet/routes.toml")
    assert str(e.value).startswith(".fleet/routes.toml:2: TOML syntax error")
    with pytest.raises(ConfigError) as e2:
        parse_plain("a = 1\n\n[x\n", ".fleet/fleet.toml")
    assert str(e2.value).startswith(".fleet/fleet.toml:3: TOML syntax error")


def test_save_is_atomic_and_load_refuses_a_broken_file(tmp_path: Path) -> None:
    p = tmp_path / "routes.toml"
    p.write_text(ROUTES)
    doc = load_doc(p, ".fleet/routes.toml")
    doc["watch"][0]["kind"] = "runs"
    save_doc(p, doc)
    assert p.read_text() == ROUTES.replace('kind = "issues"', 'kind = "runs"')
    assert [x.name for x in tmp_path.iterdir()] == ["routes.toml"]  # no temp files left
    p.write_text("[[watch]\n")
    with pytest.raises(ConfigError):
        load_doc(p, ".fleet/routes.toml")


def test_line_of_finds_keys_in_arrays_of_tables_and_subtables() -> None:
    assert line_of(ROUTES, ("watch", 1, "kind")) == 11
    assert line_of(ROUTES, ("route", 1, "match", "watch")) == 25
    assert line_of(ROUTES, ("route", 1, "match", "label")) == 24  # falls back to the table
    assert line_of(ROUTES, ("route", 0)) == 16
    assert line_of(ROUTES, ("nothing",)) is None


# -- property: load -> edit -> save -> load keeps every untouched byte and the edit ------------

_word = st.text(alphabet="abcdefghij klmnop-", min_size=1, max_size=12).map(str.strip).filter(bool)


@st.composite
def _files(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    header = draw(st.lists(_word, max_size=2))
    n = draw(st.integers(0, 5))
    blocks = []
    for i in range(n):
        comments = draw(st.lists(_word, max_size=2))
        inline = draw(st.one_of(st.none(), _word))
        kind = draw(st.sampled_from(["issues", "pulls", "runs"]))
        text = "".join(f"# {c}\n" for c in comments)
        text += f'[[watch]]\nname = "w{i}"' + (f"  # {inline}" if inline else "") + "\n"
        text += f'kind = "{kind}"\npoll_sec = {draw(st.integers(1, 999))}\n'
        blocks.append(text)
    head = "".join(f"# {c}\n" for c in header) + ("\n" if header else "")
    return head, blocks, [f"w{i}" for i in range(n)]


def _join(head: str, blocks: list[str]) -> str:
    return head + "\n".join(blocks)


@settings(max_examples=150, deadline=None)
@given(_files(), st.data())
def test_remove_keeps_every_other_byte(
    f: tuple[str, list[str], list[str]], data: st.DataObject
) -> None:
    head, blocks, names = f
    if not blocks:
        return
    k = data.draw(st.integers(0, len(blocks) - 1))
    doc = parse_doc(_join(head, blocks), "r")
    aot_remove(doc, "watch", lambda t: t["name"] == names[k])
    out = dump_doc(parse_doc(dump_doc(doc), "r"))
    assert out == _join(head, blocks[:k] + blocks[k + 1 :]) or (
        # removing the only table may leave the header's blank line
        len(blocks) == 1 and out.strip() == head.strip()
    )
    assert [w["name"] for w in tomllib.loads(out).get("watch", [])] == names[:k] + names[k + 1 :]


@settings(max_examples=150, deadline=None)
@given(_files(), st.integers(1, 999))
def test_append_and_value_edit_keep_every_other_byte(
    f: tuple[str, list[str], list[str]], poll: int
) -> None:
    head, blocks, _names = f
    text = _join(head, blocks)
    doc = parse_doc(text, "r")
    aot_append(doc, "watch", {"name": "new", "kind": "runs"})
    out = dump_doc(doc)
    sep = "\n" if text and not text.endswith("\n\n") else ""
    assert out == text + sep + '[[watch]]\nname = "new"\nkind = "runs"\n'
    assert tomllib.loads(out)["watch"][-1] == {"name": "new", "kind": "runs"}
    if blocks:
        doc = parse_doc(text, "r")
        doc["watch"][0]["poll_sec"] = poll
        edited = dump_doc(doc)
        before, after = text.splitlines(), edited.splitlines()
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) <= 1 and all(after[i] == f"poll_sec = {poll}" for i in changed)
