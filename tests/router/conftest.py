"""Fixtures shared by the router tests: a clock, the fake GitHub on it, and a rig (a fleet state
dir wired to that fake).

By default the clock is a `ManualClock` and the fake holds no repos. A module that needs another
start says so once, with `pytestmark = pytest.mark.fake_github(...)`:
- `repos=[...]`: the repos the fake holds from the start;
- `start=<epoch seconds>`: where the manual clock starts;
- `wall_clock=True`: the fake and a rig's poller run on the real time (`time.time`), for tests
  that start the router as a process or wait on real sockets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relayfleet.fakes.github import FakeGitHub, ManualClock
from tests.router.helpers import Rig, make_rig


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake_github(repos=(), start=None, wall_clock=False): how the fake GitHub starts"
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("fake_github")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> ManualClock | Callable[[], float]:
    opts = _options(request)
    if opts.get("wall_clock"):
        return time.time
    return ManualClock(opts["start"]) if "start" in opts else ManualClock()


@pytest.fixture
def fake(request: pytest.FixtureRequest, clock: Callable[[], float]) -> Iterator[FakeGitHub]:
    with FakeGitHub(clock=clock) as gh:
        for repo in _options(request).get("repos", ()):
            gh.add_repo(repo)
        yield gh


@pytest.fixture
def rig(tmp_path: Path, fake: FakeGitHub, clock: Callable[[], float]) -> Rig:
    # On the wall clock the poller keeps its own default (`time.time`), as `router run` does.
    return make_rig(tmp_path, fake, clock if isinstance(clock, ManualClock) else None)
