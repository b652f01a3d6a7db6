"""Secrets stay out of `.fleet/` (committed), logs, output, argv and error messages.

A real router runs with a canary GH_TOKEN against the fake GitHub, through a 401 and a 500;
then every file under the fleet (the git objects included), every process's argv and the output
of the commands an operator pastes into an issue are searched for the canary.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.core.errors import GitError
from relayfleet.fakes.github import FakeGitHub
from relayfleet.fleet.gitops import commit_fleet
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CANARY = "ghp_CANARYsecReview00000000000000000000042"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:  # its own token is not the canary: the first poll gets a 401
        gh.add_repo("acme/wms")
        yield gh


@pytest.fixture
def root(tmp_path: Path, fake: FakeGitHub) -> Iterator[Path]:
    root = tmp_path / "repo"
    root.mkdir()
    assert cli(root, fake, "init", "--name", "t").rc == 0
    assert cli(root, fake, "new-agent", "coder", "--role", "coder", "--repo", "acme/wms").rc == 0
    assert cli(root, fake, "watch", "add", "wms", "--kind", "issues", "--repo", "acme/wms").rc == 0
    yield root
    cli(root, fake, "router", "stop")


class Out:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err


def cli(root: Path, fake: FakeGitHub, *argv: str) -> Out:
    out, err = io.StringIO(), io.StringIO()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}
    env = {**keep, "HOME": str(root.parent), "FLEET_ROOT": str(root), "GIT_CONFIG_NOSYSTEM": "1",
           "FLEET_GITHUB_API_URL": fake.base_url, "GH_TOKEN": CANARY,
           "FLEET_ROUTER_MIN_PERIOD": "0"}  # fmt: skip
    rc = main(list(argv), Context(out=out, err=err, env=env, cwd=root))
    return Out(rc, out.getvalue(), err.getvalue())


def files_with_canary(top: Path) -> list[str]:
    hits = []
    for p in top.rglob("*"):
        if p.is_file() and not p.is_symlink() and CANARY.encode() in p.read_bytes():
            hits.append(str(p))
    return hits


def argv_with_canary() -> list[str]:
    hits = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if CANARY.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    hits.append(d)
            except OSError:
                continue
    return hits


def test_the_router_token_leaks_nowhere_through_a_401_and_a_500(
    root: Path, fake: FakeGitHub
) -> None:
    outputs = []
    rejected = cli(root, fake, "router", "run", "--once")
    assert rejected.rc == 1 and "401" in rejected.err
    outputs.append(rejected)

    fake.add_token(CANARY)
    outputs.append(cli(root, fake, "router", "run", "--once"))  # the snapshot
    fake.fail_next(3, status=500)
    fake.open_issue("acme/wms", "Crash", author="alice")
    outputs.append(cli(root, fake, "router", "run", "--once"))

    started = cli(root, fake, "router", "start")
    assert started.rc == 0, started.err
    wait_until(lambda: "cycle" in cli(root, fake, "router", "status").out)
    assert argv_with_canary() == []
    for argv in (
        ("status", "--json"),
        ("status",),
        ("router", "status", "--json"),
        ("doctor",),
        ("history", "--json"),
        ("diff", "HEAD~2"),
        ("inbox", "coder", "--json"),
        ("logs", "coder"),
    ):
        outputs.append(cli(root, fake, *argv))
    assert cli(root, fake, "router", "stop").rc == 0

    for o in outputs:
        assert CANARY not in o.out and CANARY not in o.err
    assert files_with_canary(root) == []  # .fleet/ (state too) and .git/

    state = root / ".fleet" / "state" / "router"
    for name in ("http-cache.json", "cursor.json"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    for d in (root / ".fleet" / "state", state):
        assert not stat.S_IMODE(d.stat().st_mode) & stat.S_IWOTH


def test_nothing_under_state_can_be_committed(root: Path, fake: FakeGitHub) -> None:
    secret = root / ".fleet" / "state" / "gateway" / "secret"
    secret.parent.mkdir(parents=True)
    secret.write_text("top-secret\n")
    for path in (
        secret,
        secret.parent,
        root / ".fleet" / "state",
        Path(".fleet/state/x/../gateway/secret"),
    ):
        with pytest.raises(GitError, match="state/"):
            commit_fleet(root, [path], "fleet: sneak")
    # A directory commit of the whole .fleet/ skips state/ even without the .gitignore line.
    (root / ".fleet" / ".gitignore").write_text("")
    commit_fleet(root, [root / ".fleet"], "fleet: everything")
    assert files_with_canary(root) == []
    tracked = cli(root, fake, "history", "--json").out
    assert "state/" not in tracked
    from tests.conftest import git

    assert "state/" not in git(root, "ls-files")
    assert "top-secret" not in git(root, "log", "-p")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".fleet", "x\n"])
def test_names_cannot_traverse_paths(root: Path, fake: FakeGitHub, name: str) -> None:
    assert cli(root, fake, "new-agent", name, "--role", "coder").rc != 0
    assert cli(root, fake, "watch", "add", name, "--kind", "issues", "--repo", "a/b").rc != 0
    assert not (root / ".fleet" / "evil").exists() and not (root / "evil").exists()


def test_an_agent_folder_linked_out_of_the_fleet_is_refused(
    root: Path, fake: FakeGitHub, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("PRIVATE KEY\n")
    agent = root / ".fleet" / "agents" / "coder"
    (agent / "CLAUDE.md").unlink()
    (agent / "CLAUDE.md").symlink_to(key)  # what a hostile pull request could add
    res = cli(root, fake, "validate")
    assert res.rc == 1 and "symlink out of .fleet/" in res.err
    assert cli(root, fake, "start", "coder").rc == 1
    assert "PRIVATE KEY" not in res.out + res.err
