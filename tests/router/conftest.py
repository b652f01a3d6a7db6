"""Fixtures shared by the router tests: a manual clock, the fake GitHub on it, and a rig (a
fleet state dir wired to that fake). A test module may define its own to change them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub, ManualClock
from tests.router.helpers import Rig, make_rig


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeGitHub]:
    with FakeGitHub(clock=clock) as gh:
        yield gh


@pytest.fixture
def rig(tmp_path: Path, fake: FakeGitHub, clock: ManualClock) -> Rig:
    return make_rig(tmp_path, fake, clock)
