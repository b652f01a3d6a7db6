"""A local "GitHub" for workspace tests: bare repositories at `<root>/<owner>/<name>.git`, that
`[github] clone_url = "<root>/{repo}.git"` points a fleet at."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def sh(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {cwd} failed: {proc.stderr}")
    return proc.stdout


@pytest.fixture
def gitenv(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """git in this process (and its children) sees only a fresh HOME, with an identity."""
    for k in list(os.environ):
        if k.startswith(("GIT_", "FLEET_")) or k in ("GH_TOKEN", "GITHUB_TOKEN"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for k, v in IDENTITY.items():
        monkeypatch.setenv(k, v)
    return home


def make_origin(root: Path, repo: str, files: dict[str, str] | None = None) -> Path:
    """A bare repository standing in for github.com/<repo>, with one commit on main."""
    bare = root / f"{repo}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    sh(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = root / f".seed-{repo.replace('/', '-')}"
    sh(root, "clone", "-q", str(bare), str(seed))
    sh(seed, "switch", "-q", "-c", "main")
    for name, text in (files or {"README.md": f"# {repo}\n"}).items():
        (seed / name).write_text(text)
    sh(seed, "add", "-A")
    sh(seed, "commit", "-q", "-m", "first")
    sh(seed, "push", "-q", "origin", "main")
    return bare


def push_change(root: Path, repo: str, name: str, text: str) -> str:
    """Someone else pushes a commit to main; returns its sha."""
    seed = root / f".seed-{repo.replace('/', '-')}"
    sh(seed, "pull", "-q", "--ff-only", "origin", "main")
    (seed / name).write_text(text)
    sh(seed, "add", "-A")
    sh(seed, "commit", "-q", "-m", f"change {name}")
    sh(seed, "push", "-q", "origin", "main")
    return sh(seed, "rev-parse", "HEAD").strip()


def fleet_repo(tmp_path: Path, origin_root: Path) -> Path:
    """An operator's repository holding an initialised fleet whose clone_url is `origin_root`."""
    from relayfleet.fleet.scaffold import init_fleet

    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    root = init_fleet(repo, name="t")
    toml = root / ".fleet" / "fleet.toml"
    text = toml.read_text().replace(
        'clone_url = "https://github.com/{repo}.git"', f'clone_url = "{origin_root}/{{repo}}.git"'
    )
    assert str(origin_root) in text
    toml.write_text(text)
    sh(root, "commit", "-q", "-am", "fleet: clone from the local origin")
    return root
