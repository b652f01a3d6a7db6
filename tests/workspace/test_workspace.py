"""runner/workspace.py on real git: a local bare repository stands in for GitHub (clone_url)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet
from relayfleet.runner import workspace as ws
from relayfleet.runner.workspace import WorkspaceError
from tests.workspace.gitkit import make_origin, push_change, sh


def fleet_dir(tmp_path: Path, agents: dict[str, str]) -> FleetPaths:
    """A fleet whose clone_url points at `tmp_path/gh`; `agents`: name -> [workspace] body."""
    root = tmp_path / "fleet"
    (root / ".fleet").mkdir(parents=True)
    gh = tmp_path / "gh"
    (root / ".fleet" / "fleet.toml").write_text(
        f'[fleet]\nname = "t"\n[github]\nclone_url = "{gh}/{{repo}}.git"\n'
    )
    for i, (name, body) in enumerate(agents.items()):
        d = root / ".fleet" / "agents" / name
        d.mkdir(parents=True)
        (d / "agent.toml").write_text(
            f'name = "{name}"\nrole = "coder"\nrepo = "acme/WMS"\nport = {8801 + i}\n'
            f"[workspace]\n{body}\n"
        )
    return FleetPaths(root)


def plan_of(paths: FleetPaths, name: str) -> ws.Plan:
    fleet = load_fleet(paths)
    return ws.plan(paths, fleet, fleet.agent(name))


def test_clone_starts_on_its_own_branch_and_two_agents_never_share_a_tree(
    tmp_path: Path, gitenv: Path
) -> None:
    bare = make_origin(tmp_path / "gh", "acme/WMS")
    paths = fleet_dir(tmp_path, {"c1": 'mode = "clone"', "c2": 'mode = "clone"'})
    p1, p2 = plan_of(paths, "c1"), plan_of(paths, "c2")
    assert ws.ensure(p1) == paths.agent_state("c1") / "workspace"
    ws.ensure(p2)
    assert p1.path != p2.path
    assert sh(p1.path, "branch", "--show-current").strip() == "fleet/c1/work"
    assert sh(p2.path, "branch", "--show-current").strip() == "fleet/c2/work"
    assert sh(p1.path, "remote", "get-url", "origin").strip() == str(bare)
    assert (p1.path / "README.md").read_text() == "# acme/WMS\n"
    st = ws.inspect(p1)
    assert st["branch"] == "fleet/c1/work" and (st["ahead"], st["behind"]) == (0, 0)
    assert st["dirty"] is False and st["upstream"] == "origin/HEAD"

    # c1 commits and leaves a file uncommitted: c2's tree stays clean, c1's status says so.
    (p1.path / "fix.py").write_text("x = 1\n")
    sh(p1.path, "add", "fix.py")
    sh(p1.path, "commit", "-q", "-m", "fix the scanner")
    (p1.path / "notes.txt").write_text("wip\n")
    st = ws.inspect(p1)
    assert (st["ahead"], st["dirty"], st["changes"]) == (1, True, 1)
    assert ws.inspect(p2)["dirty"] is False and not (p2.path / "fix.py").exists()
    lost = ws.unpushed(p1)
    assert len(lost) == 2 and lost[0].endswith("fix the scanner") and lost[0].startswith("commit ")
    assert lost[1] == "uncommitted notes.txt"
    assert ws.unpushed(p2) == []

    # Pushed, the commit is no longer at risk; ensure() never touches an existing workspace.
    sh(p1.path, "push", "-q", "-u", "origin", "HEAD")
    assert sh(bare, "branch", "--list", "fleet/c1/work").strip() == "fleet/c1/work"
    assert ws.unpushed(p1) == ["uncommitted notes.txt"]
    assert ws.inspect(p1)["upstream"] == "origin/fleet/c1/work"
    ws.ensure(p1)
    assert (p1.path / "notes.txt").read_text() == "wip\n"
    assert ws.remove(p1) and not p1.path.exists()


def test_fetch_updates_only_remote_refs_and_a_failure_is_an_error(
    tmp_path: Path, gitenv: Path
) -> None:
    make_origin(tmp_path / "gh", "acme/WMS")
    paths = fleet_dir(tmp_path, {"c1": 'mode = "clone"'})
    p = plan_of(paths, "c1")
    ws.ensure(p)
    (p.path / "README.md").write_text("my uncommitted edit\n")
    head = sh(p.path, "rev-parse", "HEAD")
    sha = push_change(tmp_path / "gh", "acme/WMS", "README.md", "upstream edit\n")
    assert ws.fetch(p) is True
    assert sh(p.path, "rev-parse", "origin/main").strip() == sha
    assert sh(p.path, "rev-parse", "HEAD") == head  # the agent's branch did not move
    assert (p.path / "README.md").read_text() == "my uncommitted edit\n"
    assert ws.inspect(p)["behind"] == 1
    sh(p.path, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    with pytest.raises(WorkspaceError, match="git fetch failed in"):
        ws.fetch(p)


def test_worktrees_share_one_clone_but_never_a_tree_or_a_branch(
    tmp_path: Path, gitenv: Path
) -> None:
    make_origin(tmp_path / "gh", "acme/WMS")
    paths = fleet_dir(tmp_path, {"w1": 'mode = "worktree"', "w2": 'mode = "worktree"'})
    p1, p2 = plan_of(paths, "w1"), plan_of(paths, "w2")
    ws.ensure(p1)
    ws.ensure(p2)
    shared = paths.state / "repos" / "acme" / "WMS.git"
    assert p1.shared == p2.shared == shared
    listed = sh(shared, "worktree", "list", "--porcelain")
    assert f"worktree {p1.path}" in listed and f"worktree {p2.path}" in listed
    assert sh(p1.path, "branch", "--show-current").strip() == "fleet/w1/work"
    assert sh(p2.path, "branch", "--show-current").strip() == "fleet/w2/work"
    (p1.path / "a.txt").write_text("a\n")
    sh(p1.path, "add", "a.txt")
    sh(p1.path, "commit", "-q", "-m", "w1's work")
    assert ws.inspect(p2)["dirty"] is False and ws.inspect(p2)["ahead"] == 0
    assert [x.split(" ", 2)[2] for x in ws.unpushed(p1)] == ["w1's work"]
    assert ws.unpushed(p2) == []  # w1's commit is not w2's to lose
    # A fetch in one worktree updates the shared remote-tracking refs, never a branch.
    push_change(tmp_path / "gh", "acme/WMS", "b.txt", "b\n")
    assert ws.fetch(p2)
    assert ws.inspect(p1)["behind"] == 1 and ws.inspect(p2)["behind"] == 1
    assert ws.remove(p1)
    assert not p1.path.exists()
    assert sh(shared, "branch", "--list", "fleet/w1/*").strip() == ""
    assert sh(shared, "branch", "--list", "fleet/w2/*").strip() == "+ fleet/w2/work"


def test_none_is_an_empty_directory(tmp_path: Path, gitenv: Path) -> None:
    paths = fleet_dir(tmp_path, {"n1": 'mode = "none"'})
    p = plan_of(paths, "n1")
    assert ws.ensure(p) == paths.agent_state("n1") / "work"
    assert list(p.path.iterdir()) == [] and ws.fetch(p) is False and ws.unpushed(p) == []
    assert ws.inspect(p) == {"mode": "none", "path": str(p.path), "exists": True}


def test_a_clone_that_fails_says_why(tmp_path: Path, gitenv: Path) -> None:
    paths = fleet_dir(tmp_path, {"c1": 'mode = "clone"'})  # no origin made
    with pytest.raises(WorkspaceError, match="git clone failed"):
        ws.ensure(plan_of(paths, "c1"))


def test_a_mode_changed_later_never_silently_reuses_the_other_kind(
    tmp_path: Path, gitenv: Path
) -> None:
    make_origin(tmp_path / "gh", "acme/WMS")
    paths = fleet_dir(tmp_path, {"c1": 'mode = "clone"'})
    ws.ensure(plan_of(paths, "c1"))
    toml = paths.agent_toml("c1")
    toml.write_text(toml.read_text().replace('mode = "clone"', 'mode = "worktree"'))
    with pytest.raises(WorkspaceError, match="holds a clone but \\[workspace\\] mode is now"):
        ws.ensure(plan_of(paths, "c1"))


def test_agents_started_together_share_the_clone_without_tripping_over_each_other(
    tmp_path: Path, gitenv: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    make_origin(tmp_path / "gh", "acme/WMS")
    names = [f"w{i}" for i in range(4)]
    paths = fleet_dir(tmp_path, {n: 'mode = "worktree"' for n in names})
    plans = [plan_of(paths, n) for n in names]
    with ThreadPoolExecutor(len(plans)) as pool:
        made = list(pool.map(ws.ensure, plans))
    assert made == [p.path for p in plans]
    for p in plans:
        assert sh(p.path, "branch", "--show-current").strip() == f"fleet/{p.agent}/work"
