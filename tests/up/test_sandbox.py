"""`gh fleet up --sandbox`: the user's own fleet runs against the bundled fake GitHub and fake
`claude`, without a token; `gh fleet sandbox issue` makes an item that the fleet's own routes
deliver to a session. Real credentials in the environment reach no child, and the real fleet's
files and state are not touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relayfleet.core.atomic import read_jsonl
from tests.conftest import RunCli, git, git_env
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CANARY_GH = "ghp_canaryRealToken0000000000000000000042"
CANARY_ANTHROPIC = "sk-ant-canary-0000000000000000000042"


def environ_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()
    except OSError:
        return ""


def children_of_sandbox(root: Path) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and f"FLEET_ROOT={root}\n" in environ_of(int(d)) + "\n":
            pids.append(int(d))
    return pids


def test_up_sandbox_runs_the_fleet_offline_and_touches_nothing_real(
    git_repo: Path, home: Path, run_cli: RunCli
) -> None:
    assert run_cli("init", "--name", "mine", cwd=git_repo).returncode == 0
    made = run_cli("new-agent", "coder", "--role", "coder", "--repo", "acme/app", cwd=git_repo)
    assert made.returncode == 0, made.stderr
    before = git(git_repo, "rev-parse", "HEAD")

    env = git_env(home, GH_TOKEN=CANARY_GH, ANTHROPIC_API_KEY=CANARY_ANTHROPIC)
    log = git_repo.parent / "up.out"
    with open(log, "wb") as f:
        up = subprocess.Popen(
            [sys.executable, "-m", "relayfleet", "up", "--sandbox"],
            cwd=git_repo, env=env, stdin=subprocess.DEVNULL, stdout=f,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "session up" in log.read_text(), 60)
        out = log.read_text()
        assert "fake GitHub at http://127.0.0.1:" in out and "with acme/app" in out
        assert 'gh fleet sandbox issue "Scanner crashes" --repo acme/app --assign @me' in out
        # Offline: the coder's clone of acme/app becomes an empty directory in the copy.
        assert "sandbox: workspaces are empty directories here: coder" in out
        pointer = json.loads((git_repo / ".fleet" / "state" / "sandbox.json").read_text())
        assert CANARY_GH not in json.dumps(pointer) and "token" not in pointer
        root = Path(pointer["root"])

        made = run_cli("sandbox", "issue", "Scanner crashes", "--assign", "@me", cwd=git_repo)
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("opened issue acme/app#1")
        bad = run_cli("sandbox", "label", "99", "bug", cwd=git_repo)
        assert bad.returncode == 1 and "refused" in bad.stderr and "99" in bad.stderr

        # The fleet's own starter route (assigned to @me -> coder) delivers it to the session.
        inbox = root / ".fleet" / "state" / "agents" / "coder" / "inbox.jsonl"
        wait_until(lambda: any("Scanner crashes" in e["body"] for e in read_jsonl(inbox)), 60)
        transcript = root / ".fleet" / "state" / "agents" / "coder" / "transcript.jsonl"
        wait_until(
            lambda: any(
                r.get("type") == "turn" and "Scanner crashes" in str(r.get("text"))
                for r in read_jsonl(transcript)
            ),
            60,
        )

        # No child of the sandbox holds a real credential; none is written anywhere in it.
        kids = children_of_sandbox(root)
        assert kids, "the sandbox's router and runner were not found"
        for pid in kids:
            e = environ_of(pid)
            assert CANARY_GH not in e and CANARY_ANTHROPIC not in e
        for p in [*root.rglob("*"), *(git_repo / ".fleet").rglob("*")]:
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                assert CANARY_GH.encode() not in data and CANARY_ANTHROPIC.encode() not in data
        # The real fleet: same commit, no uncommitted change, no runtime state but the pointer.
        assert git(git_repo, "rev-parse", "HEAD") == before
        assert git(git_repo, "status", "--porcelain", ".fleet") == ""
        # (the fleet lock that `new-agent` took is the only other thing there)
        state = (git_repo / ".fleet" / "state").iterdir()
        assert sorted(p.name for p in state if not p.name.startswith("fleet.lock")) == [
            "sandbox.json"
        ]
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
        rc = up.wait(60)
    assert rc in (0, 130)
    assert not root.parent.exists()  # the sandbox dir is gone
    assert not (git_repo / ".fleet" / "state" / "sandbox.json").exists()
    gone = run_cli("sandbox", "issue", "Late", cwd=git_repo)
    assert gone.returncode == 1 and "no sandbox is running" in gone.stderr
