"""`status --json` shows each workspace; `remove-agent` keeps one holding unpushed work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet
from relayfleet.runner import workspace as ws
from tests.workspace.gitkit import fleet_repo, make_origin, sh


@pytest.fixture
def origin(tmp_path: Path, gitenv: Path) -> Path:
    """A local stand-in for GitHub at `tmp_path/gh`, holding acme/WMS."""
    make_origin(tmp_path / "gh", "acme/WMS")
    return tmp_path / "gh"


@pytest.fixture
def root(tmp_path: Path, origin: Path) -> Path:
    """A fleet's git repository whose agents clone from `origin`."""
    return fleet_repo(tmp_path, origin)


def test_status_shows_the_workspace_and_remove_agent_refuses_unpushed_work(
    origin: Path, root: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = cli("new-agent", "c1", "--role", "coder", "--repo", "acme/WMS", cwd=root)
    assert rc == 0, err
    assert "  workspace: a clone of acme/WMS on fleet/c1/work (made at its first start)" in out
    paths = FleetPaths(root)
    fleet = load_fleet(paths)
    p = ws.plan(paths, fleet, fleet.agent("c1"))

    rc, out, _ = cli("status", "--json", cwd=root)
    (row,) = json.loads(out)["agents"]
    assert row["workspace"]["mode"] == "clone" and row["workspace"]["exists"] is False
    rc, out, _ = cli("status", cwd=root)
    assert "c1: workspace .fleet/state/agents/c1/workspace (clone): not made yet" in out

    ws.ensure(p)
    (p.path / "fix.py").write_text("x = 1\n")
    sh(p.path, "add", "fix.py")
    sh(p.path, "commit", "-q", "-m", "fix the scanner")
    rc, out, _ = cli("status", "--json", cwd=root)
    w = json.loads(out)["agents"][0]["workspace"]
    assert (w["branch"], w["ahead"], w["behind"], w["dirty"]) == ("fleet/c1/work", 1, 0, False)
    assert w["path"] == str(p.path)
    rc, out, _ = cli("status", cwd=root)
    assert (
        "c1: workspace .fleet/state/agents/c1/workspace on fleet/c1/work (ahead 1, behind 0, clean)"
        in out
    )

    head = sh(root, "rev-parse", "HEAD")
    rc, out, err = cli("remove-agent", "c1", "--prune-routes", cwd=root)
    assert rc == 1
    assert "workspace .fleet/state/agents/c1/workspace holds work that is not pushed" in err
    assert "fix the scanner" in err and "--force" in err
    assert sh(root, "rev-parse", "HEAD") == head and p.path.is_dir()  # nothing changed

    sh(p.path, "push", "-q", "-u", "origin", "HEAD")
    (p.path / "wip.txt").write_text("wip\n")
    rc, out, err = cli("remove-agent", "c1", "--prune-routes", cwd=root)
    assert rc == 1 and "uncommitted wip.txt" in err and "fix the scanner" not in err

    rc, out, err = cli("remove-agent", "c1", "--prune-routes", "--force", cwd=root)
    assert rc == 0, err
    assert "its workspace .fleet/state/agents/c1/workspace is removed" in out
    assert not p.path.exists()
    assert sh(origin / "acme" / "WMS.git", "branch", "--list", "fleet/c1/work").strip()


def test_remove_agent_with_everything_pushed_needs_no_force(root: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("new-agent", "c1", "--role", "coder", "--repo", "acme/WMS", cwd=root).rc == 0
    paths = FleetPaths(root)
    fleet = load_fleet(paths)
    p = ws.plan(paths, fleet, fleet.agent("c1"))
    ws.ensure(p)
    rc, _, err = cli("remove-agent", "c1", "--prune-routes", cwd=root)
    assert rc == 0, err
    assert not p.path.exists()
    assert sh(root, "status", "--porcelain") == ""


def test_doctor_reports_each_workspace_and_a_failing_fetch(root: Path, cli) -> None:  # type: ignore[no-untyped-def]
    import io

    from relayfleet.cli.commands.doctor import Doctor, check_workspaces
    from relayfleet.cli.context import Context
    from relayfleet.core.atomic import write_json_atomic

    assert cli("new-agent", "c1", "--role", "coder", "--repo", "acme/WMS", cwd=root).rc == 0
    assert cli("new-agent", "m1", "--role", "manager", "--repo", "acme/WMS", cwd=root).rc == 0

    def lines() -> list[tuple[str, str]]:
        ctx = Context(out=io.StringIO(), err=io.StringIO(), env={"FLEET_ROOT": str(root)}, cwd=root)
        return [(r.status, r.detail) for r in check_workspaces(Doctor(ctx))]

    where = "c1: clone .fleet/state/agents/c1/workspace"
    assert lines() == [("ok", f"{where}: made from acme/WMS at the next start")]  # m1: none
    paths = FleetPaths(root)
    fleet = load_fleet(paths)
    ws.ensure(ws.plan(paths, fleet, fleet.agent("c1")))
    assert lines() == [("ok", f"{where} on fleet/c1/work (clean)")]
    write_json_atomic(
        paths.runner_status("c1"), {"workspace": {"fetch_error": "git fetch failed in …: gone"}}
    )
    assert lines()[1] == ("warn", "c1: the last fetch failed: git fetch failed in …: gone")
