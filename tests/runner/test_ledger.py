"""The delivery ledger: begin/delivered bracketing, acks, re-send timing, durability."""

from __future__ import annotations

from pathlib import Path

from relayfleet.runner.ledger import MAX_RESENDS, Ledger


def test_a_fresh_ledger_has_a_stable_session_id(tmp_path: Path) -> None:
    led = Ledger.load(tmp_path / "runner-state.json")
    led.save()
    again = Ledger.load(tmp_path / "runner-state.json")
    assert again.session_id == led.session_id
    assert len(led.session_id) == 36
    assert not again.launched


def test_delivery_is_bracketed_and_survives_reload(tmp_path: Path) -> None:
    path = tmp_path / "runner-state.json"
    led = Ledger.load(path)
    led.begin("e1", 0, 10, resend=False)
    # A crash here: the next runner sees e1 in flight.
    crashed = Ledger.load(path)
    assert crashed.delivering == {"id": "e1", "start": 0, "end": 10, "resend": False}
    assert crashed.offset == 0
    led.delivered("e1", 0, 10, now=100.0)
    after = Ledger.load(path)
    assert after.delivering is None
    assert after.offset == 10
    assert after.last_delivered == "e1"
    assert list(after.pending) == ["e1"]
    assert after.already_delivered("e1")


def test_ack_clears_pending_and_is_idempotent(tmp_path: Path) -> None:
    led = Ledger.load(tmp_path / "s.json")
    led.delivered("e1", 0, 10, now=1.0)
    assert led.ack("e1", "fixed it")
    assert not led.ack("e1")
    assert not led.ack("unknown")
    reloaded = Ledger.load(tmp_path / "s.json")
    assert reloaded.pending == {}
    assert reloaded.acked[-1]["outcome"] == "fixed it"


def test_overdue_events_come_due_oldest_first_and_resends_are_counted(tmp_path: Path) -> None:
    led = Ledger.load(tmp_path / "s.json")
    led.delivered("a", 0, 10, now=100.0)
    led.delivered("b", 10, 20, now=50.0)
    assert led.due(60, now=120.0) == [led.pending["b"]]
    assert [p.id for p in led.due(60, now=200.0)] == ["b", "a"]
    assert led.next_due_at(60) == 110.0
    # A re-send of a pending event keeps the offset and counts the re-send.
    led.begin("b", 10, 20, resend=True)
    led.delivered("b", 10, 20, now=210.0)
    assert led.pending["b"].resends == 1
    assert led.offset == 20
    assert led.delivered_count == 2
    for _ in range(MAX_RESENDS):
        led.give_up("b")
    assert "b" not in led.pending
    assert list(led.given_up) == ["b"]


def test_the_ledger_stays_small_after_thousands_of_events(tmp_path: Path) -> None:
    """Weeks of traffic: 5000 events delivered (most acked, some never) keep the file bounded."""
    from relayfleet.runner import ledger as ledger_mod

    path = tmp_path / "runner-state.json"
    led = Ledger.load(path)
    sizes: list[int] = []
    led.writer = lambda _path, data: sizes.append(len(data))  # type: ignore[method-assign]
    offset = 0
    for i in range(5000):
        eid = f"evt_op_20261124T100000Z_{i:06d}"
        led.begin(eid, offset, offset + 200, resend=False)
        led.delivered(eid, offset, offset + 200, now=float(i))
        offset += 200
        if i % 10:  # one in ten is never acknowledged
            led.ack(eid, "fixed it; opened a pull request with a long explanation " * 20)
        if i % 50 == 0:
            for p in led.due(100.0, now=float(i)):
                led.give_up(p.id)
    led.writer = Ledger.writer  # type: ignore[method-assign]
    led.save()

    size = path.stat().st_size
    assert size < 64 * 1024, size
    # Flat, not growing: the last thousand writes are no bigger than the bound either.
    assert max(sizes[-1000:]) < 64 * 1024
    again = Ledger.load(path)
    assert again.delivered_count == 5000 and again.offset == 5000 * 200
    assert len(again.recent) == ledger_mod.RECENT_IDS
    assert again.already_delivered("evt_op_20261124T100000Z_004999")
    assert len(again.acked) <= ledger_mod.ACKED_IDS
    assert all(len(a["outcome"]) <= ledger_mod.OUTCOME_CHARS for a in again.acked)
    assert len(again.pending) <= ledger_mod.MAX_PENDING


def test_an_agent_that_never_acks_cannot_grow_pending_without_bound(tmp_path: Path) -> None:
    from relayfleet.runner.ledger import MAX_PENDING

    led = Ledger.load(tmp_path / "s.json")
    led.writer = lambda _path, _data: None  # type: ignore[method-assign]
    for i in range(MAX_PENDING + 10):
        led.delivered(f"e{i}", i, i + 1, now=float(i))
    assert len(led.pending) == MAX_PENDING
    assert "e0" not in led.pending and "e9" in led.given_up


def test_a_plugins_jsonl_is_cut_back_to_its_newest_whole_lines(tmp_path: Path) -> None:
    import json

    from relayfleet.core.atomic import append_json, read_jsonl
    from relayfleet.runner.housekeeping import trim_plugin_state

    outbox = tmp_path / "plugins" / "inbox" / "outbox.jsonl"
    for i in range(1500):
        append_json(outbox, {"id": f"r{i}", "body": "a reply to the operator " * 30})
    assert outbox.stat().st_size > 1 << 20
    assert trim_plugin_state(tmp_path) == [outbox]
    assert outbox.stat().st_size <= 256 * 1024
    kept = read_jsonl(outbox)
    assert kept[-1]["id"] == "r1499" and all(json.dumps(k) for k in kept)
    append_json(outbox, {"id": "after"})  # appends go on after the kept tail
    assert read_jsonl(outbox)[-1]["id"] == "after"
    assert trim_plugin_state(tmp_path) == []
