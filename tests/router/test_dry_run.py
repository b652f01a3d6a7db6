"""`router run --once --dry-run`: what would go to whom, through which watch and route; and
not one byte written under `.fleet/`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub
from tests.router.helpers import cli, route, watch, write_fleet

REPO = "acme/wms"

# On the real time: the router under test runs as it does in production.
pytestmark = pytest.mark.fake_github(repos=[REPO], wall_clock=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_fleet(
        tmp_path,
        ["coder", "triage"],
        [watch("wms", "issues", REPO, "--state open"),
         watch("wms-bugs", "issues", REPO, "--label bug")],
        [route(1, "coder", watch="wms"), route(2, ["triage", "coder"], label="bug")],
    )  # fmt: skip
    return tmp_path


def tree(root: Path) -> dict[str, str]:
    """Every file under .fleet/ with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / ".fleet").rglob("*"))
        if p.is_file()
    }


def test_dry_run_prints_recipients_with_watch_and_route_and_writes_nothing(
    root: Path, fake: FakeGitHub
) -> None:
    assert cli(root, fake, "router", "run", "--once")[0] == 0  # snapshot, for real
    n = fake.open_issue(REPO, "Scanner crash", labels=["bug"])
    before = tree(root)

    rc, out, _ = cli(root, fake, "router", "run", "--once", "--dry-run")
    assert rc == 0
    assert out.splitlines()[0].startswith("dry run: nothing was written")
    assert f"  -> coder: issues {REPO}#{n} opened (watch wms, route #1)" in out
    assert f"  -> triage: issues {REPO}#{n} opened (watch wms, route #2)" in out
    assert "would deliver 2 event(s)" in out
    assert tree(root) == before  # no inbox, cursor, cache, status or log touched

    # The real cycle still delivers: the dry run marked nothing as delivered.
    rc, out, _ = cli(root, fake, "router", "run", "--once")
    assert rc == 0 and "delivered 2 event(s)" in out
    assert tree(root) != before


def test_dry_run_on_a_fresh_fleet_creates_no_state_at_all(root: Path, fake: FakeGitHub) -> None:
    fake.open_issue(REPO, "Old")
    rc, out, _ = cli(root, fake, "router", "run", "--once", "--dry-run")
    assert rc == 0
    assert "watch wms: first poll, a snapshot" in out
    assert not (root / ".fleet" / "state").exists()


def test_dry_run_needs_once(root: Path, fake: FakeGitHub) -> None:
    rc, _, err = cli(root, fake, "router", "run", "--dry-run")
    assert rc == 2 and "--dry-run goes with --once" in err
