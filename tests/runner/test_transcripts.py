"""Counting transcript usage incrementally: only appended bytes are read, and the figures are
those a full read gives (the reference below is the full read the budget used to do)."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Budget, Fleet
from relayfleet.runner import budget as b
from relayfleet.runner.transcripts import TranscriptTally

DAY = "2026-12-03"
NOON = 1796299200.0  # 2026-12-03T12:00:00Z


def line(mid: str, ts: str | None = f"{DAY}T10:00:00Z", **usage: int) -> str:
    row: dict[str, object] = {"type": "assistant", "message": {"id": mid, "usage": usage}}
    if ts is not None:
        row["timestamp"] = ts
    return json.dumps(row) + "\n"


def reference(files: list[Path]) -> dict[str, dict[str, int]]:
    """The full read, line for line as budget.transcript_usage did it before it was incremental."""
    out: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for ln in text.splitlines():
            if '"usage"' not in ln:
                continue
            try:
                row = json.loads(ln)
            except ValueError:
                continue
            msg = row.get("message") if isinstance(row, dict) else None
            if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
                continue
            usage = msg["usage"]
            mid = str(msg.get("id") or row.get("uuid") or "")
            if mid:
                if mid in seen:
                    continue
                seen.add(mid)
            day = str(row.get("timestamp") or "")[:10] or b.utc_day(time.time())
            counts = out.setdefault(day, {k: 0 for k in b.USAGE_KEYS})
            for k in b.USAGE_KEYS:
                v = usage.get(k)
                if isinstance(v, int) and v > 0:
                    counts[k] += v
    return out


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def test_a_refresh_reads_only_what_was_appended(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    t.write_text(line("m1", input_tokens=100) + line("m1", input_tokens=100) + "not json\n")
    tally = TranscriptTally()
    assert b.total(tally.usage([t])[DAY]) == 100
    assert tally.bytes_read == t.stat().st_size
    before, size = tally.bytes_read, t.stat().st_size
    more = line("m1", input_tokens=100) + line("m2", output_tokens=7)  # m1 again: once only
    more += line("m3", "2026-12-02T23:00:00Z", cache_read_input_tokens=50)
    append(t, more)
    days = tally.usage([t])
    assert tally.bytes_read - before == t.stat().st_size - size == len(more)
    assert b.total(days[DAY]) == 107 and b.total(days["2026-12-02"]) == 50
    assert days == reference([t])
    before = tally.bytes_read
    assert tally.usage([t]) == days and tally.bytes_read == before  # nothing new: nothing read


def test_a_replaced_or_truncated_transcript_is_read_again(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    t.write_text(line("m1", input_tokens=100) + line("m2", input_tokens=20))
    tally = TranscriptTally()
    assert b.total(tally.usage([t])[DAY]) == 120
    # Replaced (another inode), larger than what was read.
    new = tmp_path / "new.jsonl"
    new.write_text(line("n1", output_tokens=1) * 3 + line("n2", output_tokens=1000))
    os.replace(new, t)
    assert tally.usage([t]) == reference([t]) and b.total(tally.usage([t])[DAY]) == 1001
    # Truncated in place (same inode, smaller).
    with open(t, "r+b") as f:
        f.truncate(len(line("n1", output_tokens=1)))
    assert b.total(tally.usage([t])[DAY]) == 1
    # Rewritten in place, same inode, no smaller: the bytes before the offset changed.
    with open(t, "r+b") as f:
        f.write(line("r1", output_tokens=9).encode() * 2)
    assert tally.usage([t]) == reference([t]) and b.total(tally.usage([t])[DAY]) == 9
    # Gone: it counts for nothing, and is forgotten.
    t.unlink()
    assert tally.usage([t]) == {}


def test_a_partial_last_line_is_read_again_once_it_is_whole(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    whole = line("m2", output_tokens=30)
    t.write_text(line("m1", input_tokens=100) + whole[:25])  # the writer is mid-line
    tally = TranscriptTally()
    assert b.total(tally.usage([t])[DAY]) == 100
    append(t, whole[25:-1])  # complete JSON, no newline yet: counted, as a full read does
    assert b.total(tally.usage([t])[DAY]) == 130 == b.total(reference([t])[DAY])
    append(t, "\n" + line("m3", output_tokens=1)[:10])
    assert b.total(tally.usage([t])[DAY]) == 130  # and once only when its newline comes
    append(t, line("m3", output_tokens=1)[10:])
    assert b.total(tally.usage([t])[DAY]) == 131


def test_a_message_in_two_transcripts_counts_once_and_undated_lines_count_today(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    then = "2026-11-30"
    one.write_text(
        line("m1", f"{then}T10:00:00Z", input_tokens=100) + line("", None, output_tokens=3)
    )
    two.write_text(line("m2", f"{then}T11:00:00Z", input_tokens=5))
    tally = TranscriptTally()
    assert tally.usage([one, two]) == reference([one, two])
    copy = line("m1", f"{then}T10:00:00Z", input_tokens=100)  # a forked session's copy of m1
    append(two, copy + line("m4", None, input_tokens=2))
    days = tally.usage([one, two])
    assert days == reference([one, two])
    assert b.total(days[then]) == 105 and b.total(days[b.utc_day(time.time())]) == 5


def test_any_way_of_appending_gives_the_full_reads_figures(tmp_path: Path) -> None:
    """Bytes appended in random pieces (mid-line, mid-character), counted after each piece."""
    rnd = random.Random(7)
    files = [tmp_path / f"s{i}.jsonl" for i in range(3)]
    for f in files:
        f.write_bytes(b"")
    text = "".join(
        rnd.choice(
            [
                line(f"m{rnd.randrange(40)}", f"2026-12-0{rnd.randrange(1, 4)}T00:00:00Z",
                     input_tokens=rnd.randrange(1, 999), output_tokens=rnd.randrange(5)),
                line(f"m{rnd.randrange(40)}", None, cache_read_input_tokens=3),
                '{"type": "user", "message": {"content": "usage \u00e9\u2028x"}}\n',
                "garbage \"usage\" \xff\r\n",
                line("", ts=f"{DAY}T01:00:00Z", output_tokens=1).replace("\n", "\r\n"),
            ]
        )
        for _ in range(400)
    ).encode()  # fmt: skip
    tally = TranscriptTally()
    pos = {f: 0 for f in files}
    full_reads = 0  # what reading every file whole at each refresh would have read
    data = {f: text[i * 7 :] for i, f in enumerate(files)}
    for _ in range(150):
        f = rnd.choice(files)
        n = rnd.randrange(1, 300)
        append(f, data[f][pos[f] : pos[f] + n])
        pos[f] += n
        assert tally.usage(files) == reference(files)
        full_reads += sum(p.stat().st_size for p in files)
    assert tally.bytes_read < full_reads / 10


def test_the_runners_gate_keeps_its_count_between_checks(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    agent = Agent(name="coder", role="coder", budget=Budget(tokens_per_day=1000))
    fleet = Fleet(name="t", agents={"coder": agent})
    projects = paths.agent_state("coder") / "claude-config" / "projects" / "w"
    projects.mkdir(parents=True)
    t = projects / "s.jsonl"
    t.write_text(line("m1", f"{DAY}T01:00:00Z", input_tokens=500) * 200)
    gate = b.BudgetGate(paths, fleet, agent, logging.getLogger("t"), lambda: "s", lambda: NOON)
    assert gate.refresh(force=True).used == 500
    first = gate.tally.bytes_read
    append(t, line("m2", f"{DAY}T02:00:00Z", output_tokens=400))
    v = gate.refresh(force=True)
    assert (v.state, v.used) == ("warn", 900)
    assert gate.tally.bytes_read - first == len(line("m2", f"{DAY}T02:00:00Z", output_tokens=400))
