"""The inbox tail: inotify-driven, in order, partial lines buffered, late or replaced files."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from relayfleet.core.atomic import append_json, write_atomic
from relayfleet.runner.inbox_tail import InboxTail


async def collect(tail: InboxTail, n: int, timeout: float = 20) -> list[dict]:
    got: list[dict] = []

    async def run() -> None:
        async for item in tail:
            got.append(item.event)
            if len(got) >= n:
                return

    await asyncio.wait_for(run(), timeout)
    return got


def test_reads_existing_lines_then_follows_appends_in_order(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    append_json(inbox, {"id": "e0"})

    async def main() -> list[dict]:
        tail = InboxTail(inbox)
        task = asyncio.create_task(collect(tail, 300))
        await asyncio.sleep(0.05)
        for i in range(1, 300):
            # From another thread, like another process: the tail learns only via inotify.
            await asyncio.to_thread(append_json, inbox, {"id": f"e{i}", "body": "x" * (i % 7)})
        return await task

    got = asyncio.run(main())
    assert [e["id"] for e in got] == [f"e{i}" for i in range(300)]


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    line = json.dumps({"id": "whole", "body": "split across two writes"}).encode() + b"\n"

    async def main() -> tuple[list[dict], int]:
        tail = InboxTail(inbox)
        with open(inbox, "ab") as f:
            f.write(line[:10])
            f.flush()
            assert tail.read_available() == []  # nothing complete yet
            task = asyncio.create_task(collect(tail, 1))
            await asyncio.sleep(0.1)
            assert not task.done()
            f.write(line[10:])
            f.flush()
        got = await task
        return got, tail.offset

    got, offset = asyncio.run(main())
    assert got == [{"id": "whole", "body": "split across two writes"}]
    assert offset == len(line)


def test_the_inbox_may_be_created_after_the_tail_starts(tmp_path: Path) -> None:
    inbox = tmp_path / "agents" / "late" / "inbox.jsonl"

    async def main() -> list[dict]:
        tail = InboxTail(inbox)
        task = asyncio.create_task(collect(tail, 2))
        await asyncio.sleep(0.1)
        await asyncio.to_thread(append_json, inbox, {"id": "first"})
        await asyncio.to_thread(append_json, inbox, {"id": "second"})
        return await task

    assert [e["id"] for e in asyncio.run(main())] == ["first", "second"]


def test_resumes_from_a_saved_offset_and_survives_replacement(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    append_json(inbox, {"id": "old"})
    offset = inbox.stat().st_size
    append_json(inbox, {"id": "new"})

    async def main() -> list[str]:
        tail = InboxTail(inbox, offset)
        task = asyncio.create_task(collect(tail, 3))
        await asyncio.sleep(0.1)
        # Someone rewrites the file atomically (a new inode): the tail starts over on it.
        write_atomic(
            inbox, json.dumps({"id": "rewritten"}) + "\n" + json.dumps({"id": "r2"}) + "\n"
        )
        return [e["id"] for e in await task]

    assert asyncio.run(main()) == ["new", "rewritten", "r2"]


def test_corrupt_and_blank_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    inbox.write_bytes(b'{"id": "a"}\n\nnot json\n[1, 2]\n{"id": "b"}\n')
    tail = InboxTail(inbox)
    items = tail.read_available()
    assert [i.event["id"] for i in items] == ["a", "b"]
    assert items[1].end == os.path.getsize(inbox)
    assert inbox.read_bytes()[items[1].start : items[1].end] == b'{"id": "b"}\n'
