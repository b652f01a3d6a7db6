"""Checks shared by the parallel-edit tests: every reported change is in HEAD, each commit's
semantic diff is exactly what its subject says, ports are unique, HEAD validates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from relayfleet.cli.commands.history import commit_changes
from relayfleet.fleet.gitops import fleet_log, fleet_texts_at
from relayfleet.fleet.schema import load_fleet_from_texts
from relayfleet.fleet.validate import validate_texts
from tests.conftest import git

COMMITTED = re.compile(r"^Committed ([0-9a-f]{7}): (.+)$", re.M)


def spawn(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`gh fleet <args>` as its own process (the module, so no launcher start-up per call)."""
    return subprocess.Popen(
        [sys.executable, "-m", "relayfleet", *args],
        cwd=root,
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reported(out: str) -> list[tuple[str, str]]:
    """(short sha, subject) of each `Committed …` line a command printed."""
    return COMMITTED.findall(out)


def expected_changes(subject: str) -> tuple[list[str], list[str]] | None:
    """What the semantic diff of a commit with this subject must hold: patterns that each match
    exactly one of its lines, and patterns extra lines may match (a pruning removal). None: a
    subject this checker does not know."""
    text = subject.removeprefix("fleet: ")
    if m := re.match(r"\+agent (\S+) \((\w+)\)$", text):
        name, role = m.groups()
        lines = [rf"\+agent {name} \("]
        if role == "coder":  # every coder here gets --repo: a starter watch and route
            lines += [rf"\+watch {name}-assigned \(", r"\+route #\d+ \("]
        return lines, []
    if m := re.match(r"-agent (\S+) \(", text):
        return [rf"-agent {m.group(1)}$"], [r"-route #\d+ \(", r"~route #\d+ ", r"-watch \S+$"]
    if m := re.match(r"add watch (\S+) \(", text):
        return [rf"\+watch {re.escape(m.group(1))} \("], []
    if m := re.match(r"remove watch (\S+)$", text):
        return [rf"-watch {re.escape(m.group(1))}$"], []
    if m := re.match(r"add route #(\d+) \(", text):
        return [rf"\+route #{m.group(1)} \("], []
    if m := re.match(r"remove route #(\d+) \(", text):
        return [rf"-route #{m.group(1)} \("], []
    return None


def check_repo(root: Path, done: list[tuple[str, str]]) -> None:
    """The invariants after any set of edits: raises AssertionError naming the first breach."""
    log = fleet_log(root, n=10_000)
    by_short = {c.short: c for c in log}
    for short, subject in done:
        assert short in by_short, f"reported commit {short} ({subject}) is not in HEAD's history"
        assert by_short[short].subject == subject, (short, subject, by_short[short].subject)
    for c in log:
        expected = expected_changes(c.subject)
        if expected is None:
            continue
        required, optional = expected
        got = commit_changes(root, c.sha, c.parents[0] if c.parents else None)
        for w in required:
            assert sum(bool(re.match(w, line)) for line in got) == 1, (c.subject, got)
        for line in got:
            assert any(re.match(w, line) for w in required + optional), (c.subject, got)
    texts = fleet_texts_at(root, "HEAD")
    errors = [str(p) for p in validate_texts(texts) if p.level == "error"]
    assert not errors, errors
    fleet = load_fleet_from_texts(texts)
    ports = [a.port for a in fleet.agents.values()]
    assert len(ports) == len(set(ports)), sorted(ports)
    assert git(root, "status", "--porcelain", "--", ".fleet") == ""
