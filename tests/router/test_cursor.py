"""The durable cursor: snapshot flags, birth cycles, versions, delivered pairs, bounded size."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from relayfleet.core.errors import FleetError
from relayfleet.router import cursor as cursor_mod
from relayfleet.router.cursor import Cursor, route_sig
from tests.router.helpers import route, watch


def test_round_trip_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "router" / "cursor.json"
    c = Cursor.load(path)
    c.begin_cycle()
    c.sync_config([watch("w", "issues", "a/b")], [route(1, "x", watch="w")], ["x"])
    c.mark_snapshot("w")
    c.observe("issues:a/b#1", "k1", {"state": "open"})
    c.record("x", "k1")
    c.save(now=100.0)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    again = Cursor.load(path)
    assert again.watch_ready("w") and again.is_delivered("x", "k1") and again.saved_at == 100.0
    assert again.gen == 1


def test_a_redefined_watch_snapshots_again_and_removed_ones_are_forgotten(tmp_path) -> None:
    c = Cursor(tmp_path / "c.json")
    c.begin_cycle()
    c.sync_config([watch("w", "issues", "a/b", "--state open")], [], [])
    c.mark_snapshot("w")
    c.sync_config([watch("w", "issues", "a/b", "--state open")], [], [])
    assert c.watch_ready("w")
    c.sync_config([watch("w", "issues", "a/b", "--state all")], [], [])
    assert not c.watch_ready("w")
    c.sync_config([], [], [])
    assert c.watches == {}


def test_agents_and_routes_are_born_once(tmp_path: Path) -> None:
    c = Cursor(tmp_path / "c.json")
    r = route(1, "x", watch="w")
    c.begin_cycle()
    c.sync_config([], [r], ["x"])
    c.begin_cycle()
    c.sync_config([], [r], ["x", "y"])
    assert c.born_gen("agent:x") == 1 and c.born_gen("agent:y") == 2
    assert c.born_gen(route_sig(r)) == 1
    c.begin_cycle()
    c.sync_config([], [r], ["x"])  # y removed ...
    c.begin_cycle()
    c.sync_config([], [r], ["x", "y"])  # ... and re-added: new again, no backlog
    assert c.born_gen("agent:y") == 4


def test_observe_reports_first_sighting_and_previous_summary(tmp_path: Path) -> None:
    c = Cursor(tmp_path / "c.json")
    c.begin_cycle()
    assert c.observe("i", "k1", {"comments": 0}) == (1, None)
    c.begin_cycle()
    assert c.observe("i", "k1", {"comments": 0}) == (1, None)  # same version: same answer
    assert c.observe("i", "k2", {"comments": 1}) == (2, {"comments": 0})
    c.begin_cycle()
    assert c.observe("i", "k2", {"comments": 1}) == (2, {"comments": 0})


def test_pruning_bounds_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cursor_mod, "MAX_DELIVERED_PER_AGENT", 10)
    monkeypatch.setattr(cursor_mod, "MAX_ITEMS", 5)
    c = Cursor(tmp_path / "c.json")
    for i in range(30):
        c.begin_cycle()
        c.record("x", f"k{i}")
        c.observe(f"i{i}", f"k{i}", {})
    c.save(now=1.0)
    data = json.loads((tmp_path / "c.json").read_text())
    assert sorted(data["delivered"]["x"]) == sorted(f"k{i}" for i in range(20, 30))
    assert sorted(data["items"]) == sorted(f"i{i}" for i in range(25, 30))


def test_a_foreign_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "cursor.json"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(FleetError):
        Cursor.load(path)
    assert json.loads(path.read_text()) == {"version": 99}
    assert os.path.exists(path)
