"""Fleet commits on real repositories, checked with the real git CLI (ARCHITECTURE 3.4)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fleet_samples import write_fleet

from relayfleet.core.errors import GitError
from relayfleet.fleet import gitops
from tests.conftest import git, git_env


def changed_paths(repo: Path, rev: str = "HEAD") -> list[str]:
    out = git(repo, "show", "--name-only", "--format=", rev)
    return sorted(line for line in out.splitlines() if line)


def status(repo: Path) -> list[str]:
    return git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """One user commit, then an unrelated staged change, an unstaged one, an untracked file."""
    (git_repo / "README").write_text("hello\n")
    (git_repo / "app.py").write_text("print(1)\n")
    git(git_repo, "add", "README", "app.py")
    git(git_repo, "commit", "-q", "-m", "user: first")
    (git_repo / "README").write_text("hello, staged\n")
    git(git_repo, "add", "README")
    (git_repo / "app.py").write_text("print(2)  # unstaged\n")
    (git_repo / "notes.txt").write_text("untracked\n")
    return git_repo


def test_commit_contains_only_the_given_fleet_paths_and_leaves_user_work_alone(repo: Path) -> None:
    before = status(repo)
    write_fleet(repo)

    sha = gitops.commit_fleet(repo, [repo / ".fleet"], "fleet: init")

    assert sha == git(repo, "rev-parse", "HEAD").strip()
    paths = changed_paths(repo)
    assert paths and all(p.startswith(".fleet/") for p in paths)
    assert ".fleet/routes.toml" in paths and ".fleet/.gitignore" in paths
    assert git(repo, "log", "-1", "--format=%s").strip() == "fleet: init"
    # The user's staged, unstaged and untracked work is exactly as it was; .fleet is clean.
    assert status(repo) == before
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README"]
    git(repo, "fsck", "--no-progress")


def test_modification_addition_and_deletion_in_one_commit(repo: Path) -> None:
    fleet = write_fleet(repo)
    gitops.commit_fleet(repo, [fleet], "fleet: init")
    (fleet / "routes.toml").write_text("# emptied\n")
    (fleet / "agents" / "wms-reviewer" / "agent.toml").unlink()
    (fleet / "agents" / "wms-reviewer" / "CLAUDE.md").unlink()
    (fleet / "agents" / "wms-reviewer").rmdir()
    (fleet / "plugins").mkdir()
    (fleet / "plugins" / "x.toml").write_text("a = 1\n")

    gitops.commit_fleet(
        repo,
        [fleet / "routes.toml", fleet / "agents" / "wms-reviewer", fleet / "plugins"],
        "fleet: edit",
    )

    out = git(repo, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(filter(None, out)) == [
        "A\t.fleet/plugins/x.toml",
        "D\t.fleet/agents/wms-reviewer/CLAUDE.md",
        "D\t.fleet/agents/wms-reviewer/agent.toml",
        "M\t.fleet/routes.toml",
    ]
    assert not [line for line in status(repo) if ".fleet/" in line]


def test_nothing_to_commit_returns_none(repo: Path) -> None:
    fleet = write_fleet(repo)
    gitops.commit_fleet(repo, [fleet], "fleet: init")
    head = git(repo, "rev-parse", "HEAD")
    assert gitops.commit_fleet(repo, [fleet / "fleet.toml"], "fleet: again") is None
    assert git(repo, "rev-parse", "HEAD") == head


def test_state_is_never_committed(repo: Path) -> None:
    fleet = write_fleet(repo)
    (fleet / "state" / "router").mkdir(parents=True)
    (fleet / "state" / "router" / "cursor.json").write_text("{}")
    gitops.commit_fleet(repo, [fleet], "fleet: init")
    assert not [p for p in changed_paths(repo) if "/state/" in p]
    with pytest.raises(GitError, match="runtime state"):
        gitops.commit_fleet(repo, [fleet / "state" / "router" / "cursor.json"], "fleet: bad")


def test_paths_outside_fleet_are_refused(repo: Path) -> None:
    write_fleet(repo)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(GitError, match=r"only paths under \.fleet/"):
        gitops.commit_fleet(repo, [repo / "README"], "fleet: sneaky")
    assert git(repo, "rev-parse", "HEAD") == head


def test_unborn_repo_gets_its_first_commit(git_repo: Path) -> None:
    (git_repo / "other.txt").write_text("staged by the user\n")
    git(git_repo, "add", "other.txt")
    fleet = write_fleet(git_repo)

    assert gitops.head_commit(git_repo) is None
    sha = gitops.commit_fleet(git_repo, [fleet], "fleet: init")

    assert gitops.head_commit(git_repo) == sha
    assert git(git_repo, "rev-parse", "refs/heads/main").strip() == sha
    assert all(p.startswith(".fleet/") for p in changed_paths(git_repo))
    assert "A  other.txt" in status(git_repo)


def test_no_identity_falls_back_to_gh_fleet(tmp_path: Path, home: Path) -> None:
    repo = tmp_path / "bare-id"
    repo.mkdir()
    env = git_env(home)  # empty HOME: no user.name / user.email anywhere
    git(repo, "init", "-q", "-b", "main", env=env)
    write_fleet(repo)
    code = (
        "import sys; from pathlib import Path; from relayfleet.fleet.gitops import commit_fleet;"
        "print(commit_fleet(Path(sys.argv[1]), [Path(sys.argv[1]) / '.fleet'], 'fleet: init'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(repo)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    who = git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", env=env).strip()
    assert who == "gh-fleet <gh-fleet@localhost>|gh-fleet <gh-fleet@localhost>"


def test_git_author_env_vars_are_honoured(repo: Path) -> None:
    fleet = write_fleet(repo)
    env = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com"}
    gitops.commit_fleet(repo, [fleet], "fleet: init", env=env)
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn").strip() == (
        "Ada <ada@example.com>|Test User"
    )


def test_held_index_lock_is_a_clear_error_and_changes_nothing(repo: Path) -> None:
    fleet = write_fleet(repo)
    gitops.commit_fleet(repo, [fleet], "fleet: init")
    (fleet / "fleet.toml").write_text('[fleet]\nname = "renamed"\n')
    head, before = git(repo, "rev-parse", "HEAD"), status(repo)
    index_bytes = (repo / ".git" / "index").read_bytes()
    (repo / ".git" / "index.lock").write_text("")  # a user's git is running

    with pytest.raises(GitError, match="nothing was committed") as info:
        gitops.commit_fleet(repo, [fleet / "fleet.toml"], "fleet: rename")

    assert any("index.lock" in h for h in info.value.hints)
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / ".git" / "index").read_bytes() == index_bytes
    (repo / ".git" / "index.lock").unlink()
    assert status(repo) == before


def test_detached_head_moves_head_and_leaves_the_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach", "HEAD")
    main_before = git(repo, "rev-parse", "main")
    fleet = write_fleet(repo)

    sha = gitops.commit_fleet(repo, [fleet], "fleet: init")

    assert git(repo, "rev-parse", "HEAD").strip() == sha
    assert git(repo, "rev-parse", "main") == main_before
    proc = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=repo, capture_output=True)
    assert proc.returncode == 1  # still detached


def test_branch_moving_under_us_is_retried_not_lost(repo: Path) -> None:
    """Another writer keeps moving `main` (commit-tree + update-ref, no index lock) while we
    commit: every commit of both survives, and each of ours holds only its own file."""
    fleet = write_fleet(repo)
    gitops.commit_fleet(repo, [fleet], "fleet: init")
    stop = threading.Event()
    theirs: list[str] = []

    def other_writer() -> None:
        while not stop.is_set() and len(theirs) < 40:
            old = git(repo, "rev-parse", "main").strip()
            new = git(repo, "commit-tree", f"{old}^{{tree}}", "-p", old, "-m", "other").strip()
            proc = subprocess.run(
                ["git", "update-ref", "refs/heads/main", new, old], cwd=repo, capture_output=True
            )
            if proc.returncode == 0:
                theirs.append(new)

    t = threading.Thread(target=other_writer)
    t.start()
    ours = []
    try:
        for i in range(8):
            (fleet / f"extra{i}.toml").write_text(f"n = {i}\n")
            ours.append(gitops.commit_fleet(repo, [fleet / f"extra{i}.toml"], f"fleet: {i}"))
    finally:
        stop.set()
        t.join(30)
    reachable = set(git(repo, "rev-list", "main").split())
    assert set(ours) <= reachable and set(theirs) <= reachable
    for i, sha in enumerate(ours):
        assert changed_paths(repo, sha) == [f".fleet/extra{i}.toml"]


def test_concurrent_fleet_writers_are_serialized(repo: Path) -> None:
    fleet = write_fleet(repo)
    gitops.commit_fleet(repo, [fleet], "fleet: init")
    code = (
        "import sys; from pathlib import Path; from relayfleet.fleet.gitops import commit_fleet;"
        "r = Path(sys.argv[1]); f = r / '.fleet' / f'w{sys.argv[2]}.toml';"
        "f.write_text('x = 1\\n'); commit_fleet(r, [f], 'fleet: w' + sys.argv[2])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(repo), str(i)], env=os.environ.copy())
        for i in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    subjects = git(repo, "log", "--format=%s", "-5").split("\n")
    assert sorted(s for s in subjects if s.startswith("fleet: w")) == [
        "fleet: w0",
        "fleet: w1",
        "fleet: w2",
        "fleet: w3",
    ]
    assert not [line for line in status(repo) if ".fleet/" in line]


def test_texts_and_log_read_history(repo: Path) -> None:
    fleet = write_fleet(repo)
    first = gitops.commit_fleet(repo, [fleet], "fleet: init")
    (repo / "README").write_text("unrelated\n")
    git(repo, "commit", "-q", "-am", "user: not fleet")
    (fleet / "fleet.toml").write_text('[fleet]\nname = "two"\n')
    second = gitops.commit_fleet(repo, [fleet / "fleet.toml"], "fleet: rename")

    log = gitops.fleet_log(repo, 10)
    assert [c.sha for c in log] == [second, first]
    assert log[0].subject == "fleet: rename" and log[0].author == "Test User"
    assert log[0].short == second[:7] and log[0].date[:4].isdigit()
    assert gitops.fleet_log(repo, 1)[0].sha == second

    texts = gitops.fleet_texts_at(repo, first)
    assert set(texts) == {
        "fleet.toml",
        "routes.toml",
        "agents/wms-coder/agent.toml",
        "agents/wms-reviewer/agent.toml",
    }
    assert 'name = "demo"' in texts["fleet.toml"]
    assert gitops.fleet_texts_at(repo, "HEAD")["fleet.toml"] == '[fleet]\nname = "two"\n'


def test_ensure_repo_inits_or_finds_the_top(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    top = gitops.ensure_repo(plain)
    assert top == plain.resolve() and (plain / ".git").is_dir()
    assert gitops.ensure_repo(plain / "sub") == plain.resolve()
    assert gitops.head_commit(plain) is None


def test_linked_worktree_commits_to_its_own_branch(repo: Path, tmp_path: Path) -> None:
    main_before = git(repo, "rev-parse", "main")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "-b", "feature")
    fleet = write_fleet(wt)

    sha = gitops.commit_fleet(wt, [fleet], "fleet: on a branch")

    assert git(repo, "rev-parse", "feature").strip() == sha
    assert git(repo, "rev-parse", "main") == main_before
    assert not [line for line in status(wt) if ".fleet/" in line]
    assert "M  README" in status(repo)  # the main checkout's staged work is untouched
