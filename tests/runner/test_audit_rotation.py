"""The permission audit log stays bounded: it rotates by size, under concurrent appenders, and
its readers see one history across the rotated generations."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from relayfleet.core.paths import FleetPaths
from relayfleet.runner import permissions as pm

CAP = 2000
ENTRY = {"agent": "coder", "tool": "Bash", "detail": "git status", "decision": "allow"}

# One appender process: `n` decisions of agent `who`, through the runner's own audit().
APPENDER = """
import sys
from pathlib import Path
from relayfleet.core.paths import FleetPaths
from relayfleet.runner import permissions as pm
root, who, n, cap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
paths = FleetPaths(Path(root))
for i in range(n):
    pm.audit(paths, {"agent": who, "n": i, "pad": "x" * 40}, max_bytes=cap, keep=10_000)
"""


def generations(paths: FleetPaths) -> list[Path]:
    log = pm.audit_log(paths)
    return sorted(log.parent.glob("audit.jsonl*"))


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_past_its_cap_the_audit_log_rotates_and_the_oldest_generation_is_dropped(
    tmp_path: Path,
) -> None:
    paths = FleetPaths(tmp_path)
    log = pm.audit_log(paths)
    n = 0
    while n < 200 or not log.exists():  # (the last append may have rotated: one more)
        pm.audit(paths, {**ENTRY, "n": n}, max_bytes=CAP, keep=2)
        n += 1
    assert [p.name for p in generations(paths)] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    line = len(log.read_bytes().splitlines()[0]) + 1
    assert log.stat().st_size < CAP
    for p in generations(paths)[1:]:  # each rotated one reached the cap, by less than a line
        assert CAP <= p.stat().st_size < CAP + line
    assert {mode(p) for p in generations(paths)} == {0o600}
    # The reader: the newest entries, oldest first, across the boundaries, none missing.
    seen = [e["n"] for e in pm.audit_entries(paths)]
    assert seen == list(range(seen[0], n))
    assert len(seen) > len(log.read_bytes().splitlines())  # the rotated ones are read too
    assert seen[0] > 0  # the oldest generation was dropped


def test_the_default_cap_is_a_module_constant() -> None:
    assert pm.AUDIT_MAX_BYTES == 5 << 20 and pm.AUDIT_KEEP >= 1


def test_a_gap_left_by_a_crash_mid_rotation_keeps_the_order(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    log = pm.audit_log(paths)
    for i in range(60):
        pm.audit(paths, {**ENTRY, "n": i}, max_bytes=CAP, keep=3)
    # A crash after `.1 -> .2` and before `audit.jsonl -> .1`: `.1` is missing.
    one, two = log.with_name("audit.jsonl.1"), log.with_name("audit.jsonl.2")
    assert one.exists()
    two.unlink(missing_ok=True)
    one.rename(two)
    for i in range(60, 120):
        pm.audit(paths, {**ENTRY, "n": i}, max_bytes=CAP, keep=3)
    seen = [e["n"] for e in pm.audit_entries(paths)]
    assert seen == sorted(seen) and seen[-1] == 119
    assert seen == list(range(seen[0], 120))


def test_concurrent_appenders_lose_no_line_and_readers_never_see_a_gap(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    paths.state.mkdir(parents=True)
    writers, n = 4, 150
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), f"w{k}", str(n), str(CAP)])
        for k in range(writers)
    ]
    reads = 0
    while any(p.poll() is None for p in procs):
        # Mid-rotation or not, a reader sees each writer's lines as one unbroken run from 0.
        by: dict[str, list[int]] = {}
        for e in pm.audit_entries(paths):
            by.setdefault(e["agent"], []).append(e["n"])
        assert all(ns == list(range(len(ns))) for ns in by.values()), by
        reads += 1
    assert [p.wait() for p in procs] == [0] * writers
    assert reads > 1
    files = generations(paths)
    assert len(files) > 10  # it rotated many times while all of them appended
    assert {mode(p) for p in files} == {0o600}
    for p in files:  # no torn or interleaved line anywhere
        raw = p.read_bytes()
        assert raw.endswith(b"\n")
        assert all(json.loads(x)["agent"].startswith("w") for x in raw.splitlines())
    entries = pm.audit_entries(paths)
    assert len(entries) == writers * n
    for k in range(writers):
        assert [e["n"] for e in entries if e["agent"] == f"w{k}"] == list(range(n))
