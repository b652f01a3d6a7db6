"""A real fleet in a real git repository, a fake GitHub that keeps changing, and `gh fleet up`
running as a real process: the parts `test_up.py` is built from."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.core.atomic import read_json, read_jsonl
from relayfleet.core.paths import FleetPaths
from tests.cli.fleetkit import ECHO_SCRIPT  # the session program: a transcript of what is typed
from tests.procfs import pid_alive
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests that use this kit)

PY = sys.executable
PROJECT = Path(__file__).resolve().parents[2]
REPO = "acme/app"
TOKEN = "ghp_upTestToken000000000000000000000001"


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    """`gh fleet <args>` in-process on the fleet at `root`, no other FLEET_ setting."""
    out, err = io.StringIO(), io.StringIO()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env["FLEET_ROOT"] = str(root)
    rc = main(list(args), ctx=Context(out=out, err=err, env=env, cwd=root))
    return rc, out.getvalue(), err.getvalue()


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def watch_toml(name: str, filter_: str = "--state all") -> str:
    return (
        f'[[watch]]\nname = "{name}"\nkind = "issues"\nrepo = "{REPO}"\n'
        f'filter = "{filter_}"\npoll_sec = 1\n\n'
    )


def route_toml(to: list[str], **match: str) -> str:
    keys = "".join(f'{k} = "{v}"\n' for k, v in match.items())
    return f"[[route]]\nto = {json.dumps(to)}\n[route.match]\n{keys}\n"


class Fleet:
    """`.fleet/` in a git work tree; agents run a tiny echo session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = FleetPaths(root)
        self.script = root.parent / "echo_session.py"

    @classmethod
    def create(cls, root: Path, *, init_git: bool = True) -> Fleet:
        root.mkdir(parents=True, exist_ok=True)
        f = cls(root)
        f.script.write_text(ECHO_SCRIPT)
        if init_git:
            git(root, "init", "-q", "-b", "main")
        (root / ".fleet" / "agents").mkdir(parents=True, exist_ok=True)
        (root / ".fleet" / "fleet.toml").write_text('[fleet]\nname = "up-test"\n')
        (root / ".fleet" / ".gitignore").write_text("state/\n")
        return f

    def transcript(self, name: str) -> Path:
        return self.root.parent / f"{name}.transcript.jsonl"

    def write_agent(self, name: str, port: int, *, ack_timeout_sec: int = 600) -> None:
        d = self.paths.agent_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        (d / "CLAUDE.md").write_text(f"You are {name}, a test agent.\n")
        command = [PY, str(self.script), str(self.transcript(name))]
        (d / "agent.toml").write_text(
            f'name = "{name}"\nrole = "coder"\nport = {port}\nplugins = []\n'
            f"ack_timeout_sec = {ack_timeout_sec}\n"
            '[runtime]\nbackend = "local"\n'
            f'[claude]\nengine = "command"\ncommand = {json.dumps(command)}\n'
            "remote_control = false\n"
        )

    def write_routes(self, text: str) -> None:
        self.paths.routes_toml.write_text(text)

    def commit(self, message: str) -> str:
        git(self.root, "add", "-A", ".fleet")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD").strip()

    # -- what is running ------------------------------------------------------------------
    def runner(self, name: str) -> dict[str, Any]:
        return read_json(self.paths.runner_status(name), {}) or {}

    def runner_pid(self, name: str) -> int | None:
        st = self.runner(name)
        return st.get("pid") if st.get("running") and pid_alive(st.get("pid")) else None

    def session_up(self, name: str) -> bool:
        st = self.runner(name)
        return bool(st.get("delivery")) and pid_alive(st.get("pid"))

    def router(self) -> dict[str, Any]:
        return read_json(self.paths.router_status, {}) or {}

    def router_pid(self) -> int | None:
        rec = read_json(self.paths.router_pid, {}) or {}
        return rec.get("pid") if pid_alive(rec.get("pid")) else None

    def inbox_numbers(self, name: str) -> list[int]:
        return [e["metadata"]["number"] for e in read_jsonl(self.paths.inbox(name))]

    def inbox_events(self, name: str) -> list[dict[str, Any]]:
        return list(read_jsonl(self.paths.inbox(name)))


class Streamer(threading.Thread):
    """Opens an issue on the fake GitHub every `every` seconds until stopped."""

    def __init__(self, fake: Any, every: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.fake, self.every = fake, every
        self.numbers: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            n = self.fake.open_issue(REPO, f"item {len(self.numbers)}", author="alice")
            self.numbers.append(n)

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


class Up:
    """`python -m relayfleet up …` as a real process; its output goes to a file we read."""

    def __init__(self, fleet: Fleet, env: dict[str, str], *args: str) -> None:
        self.log = fleet.root.parent / "up.out"
        self._f = open(self.log, "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [PY, "-m", "relayfleet", "up", *args],
            cwd=fleet.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._f,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our SIGINT goes to `up` alone, as a terminal's would
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def said(self, text: str, after: int = 0) -> bool:
        return text in self.output[after:]

    def interrupt(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._f.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._f.close()


def env_for(root: Path, home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "FLEET_", "GH_", "GITHUB_")) and k != "ANTHROPIC_API_KEY"
    }
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="t@example.com",
        FLEET_ROUTER_MIN_PERIOD="0",  # the router's floor (10 s by default) would slow tests
        PYTHONPATH=str(PROJECT),
    )
    env.update(extra)
    return env


def origin_and_clone(tmp_path: Path) -> tuple[Fleet, Fleet]:
    """`laptop` pushes to a bare origin; `server` is a clone that tracks it (origin/main) and runs
    the same session program."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    laptop = Fleet.create(tmp_path / "laptop")
    laptop.write_routes("")
    laptop.commit("fleet: empty")
    git(laptop.root, "remote", "add", "origin", str(origin))
    git(laptop.root, "push", "-q", "-u", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), str(tmp_path / "server"))
    server = Fleet(tmp_path / "server")
    server.script = laptop.script
    return laptop, server
