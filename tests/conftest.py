"""Shared fixtures: a real git repository in a temp dir, and the real `gh-fleet` executable."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

PROJECT = Path(__file__).resolve().parent.parent
GH_FLEET = PROJECT / "gh-fleet"
VENV = Path(os.environ.get("GH_FLEET_VENV") or PROJECT / ".venv")
# Real credentials never reach a test's commands (gh, the router, the gateway would use them).
SECRET_ENV = ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "ANTHROPIC_API_KEY")


def git_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment where git and gh-fleet see only `home` (no user or system config)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "FLEET_")) and k not in SECRET_ENV
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GH_FLEET_VENV=str(VENV),
    )
    env.update(extra)
    return env


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the real git CLI in `repo`; returns stdout, raises on failure."""
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def git_repo(tmp_path: Path, home: Path) -> Path:
    """A fresh repository (branch main, no commits) with a repo-local identity."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = git_env(home)
    git(repo, "init", "-q", "-b", "main", env=env)
    git(repo, "config", "user.name", "Test User", env=env)
    git(repo, "config", "user.email", "test@example.com", env=env)
    return repo


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(home: Path) -> RunCli:
    """Run the real `./gh-fleet` launcher: `run_cli("route", "--json", cwd=repo)`."""

    def run(
        *args: str,
        cwd: Path,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GH_FLEET), *args],
            cwd=cwd,
            env=git_env(home, **(env or {})),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


class CliResult(NamedTuple):
    rc: int
    out: str
    err: str


@pytest.fixture
def cli(home: Path) -> Callable[..., CliResult]:
    """Run `gh fleet <args>` in-process through the real error boundary:
    `rc, out, err = cli("list", "--json", cwd=repo)`."""
    from relayfleet.cli.context import Context
    from relayfleet.cli.main import main

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(out=out, err=err, env=git_env(home, **(env or {})), cwd=Path(cwd))
        rc = main(list(args), ctx=ctx)
        return CliResult(rc, out.getvalue(), err.getvalue())

    return run
