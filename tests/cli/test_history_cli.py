"""`gh fleet history` and `gh fleet diff` through the real executable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleet_samples import agent_toml, write_fleet

from relayfleet.fleet.gitops import commit_fleet
from tests.conftest import RunCli, git


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit_fleet(git_repo, [write_fleet(git_repo)], "fleet: init")
    (git_repo / "README").write_text("not fleet\n")
    git(git_repo, "add", "README")
    git(git_repo, "commit", "-q", "-m", "docs: readme")
    return git_repo


def test_history_shows_semantic_changes_newest_first(repo: Path, run_cli: RunCli) -> None:
    assert (
        run_cli("route", "add", "--to", "wms-coder", "--label", "urgent", cwd=repo).returncode == 0
    )
    agent = repo / ".fleet" / "agents" / "wms-coder" / "agent.toml"
    agent.write_text(agent.read_text().replace("port = 8801", 'port = 8801\nmodel = "opus"'))
    commit_fleet(repo, [agent], "fleet: coder on opus")

    proc = run_cli("history", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert [e["subject"] for e in entries] == [
        "fleet: coder on opus",
        "fleet: add route #3 (label=urgent → wms-coder)",
        "fleet: init",
    ]  # the README commit does not touch .fleet/
    assert set(entries[0]) == {"commit", "author", "date", "subject", "changes"}
    assert entries[0]["changes"] == ["~agent wms-coder: model sonnet→opus"]
    assert entries[1]["changes"] == ["+route #3 (label=urgent → wms-coder)"]
    assert "+agent wms-coder (coder)" in entries[2]["changes"]
    assert entries[0]["author"] == "Test User"
    assert len(entries[0]["commit"]) == 40

    text = run_cli("history", "-n", "1", cwd=repo).stdout
    assert text.splitlines()[0].startswith(entries[0]["commit"][:7])
    assert "Test User  fleet: coder on opus" in text.splitlines()[0]
    assert text.splitlines()[1] == "    ~agent wms-coder: model sonnet→opus"
    assert len([line for line in text.splitlines() if line and not line.startswith(" ")]) == 1


def test_diff_against_head_and_a_ref(repo: Path, run_cli: RunCli) -> None:
    assert run_cli("diff", cwd=repo).stdout.strip() == "No fleet changes since HEAD."
    manager = repo / ".fleet" / "agents" / "manager"
    manager.mkdir()
    (manager / "agent.toml").write_text(agent_toml("manager", "manager", 8803))
    routes = repo / ".fleet" / "routes.toml"
    routes.write_text(
        routes.read_text().replace('to = ["wms-reviewer"]', 'to = ["wms-reviewer", "manager"]')
    )

    proc = run_cli("diff", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["+agent manager (manager)", "~route #2 to: +manager"]
    first = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    assert json.loads(run_cli("diff", first, "--json", cwd=repo).stdout) == [
        "+agent manager (manager)",
        "~route #2 to: +manager",
    ]


def test_diff_unknown_ref_is_one_line(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("diff", "no-such-branch", cwd=repo)
    assert proc.returncode == 1
    assert proc.stderr.startswith("gh fleet: unknown git revision 'no-such-branch'")
    assert "hint: branches here: main" in proc.stderr  # `diff main` where the branch is master


def test_history_in_a_fleet_without_commits(git_repo: Path, run_cli: RunCli) -> None:
    write_fleet(git_repo)
    assert run_cli("history", cwd=git_repo).stdout.strip() == "No commits touch .fleet/ yet."
    assert run_cli("history", "--json", cwd=git_repo).stdout.strip() == "[]"
    assert "+agent wms-coder (coder)" in run_cli("diff", cwd=git_repo).stdout


def test_history_of_agent_files_committed_before_fleet_toml(
    git_repo: Path, run_cli: RunCli
) -> None:
    """`init --no-commit`, then `new-agent` commits only its own files: that commit adds the
    agent (not "-fleet"), and the later commit of fleet.toml adds the fleet itself."""
    assert run_cli("init", "--no-commit", cwd=git_repo).returncode == 0
    made = run_cli("new-agent", "c1", "--role", "coder", "--no-route", cwd=git_repo)
    assert made.returncode == 0, made.stderr
    assert "fleet.toml" not in git(git_repo, "show", "--name-only", "HEAD")
    git(git_repo, "add", ".fleet")
    git(git_repo, "commit", "-q", "-m", "fleet: the rest")

    entries = json.loads(run_cli("history", "--json", cwd=git_repo).stdout)
    assert [e["changes"] for e in entries] == [
        [f"+fleet {git_repo.name}"],
        ["+agent c1 (coder)"],
    ]
    first = entries[1]["commit"]
    assert run_cli("diff", first, cwd=git_repo).stdout.splitlines() == [f"+fleet {git_repo.name}"]
