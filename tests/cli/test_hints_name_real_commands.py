"""Every `gh fleet …` that the program or its docs tell a user to run is a command that exists.

Collects each mention from the package's source and templates, the README and docs/, resolves
it against the real parser (a command, then a subcommand where the command has them), and runs
`--help` on it through the real entry point.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest

from relayfleet.cli.main import build_parser, main
from tests.conftest import PROJECT

MENTION = re.compile(r"gh fleet ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
WORD = re.compile(r"[a-z][a-z-]*")
# "another gh fleet edit (pid N)" is the lock's wording for a running edit, not a command.
PROSE = {"edit"}


def sources() -> list[Path]:
    files = sorted((PROJECT / "relayfleet").rglob("*.py"))
    files += sorted((PROJECT / "relayfleet" / "templates").rglob("*"))
    files += sorted((PROJECT / "plugins").rglob("*.md"))
    files += [PROJECT / "README.md", *sorted((PROJECT / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def mentions() -> dict[tuple[str, ...], str]:
    """Each distinct mention (as words) and one place it was found."""
    found: dict[tuple[str, ...], str] = {}
    for f in sources():
        text = f.read_text(errors="replace")
        for m in MENTION.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            words = tuple(m.group(1).split())
            if words[0] not in PROSE:
                found.setdefault(words, f"{f.relative_to(PROJECT)}:{line}")
    return found


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def resolve(words: tuple[str, ...]) -> list[str] | str:
    """The command path the words name, or why they name none."""
    top = subcommands(build_parser())
    if words[0] not in top:
        return f"no command {words[0]!r}"
    path = [words[0]]
    subs = subcommands(top[words[0]])
    if len(words) > 1 and subs and WORD.fullmatch(words[1]):
        if words[1] not in subs:
            return f"`gh fleet {words[0]}` has no subcommand {words[1]!r}"
        path.append(words[1])
    return path


ALL = mentions()


def test_the_collection_finds_the_hints() -> None:
    # A collector that finds nothing would pass whatever the hints say.
    assert len(ALL) > 30
    assert ("logs",) in {w[:1] for w in ALL}
    assert resolve(("agent", "set")) == "no command 'agent'"


@pytest.mark.parametrize("words", sorted(ALL), ids=lambda w: " ".join(w))
def test_each_named_command_exists_and_has_help(words: tuple[str, ...]) -> None:
    path = resolve(words)
    assert isinstance(path, list), f"{ALL[words]}: `gh fleet {' '.join(words)}`: {path}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert "usage: gh fleet " + " ".join(path) in out.getvalue()
