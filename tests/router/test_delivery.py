"""The 3.7 envelope and the file inbox's exactly-once append."""

from __future__ import annotations

import json
from pathlib import Path

from relayfleet.backends.transports import FileInbox
from relayfleet.core.atomic import read_jsonl
from relayfleet.core.paths import FleetPaths
from relayfleet.router.delivery import build_event, event_body, event_id
from relayfleet.router.items import Item

ITEM = Item(
    kind="issues",
    repo="acme/WMS",
    number=12,
    title="Fix the scanner crash",
    labels=("needs-human",),
    author="alice",
    association="MEMBER",
    updated_at="2026-11-24T09:59:58Z",
    url="https://github.com/acme/WMS/issues/12",
    watch="wms-assigned",
    change="labeled needs-human",
)


def test_the_body_stands_on_its_own() -> None:
    assert event_body(ITEM) == (
        "[FROM github | issues acme/WMS#12 labeled needs-human] Fix the scanner crash "
        "[needs-human] — by @alice (MEMBER) https://github.com/acme/WMS/issues/12"
    )


def test_the_envelope_follows_3_7_and_its_id_is_deterministic() -> None:
    e = build_event("coder", ITEM, "k1", ts="2026-11-24T10:00:00Z")
    assert e["id"] == event_id("coder", "k1") == build_event("coder", ITEM, "k1", ts="x")["id"]
    assert e["id"].startswith("evt_") and len(e["id"]) == 24
    assert event_id("coder", "k1") != event_id("reviewer", "k1") != event_id("coder", "k2")
    assert e["source"] == "github" and e["ts"] == "2026-11-24T10:00:00Z"
    md = e["metadata"]
    assert {
        k: md[k] for k in ("watch", "repo", "kind", "number", "url", "updated_at", "dedup_key")
    } == {
        "watch": "wms-assigned",
        "repo": "acme/WMS",
        "kind": "issues",
        "number": 12,
        "url": "https://github.com/acme/WMS/issues/12",
        "updated_at": "2026-11-24T09:59:58Z",
        "dedup_key": "k1",
    }


def test_appending_the_same_id_twice_lands_once(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    t = FileInbox(paths)
    e = build_event("coder", ITEM, "k1", ts="t")
    t.append("coder", e)
    t.append("coder", e)
    FileInbox(paths).append("coder", e)  # a restart
    assert [x["id"] for x in read_jsonl(paths.inbox("coder"))] == [e["id"]]
    assert t.has("coder", e["id"]) and not t.has("coder", "evt_other")


def test_a_torn_tail_is_cut_and_the_event_appended_again(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    inbox = paths.inbox("coder")
    e = build_event("coder", ITEM, "k1", ts="t")
    inbox.parent.mkdir(parents=True)
    line = json.dumps(e)
    inbox.write_text(
        '{"id":"evt_before","body":"x"}\n' + line[: len(line) // 2]
    )  # killed mid-write
    t = FileInbox(paths)
    assert not t.has("coder", e["id"])
    t.append("coder", e)
    assert [x["id"] for x in read_jsonl(inbox)] == ["evt_before", e["id"]]


def test_other_writers_are_seen(tmp_path: Path) -> None:
    paths = FleetPaths(tmp_path)
    path = paths.inbox("coder")
    t = FileInbox(paths)
    t.append("coder", build_event("coder", ITEM, "k1", ts="t"))
    other = build_event("coder", ITEM, "k2", ts="t")
    FileInbox(paths).append("coder", other)  # e.g. a second process
    t.append("coder", other)
    assert len(read_jsonl(path)) == 2
