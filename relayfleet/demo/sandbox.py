"""`gh fleet up --sandbox`: the user's own fleet, against the bundled fake GitHub and fake `claude`.

    sb = Sandbox.create(paths)        # a copy of .fleet/ in a temp dir, made safe to run
    sb.start_github()                 # the fake GitHub, seeded with the fleet's repos
    FleetUp(sb.paths, out, Options(env=sb.env())).run()
    sb.close()

The copy, not the fleet itself, is what runs: its cursor, inboxes and logs live in the temp dir
and vanish with it, so the real fleet's state never sees a sandbox item. In the copy every agent
runs locally with the fake `claude` as its session, its own empty Claude config (no machine
login, no API key), a placeholder for each declared credential, and no gateway; watches poll
every few seconds. The children's environment holds the fake's throwaway token in place of any
GitHub or Anthropic credential, and `gh` is never asked for a token.

`gh fleet sandbox issue|pr|comment|label` (cli/commands/sandbox.py) drive the fake through the
pointer this writes to `.fleet/state/sandbox.json` (URL, pid, temp dir: no token; the token is
in the temp dir, mode 0600).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayfleet.core.atomic import read_json, write_atomic, write_json_atomic
from relayfleet.core.errors import FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import PidRecord, process_start_time

if TYPE_CHECKING:
    from relayfleet.fakes.github import FakeGitHub
    from relayfleet.fleet.model import Fleet

LOGIN = "fleet-bot"  # whom `@me` means in the sandbox
POLL_SEC = 5
PLACEHOLDER_ENV = "RELAYFLEET_SANDBOX_CREDENTIAL"
# Every variable through which a child could reach a real account.
SCRUBBED = (
    "GITHUB_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_SECURESTORAGE_CONFIG_DIR",
)


def pointer_path(paths: FleetPaths) -> Path:
    return paths.state / "sandbox.json"


@dataclass
class Sandbox:
    real: FleetPaths
    tmp: Path
    paths: FleetPaths
    repos: list[str]
    notes: list[str] = field(default_factory=list)
    token: str = field(default_factory=lambda: f"sandbox_{secrets.token_hex(16)}", repr=False)
    fake: FakeGitHub | None = None

    @classmethod
    def create(cls, real: FleetPaths, fleet: Fleet) -> Sandbox:
        tmp = Path(tempfile.mkdtemp(prefix="fleet-sandbox-"))
        os.chmod(tmp, 0o700)
        paths = FleetPaths(tmp / "fleet")
        shutil.copytree(
            real.fleet,
            paths.fleet,
            ignore=shutil.ignore_patterns("state", "__pycache__", "*.pyc"),
            symlinks=False,
        )
        repos = sorted(
            {w.repo for w in fleet.watches if w.repo}
            | {a.repo for a in fleet.agents.values()} - {""}
        )
        sb = cls(real=real, tmp=tmp, paths=paths, repos=repos)
        sb._make_safe(fleet)
        from relayfleet.fleet.gitops import commit_fleet, ensure_repo

        ensure_repo(paths.root)
        commit_fleet(paths.root, [paths.fleet], "fleet: sandbox copy")
        return sb

    # -- the copy -------------------------------------------------------------------------
    def _make_safe(self, fleet: Fleet) -> None:
        import tomlkit

        from relayfleet.fleet.toml_io import load_doc, save_doc

        doc = load_doc(self.paths.fleet_toml, "fleet.toml")
        gateway = doc.get("gateway")
        if gateway is not None and gateway.get("enabled"):
            gateway["enabled"] = False
            self.notes.append("the gateway is off: sessions talk to no model")
        save_doc(self.paths.fleet_toml, doc)

        if self.paths.routes_toml.exists():
            routes = load_doc(self.paths.routes_toml, "routes.toml")
            for w in routes.get("watch", []):
                w["poll_sec"] = POLL_SEC
            save_doc(self.paths.routes_toml, routes)

        fake_claude = [sys.executable, "-m", "relayfleet.fakes.fake_claude"]
        moved, emptied = [], []
        for name in sorted(fleet.agents):
            path = self.paths.agent_toml(name)
            a = load_doc(path, f"agents/{name}/agent.toml")
            runtime = a.setdefault("runtime", tomlkit.table())
            if runtime.get("backend", "local") != "local" or runtime.get("host"):
                moved.append(name)
            runtime["backend"], runtime["host"], runtime["inbox_transport"] = "local", "", "file"
            claude = a.setdefault("claude", tomlkit.table())
            claude["engine"] = "claude"
            claude["command"] = fake_claude
            transcript = self.paths.agent_state(name) / "transcript.jsonl"
            claude["args"] = ["--transcript", str(transcript)]
            claude["remote_control"] = False
            claude["isolate_config"] = True
            claude["inherit_auth"] = False  # never the machine's Claude login
            claude["endpoint"] = {"mode": "default", "url": "", "via_gateway": False}
            for cred in (a.get("credentials") or {}).values():
                for src in ("from_command", "from_file", "from_env"):
                    cred.pop(src, None)
                cred["from_env"] = PLACEHOLDER_ENV
                as_file = str(cred.get("as_file") or "")
                if as_file.startswith("/"):
                    cred["as_file"] = as_file.lstrip("/")  # into the agent's box, not over ours
            ws = a.get("workspace")
            if ws is not None and ws.get("mode", "none") != "none":
                ws["mode"] = "none"  # offline: no clone of the real repository
                emptied.append(name)
            save_doc(path, a)
        if emptied:
            self.notes.append(f"workspaces are empty directories here: {', '.join(emptied)}")
        if moved:
            self.notes.append(f"run locally here instead of docker/ssh: {', '.join(moved)}")

    # -- the fake GitHub ------------------------------------------------------------------
    def start_github(self) -> str:
        from relayfleet.fakes.github import FakeGitHub

        self.fake = FakeGitHub(token=self.token, login=LOGIN, poll_interval=POLL_SEC)
        url = self.fake.start()
        for repo in self.repos:
            self.fake.add_repo(repo)
        write_atomic(self.tmp / "token", self.token, mode=0o600)
        write_json_atomic(
            pointer_path(self.real),
            {
                "url": url,
                "dir": str(self.tmp),
                "root": str(self.paths.root),
                "repos": self.repos,
                "login": LOGIN,
                "pid": os.getpid(),
                "pid_start": process_start_time(os.getpid()),
            },
        )
        return url

    def env(self) -> dict[str, str]:
        """What every child of `up` gets on top of (and in place of parts of) our environment."""
        assert self.fake is not None
        env = {k: "" for k in SCRUBBED}
        env.update(
            FLEET_GITHUB_API_URL=self.fake.base_url,
            GH_TOKEN=self.token,
            GH_PATH=str(self.tmp / "no-gh"),  # `gh auth token` can never be run
            FLEET_ROUTER_MIN_PERIOD="2",
            **{PLACEHOLDER_ENV: "sandbox-placeholder-not-a-credential"},
        )
        return env

    def close(self) -> None:
        if self.fake is not None:
            self.fake.stop()
        current = read_json(pointer_path(self.real), None)
        if isinstance(current, dict) and current.get("dir") == str(self.tmp):
            pointer_path(self.real).unlink(missing_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def running_sandbox(paths: FleetPaths) -> dict[str, Any]:
    """The sandbox `up --sandbox` is running for this fleet, with its token; or a FleetError."""
    st = read_json(pointer_path(paths), None)
    alive = False
    if isinstance(st, dict):
        start = st.get("pid_start")
        rec = PidRecord(int(st.get("pid") or 0), str(start) if start else None, 0)
        alive = rec.alive()
    if not isinstance(st, dict) or not alive:
        raise FleetError(
            "no sandbox is running for this fleet",
            hints=["start one in another terminal: gh fleet up --sandbox"],
        )
    try:
        st["token"] = (Path(st["dir"]) / "token").read_text().strip()
    except OSError as exc:
        raise FleetError(f"the sandbox's token is unreadable: {exc.strerror or exc}") from None
    return st


def instructions(sb: Sandbox, url: str, agents: list[str]) -> list[str]:
    repo = sb.repos[0] if sb.repos else "owner/name"
    agent = agents[0] if agents else "<agent>"
    lines = [
        f"sandbox: fake GitHub at {url} with {', '.join(sb.repos) or 'no repos'}; "
        f"@me is {LOGIN}; no token, nothing reaches github.com or a model",
        f"sandbox: running a copy of your fleet in {sb.paths.root} (sessions are the fake "
        f"claude; watches poll every {POLL_SEC}s; your .fleet/ and its state are not touched)",
    ]
    lines += [f"sandbox: {n}" for n in sb.notes]
    lines += [
        "Try it from another terminal in this repository:",
        f'  gh fleet sandbox issue "Scanner crashes" --repo {repo} --assign @me',
        f'  gh fleet sandbox pr "Fix the crash" --repo {repo}',
        f"  gh fleet sandbox label 1 needs-human --repo {repo}",
        f"  FLEET_ROOT={sb.paths.root} gh fleet inbox {agent}    # what the router delivered",
        "or with curl (the token is in the sandbox dir):",
        f'  curl -s -H "Authorization: Bearer $(cat {sb.tmp / "token"})" '
        f'-d \'{{"args": ["{repo}", "Hello"]}}\' {url}/_fake/open_issue',
    ]
    return lines
