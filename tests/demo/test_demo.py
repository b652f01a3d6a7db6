"""`gh fleet demo`: the whole pipeline offline, run as a newcomer would, in fast mode."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GH_FLEET, git_env
from tests.procfs import processes_mentioning

pytestmark = pytest.mark.slow


def bare_path(tmp_path: Path) -> str:
    """A PATH with Python, git and the shell tools the launcher uses: no gh, claude or docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("python3", "git", "bash", "env", "cksum", "cat", "dirname", "readlink"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The demo's TMPDIR: all it makes goes there, so what it leaves behind is plain to see."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp


def gh_fleet(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """`gh fleet <argv>` as a newcomer runs it, from the launcher."""
    return subprocess.run(
        [str(GH_FLEET), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def test_demo_plays_the_story_and_leaves_nothing_behind(
    tmp_path: Path, home: Path, scratch: Path
) -> None:
    path = bare_path(tmp_path)
    for absent in ("gh", "claude", "docker"):
        assert shutil.which(absent, path=path) is None
    env = git_env(home, TMPDIR=str(scratch), PATH=path)

    proc = gh_fleet(tmp_path, env, "demo", "--fast")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    # Every hop of the story is shown: GitHub, the router, the session.
    assert "assigned to @acme-coder" in out
    assert re.search(r"coder\s+turn via (channel|pty)", out)
    assert re.search(r"reviewer\s+turn via (channel|pty)", out)
    assert re.search(r"manager\s+turn via (channel|pty)", out)
    assert "kill -9" in out
    assert "blocked by the association gate" in out
    # The summary is the acceptance check.
    assert "events delivered      3 of 3 expected, 0 duplicates" in out
    assert "gate                  1 of 1 outside items blocked" in out
    assert "backlog replayed      0" in out
    m = re.search(r"GitHub API requests\s+(\d+) .* vs (\d+) the naive way", out)
    assert m and int(m.group(1)) < int(m.group(2))
    # Nothing left behind: no temp fleet, no socket, no process. (Runners with long state paths
    # keep their attach socket in a per-user dir under TMPDIR; it must be empty again.)
    leftovers = [
        p for p in scratch.rglob("*") if not (p.is_dir() and p.name.startswith("relayfleet-"))
    ]
    assert leftovers == []
    assert processes_mentioning(str(scratch)) == []


def test_demo_keep_leaves_an_explorable_fleet(tmp_path: Path, home: Path, scratch: Path) -> None:
    env = git_env(home, TMPDIR=str(scratch))

    proc = gh_fleet(tmp_path, env, "demo", "--fast", "--keep")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = [p for p in scratch.iterdir() if p.name.startswith("fleet-demo-")]
    assert len(kept) == 1
    root = kept[0] / "fleet"
    assert f"The fleet is kept in {root}" in proc.stdout
    assert processes_mentioning(str(scratch)) == []
    listing = gh_fleet(root, env, "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert "coder" in listing.stdout
    inbox = gh_fleet(root, env, "inbox", "coder", "--json")
    assert inbox.returncode == 0, inbox.stderr
    assert "acme/widgets" in inbox.stdout


def test_a_failed_demo_keeps_its_files_and_names_one_that_exists(
    tmp_path: Path, home: Path, scratch: Path
) -> None:
    # Sessions that take longer to start than the demo waits: a real failure, mid-way.
    env = git_env(home, TMPDIR=str(scratch), FAKE_CLAUDE_SLOW_START="300")

    proc = gh_fleet(tmp_path, env, "demo", "--fast")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("gh fleet: the agents did not become ready")
    kept = re.search(r"hint: the demo's files are kept in (\S+)", proc.stderr)
    named = re.search(r"hint: see (\S+)", proc.stderr)
    assert kept and named, proc.stderr
    assert Path(kept.group(1)).is_dir() and Path(named.group(1)).is_file()
    assert Path(named.group(1)).name == "up.log" and Path(named.group(1)).read_text()
    assert processes_mentioning(str(scratch)) == []
