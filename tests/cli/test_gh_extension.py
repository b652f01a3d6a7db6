"""`gh extension install <local dir>` then `gh fleet …`, with the real GitHub CLI (offline).

gh names a local extension after its directory, which must be called `gh-<name>`; the checkout
may be called anything, so the test installs through a `gh-fleet` symlink to it. gh wants a
token even for a local install; a dummy one is enough (nothing goes to the network).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fleet_samples import write_fleet

from relayfleet.fleet.gitops import commit_fleet
from tests.conftest import PROJECT, VENV, git, git_env

GH = shutil.which("gh")
pytestmark = pytest.mark.skipif(
    GH is None, reason="the GitHub CLI `gh` is not installed (apt-get install gh)"
)


def gh_env(tmp_path: Path, home: Path) -> dict[str, str]:
    return git_env(
        home,
        GH_CONFIG_DIR=str(tmp_path / "gh-config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        GH_TOKEN="offline-test-token",
        GH_NO_UPDATE_NOTIFIER="1",
        GH_PROMPT_DISABLED="1",
        GH_FLEET_VENV=str(VENV),  # the existing venv: the launcher must not reinstall
    )


def gh(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert GH is not None
    return subprocess.run(
        [GH, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def installed(tmp_path: Path, home: Path) -> dict[str, str]:
    env = gh_env(tmp_path, home)
    link = tmp_path / "gh-fleet"
    link.symlink_to(PROJECT, target_is_directory=True)
    # gh names the extension after os.Getwd(), which honours $PWD: keep the link's name.
    proc = gh("extension", "install", ".", cwd=link, env={**env, "PWD": str(link)})
    assert proc.returncode == 0, proc.stderr
    return env


def test_gh_fleet_help_runs_through_gh(installed: dict[str, str], tmp_path: Path) -> None:
    listed = gh("extension", "list", cwd=tmp_path, env=installed)
    assert "gh fleet" in listed.stdout

    proc = gh("fleet", "--help", cwd=tmp_path, env=installed)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: gh fleet")
    assert "route" in proc.stdout and "history" in proc.stdout
    assert "setting up" not in proc.stderr  # the existing venv was used as is


def test_gh_fleet_runs_a_command_in_a_fleet(installed: dict[str, str], git_repo: Path) -> None:
    commit_fleet(git_repo, [write_fleet(git_repo)], "fleet: init")

    proc = gh("fleet", "watch", "add", "ci", "--kind", "runs", "--repo", "acme/WMS",
              cwd=git_repo, env=installed)  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    assert (
        git(git_repo, "log", "-1", "--format=%s").strip() == "fleet: add watch ci (runs acme/WMS)"
    )
    bad = gh("fleet", "route", "remove", "42", cwd=git_repo, env=installed)
    assert bad.returncode == 1
    assert bad.stderr.startswith("gh fleet: no route #42")
