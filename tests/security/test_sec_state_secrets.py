"""Every file under `.fleet/state/` that holds a secret is 0600 in a 0700 directory, whatever
the operator's umask, and whichever command made it.

A real fleet runs under umask 022 (the usual shell default): a gateway whose secret is made in
state, a router with webhooks on (a GitHub token, a webhook secret), and an agent whose session
is the fake `claude` with every secret-bearing feature on (the MCP channel's bearer, the
permission hook's token, an HTTP inbox, a gateway sentinel, a declared credential). `login
--print-env` and `tell` run from the operator's shell too: they write state by other paths.
Then each known secret is searched for in every file under `.fleet/state/`.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.core.atomic import read_jsonl
from relayfleet.core.paths import FleetPaths
from relayfleet.core.sentinel import sentinel_for
from relayfleet.fakes.github import FakeGitHub
from relayfleet.fakes.github_hooks import hook_payload, post_hook
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

REPO = "acme/wms"
GH_TOKEN = "ghp_STATEsecretCanary000000000000000000042"
WEBHOOK_SECRET = "whsec-STATE-canary-0000000000000042"
CREDENTIAL = "deploy-STATE-canary-0000000000000042"
# Files the run must leave holding a secret (so the search below has something to judge).
MUST_HOLD = (
    "gateway/secret",
    "agents/coder/mcp.json",
    "agents/coder/permission-hook.json",
    "agents/coder/http-inbox.json",
    "agents/coder/claude-config/.claude.json",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fleet:
    def __init__(self, root: Path, fake: FakeGitHub) -> None:
        self.root, self.fake = root, fake
        self.paths = FleetPaths(root)
        self.hook_port, self.gateway_port = free_port(), free_port()
        fleet = root / ".fleet"
        (fleet / "agents" / "coder").mkdir(parents=True)
        (fleet / ".gitignore").write_text("state/\n")
        (fleet / "fleet.toml").write_text(
            '[fleet]\nname = "sec"\n'
            f'[gateway]\nenabled = true\nlisten = "127.0.0.1:{self.gateway_port}"\n'
            f'[webhook]\nenabled = true\nlisten = "127.0.0.1:{self.hook_port}"\n'
            'secret = { from_env = "FLEET_WEBHOOK_SECRET" }\nreconcile_sec = 600\n'
        )
        (fleet / "routes.toml").write_text(
            f'[[watch]]\nname = "wms"\nkind = "issues"\nrepo = "{REPO}"\npoll_sec = 1\n'
            '[[route]]\nto = ["coder"]\n[route.match]\nwatch = "wms"\n'
        )
        fake_claude = json.dumps([sys.executable, "-m", "relayfleet.fakes.fake_claude"])
        transcript = json.dumps(["--transcript", str(self.paths.agent_state("coder") / "t.jsonl")])
        (fleet / "agents" / "coder" / "CLAUDE.md").write_text("You are coder.\n")
        (fleet / "agents" / "coder" / "agent.toml").write_text(
            f'name = "coder"\nrole = "coder"\nrepo = "{REPO}"\nport = {free_port()}\n'
            'plugins = ["inbox"]\n'
            '[runtime]\nbackend = "local"\ninbox_transport = "http"\n'
            f'[claude]\nengine = "claude"\ncommand = {fake_claude}\nargs = {transcript}\n'
            "remote_control = false\nisolate_config = true\ninherit_auth = false\n"
            '[claude.endpoint]\nmode = "gateway"\n'
            '[permissions]\nmode = "policy"\nallow = ["Read"]\n'
            '[credentials.deploy]\nfrom_env = "SEC_DEPLOY_CREDENTIAL"\nas_env = "DEPLOY_TOKEN"\n'
        )
        # Never started: what `tell` sends it waits in the outbox.
        (fleet / "agents" / "idle").mkdir()
        (fleet / "agents" / "idle" / "CLAUDE.md").write_text("You are idle.\n")
        (fleet / "agents" / "idle" / "agent.toml").write_text(
            f'name = "idle"\nrole = "coder"\nport = {free_port()}\n'
            '[runtime]\nbackend = "local"\ninbox_transport = "http"\n'
            f'[claude]\nengine = "claude"\ncommand = {fake_claude}\nremote_control = false\n'
        )

    def cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}
        env = {**keep, "HOME": str(self.root.parent), "FLEET_ROOT": str(self.root),
               "GIT_CONFIG_NOSYSTEM": "1", "FLEET_GITHUB_API_URL": self.fake.base_url,
               "GH_TOKEN": GH_TOKEN, "FLEET_ROUTER_MIN_PERIOD": "0",
               "FLEET_WEBHOOK_SECRET": WEBHOOK_SECRET, "SEC_DEPLOY_CREDENTIAL": CREDENTIAL,
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip
        rc = main(list(argv), Context(out=out, err=err, env=env, cwd=self.root))
        return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def fleet(tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    # The local backend hands its runner this process's environment (the operator's shell).
    monkeypatch.setenv("SEC_DEPLOY_CREDENTIAL", CREDENTIAL)
    with FakeGitHub(token=GH_TOKEN) as gh:
        gh.add_repo(REPO)
        f = Fleet(tmp_path / "repo", gh)
        try:
            yield f
        finally:
            f.cli("stop", "--all")
            f.cli("router", "stop")
            f.cli("gateway", "stop")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def argv_with(value: str) -> list[str]:
    """Pids whose command line contains `value`."""
    hits = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if value.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    hits.append(d)
            except OSError:
                continue
    return hits


def known_secrets(paths: FleetPaths) -> dict[str, str]:
    """Every secret the run used: ours, and the ones the fleet made (read from where they live)."""
    state = paths.agent_state("coder")
    gateway_secret = (paths.state / "gateway" / "secret").read_text().strip()
    mcp = json.loads((state / "mcp.json").read_text())
    bearer = next(iter(mcp["mcpServers"].values()))["headers"]["Authorization"].split()[1]
    return {
        "GitHub token": GH_TOKEN,
        "webhook secret": WEBHOOK_SECRET,
        "declared credential": CREDENTIAL,
        "gateway secret": gateway_secret,
        "gateway sentinel": sentinel_for(gateway_secret.encode(), "coder"),
        "sentinel's approval key": sentinel_for(gateway_secret.encode(), "coder")[-20:],
        "channel bearer": bearer,
        "permission hook token": json.loads((state / "permission-hook.json").read_text())["token"],
        "HTTP inbox token": json.loads((state / "http-inbox.json").read_text())["token"],
    }


def test_every_state_file_holding_a_secret_is_0600_in_a_0700_dir(fleet: Fleet) -> None:
    paths = fleet.paths
    # What an earlier version left: directories made under the operator's umask.
    for d in (paths.state / "gateway", paths.state / "outbox"):
        d.mkdir(parents=True)
        assert mode(d) == 0o755
    # The operator's shell (umask 022) runs these: each one writes state of its own.
    for argv in (("gateway", "start"), ("router", "start"), ("login", "coder", "--print-env")):
        rc, _, err = fleet.cli(*argv)
        assert rc == 0, (argv, err)
    # `login` made the agent's state before its runner ever ran: as private as the runner's.
    assert mode(paths.agent_state("coder")) == 0o700
    assert mode(paths.agent_state("coder") / "claude-config") == 0o700
    rc, _, err = fleet.cli("start", "coder")
    assert rc == 0, err
    state = paths.agent_state("coder")
    wait_until(lambda: (state / "http-inbox.json").exists() and (state / "mcp.json").exists())
    wait_until(lambda: (state / "permission-hook.json").exists())
    for agent in ("coder", "idle"):
        rc, _, err = fleet.cli("tell", agent, "hello over the HTTP inbox")
        assert rc == 0, err

    url = f"http://127.0.0.1:{fleet.hook_port}/"
    wait_until(lambda: json.loads(paths.router_status.read_text() or "{}").get("last_cycle"))
    n = fleet.fake.open_issue(REPO, "Scanner crash", author="alice")
    payload = hook_payload(fleet.fake, "issues", REPO, n, "opened")
    assert post_hook(url, WEBHOOK_SECRET.encode(), "issues", payload)[0] == 200
    wait_until(lambda: len(read_jsonl(paths.inbox("coder"))) == 2)

    secrets = known_secrets(paths)
    # While everything runs: no secret is on any process's command line either.
    assert {what: pids for what, value in secrets.items() if (pids := argv_with(value))} == {}
    holders: dict[str, list[str]] = {}
    loose: list[str] = []
    for p in sorted(paths.state.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        data = p.read_bytes()
        found = [what for what, value in secrets.items() if value.encode() in data]
        if not found:
            continue
        rel = p.relative_to(paths.state).as_posix()
        holders[rel] = found
        if mode(p) != 0o600 or mode(p.parent) != 0o700:
            loose.append(f"{rel}: {mode(p):o} in {mode(p.parent):o} ({', '.join(found)})")

    # The search found what it was looking for: the test cannot pass by finding nothing.
    for rel in MUST_HOLD:
        assert rel in holders, sorted(holders)
    assert loose == []

    # Session text waiting for an agent is as private as its inbox.
    box = paths.state / "outbox"
    assert sorted(p.name for p in box.iterdir()) == [
        "coder.lock", "idle.jsonl", "idle.lock", "idle.retry.json"]  # fmt: skip
    assert mode(box) == 0o700
    assert {p.name: mode(p) for p in box.iterdir() if mode(p) != 0o600} == {}


def test_the_gateway_secret_is_never_written_through_a_linked_directory(
    tmp_path: Path, loose_umask: None
) -> None:
    from relayfleet.core.errors import CredentialError
    from relayfleet.core.sentinel import load_or_create_secret

    state = tmp_path / ".fleet" / "state"
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir(mode=0o755)
    state.mkdir(parents=True)
    (state / "gateway").symlink_to(elsewhere)
    with pytest.raises(CredentialError, match="not a directory owned by"):
        load_or_create_secret(state, {}, "RELAYFLEET_GATEWAY_SECRET")
    assert list(elsewhere.iterdir()) == []
    assert mode(elsewhere) == 0o755  # not chmod-ed through the link either

    (state / "gateway").unlink()
    secret = load_or_create_secret(state, {}, "RELAYFLEET_GATEWAY_SECRET")
    assert len(secret) == 64
    assert mode(state / "gateway") == 0o700 and mode(state / "gateway" / "secret") == 0o600


# A client logging in: it writes its credentials with whatever mode open() gives them.
LOGIN_CLIENT = """\
import os, sys
assert sys.argv[1:] == ["/login"], sys.argv
cdir = os.environ["CLAUDE_CONFIG_DIR"]
with open(os.path.join(cdir, ".credentials.json"), "w") as f:
    f.write('{"claudeAiOauth": {"accessToken": "sk-ant-oat01-login-canary"}}')
os.makedirs(os.path.join(cdir, "projects"))
"""


def test_what_the_client_writes_during_login_is_private(tmp_path: Path, loose_umask: None) -> None:
    from tests.cli.fleetkit import make_fleet, run_cli

    fleet = make_fleet(tmp_path / "fleet")
    client = tmp_path / "client.py"
    client.write_text(LOGIN_CLIENT)
    own_login = "isolate_config = true\ninherit_auth = false\n"
    fleet.add_agent("coder", [sys.executable, str(client)], extra=own_login)
    rc, _, err = run_cli(fleet, "login", "coder")
    assert rc == 0, err
    cdir = fleet.paths.agent_state("coder") / "claude-config"
    assert mode(cdir) == 0o700 and mode(cdir.parent) == 0o700
    assert mode(cdir / ".credentials.json") == 0o600
    assert mode(cdir / "projects") == 0o700
