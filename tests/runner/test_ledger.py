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
