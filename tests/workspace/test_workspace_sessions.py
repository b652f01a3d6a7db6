"""Workspaces end to end: real detached runners, the fake `claude` in a real PTY doing git work in
its cwd, and a local bare repository standing in for GitHub (`[github] clone_url`)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.core.atomic import read_json
from tests.cli.fleetkit import FleetDir, make_fleet, read_transcript, run_cli, toml_list
from tests.waiting import wait_until
from tests.workspace.gitkit import IDENTITY, fleet_repo, make_origin, push_change, sh

pytestmark = pytest.mark.slow

CODER_WORK = """\
case "$FAKE_CLAUDE_TURN" in
  *fix-12*)
    git switch -q -c fleet/c1/fix-12 &&
    echo 'fixed' > fix.txt && git add fix.txt && git commit -q -m 'fix #12' &&
    git push -q -u origin HEAD &&
    gh fleet list --json ;;
  *) git status --porcelain ;;
esac
"""

ORCH_WORK = """\
set -e
git switch -q -c fleet/orch/add-c9 origin/main
gh fleet new-agent c9 --role coder --repo acme/WMS
gh fleet validate
gh fleet diff main
git push -q -u origin HEAD
"""


def identity(home: Path) -> None:
    """The sessions' git identity: their environment is an allowlist, HOME's config is in it."""
    (home / ".gitconfig").write_text(
        f"[user]\n\tname = {IDENTITY['GIT_AUTHOR_NAME']}\n"
        f"\temail = {IDENTITY['GIT_AUTHOR_EMAIL']}\n"
    )


def fake_agent(fleet: FleetDir, name: str, work: str, role: str, workspace: str) -> Path:
    """An agent whose session is the fake claude doing `work` (sh) on every turn. Its
    transcript is kept outside the fleet's repository."""
    transcript = fleet.root.parent / f"{name}.transcript.jsonl"
    command = [
        sys.executable,
        "-m",
        "relayfleet.fakes.fake_claude",
        "--transcript",
        str(transcript),
        "--fake-turn-shell",
        work,
    ]
    d = fleet.paths.agent_dir(name)
    d.mkdir(parents=True, exist_ok=True)
    (d / "CLAUDE.md").write_text(f"You are {name}.\n")
    port = 8801 + len(fleet.agents)
    repo = 'repo = "acme/WMS"\n' if role == "coder" else ""
    (d / "agent.toml").write_text(
        f'name = "{name}"\nrole = "{role}"\n{repo}port = {port}\n'
        f'[runtime]\nbackend = "local"\n'
        f'[claude]\nengine = "command"\ncommand = {toml_list(command)}\nremote_control = false\n'
        f"[workspace]\n{workspace}\n"
    )
    fleet.agents.append(name)
    return transcript


def shells(transcript: Path) -> list[dict]:  # type: ignore[type-arg]
    return [t for t in read_transcript(transcript) if t.get("type") == "shell"]


def runner_ws(fleet: FleetDir, name: str) -> dict:  # type: ignore[type-arg]
    return (read_json(fleet.paths.runner_status(name), {}) or {}).get("workspace") or {}


def status_ws(fleet: FleetDir, name: str) -> dict:  # type: ignore[type-arg]
    _, out, _ = run_cli(fleet, "status", "--json")
    return {a["name"]: a for a in json.loads(out)["agents"]}[name]["workspace"]


def ack_all(fleet: FleetDir, name: str) -> None:
    """What a session does when its turn is done: acknowledge (through the runner's MCP tool)."""
    import asyncio

    from fastmcp import Client

    cfg = json.loads((fleet.paths.agent_state(name) / "mcp.json").read_text())
    (server,) = cfg["mcpServers"].values()
    token = server["headers"]["Authorization"].removeprefix("Bearer ")

    async def main() -> None:
        async with Client(server["url"], auth=token) as c:
            pending = (await c.call_tool("list_pending", {})).data
            for p in pending:
                await c.call_tool("ack_event", {"event_id": p["event_id"]})

    asyncio.run(main())


@pytest.fixture
def stopper() -> Iterator[list[FleetDir]]:
    fleets: list[FleetDir] = []
    yield fleets
    for f in fleets:  # never leave a runner behind, whatever the test did
        for name in f.agents:
            with contextlib.suppress(Exception):
                run_cli(f, "stop", name)


def test_a_coder_commits_and_pushes_from_its_own_checkout_and_a_second_sees_a_clean_tree(
    tmp_path: Path, gitenv: Path, stopper: list[FleetDir]
) -> None:
    identity(gitenv)
    origin = tmp_path / "gh"
    bare = make_origin(origin, "acme/WMS")
    fleet = make_fleet(tmp_path / "fleet")
    stopper.append(fleet)
    (fleet.root / ".fleet" / "fleet.toml").write_text(
        f'[fleet]\nname = "t"\n[github]\nclone_url = "{origin}/{{repo}}.git"\n'
    )
    t1 = fake_agent(fleet, "c1", CODER_WORK, "coder", 'mode = "clone"')
    t2 = fake_agent(fleet, "c2", CODER_WORK, "coder", 'mode = "clone"\nfetch = "never"')
    for name in ("c1", "c2"):
        rc, _, err = run_cli(fleet, "start", name)
        assert rc == 0, err
    ws1 = fleet.paths.agent_state("c1") / "workspace"
    ws2 = fleet.paths.agent_state("c2") / "workspace"
    wait_until(lambda: status_ws(fleet, "c1").get("branch") == "fleet/c1/work")

    run_cli(fleet, "tell", "c1", "please fix-12")
    wait_until(lambda: shells(t1))
    (sh1,) = shells(t1)
    assert sh1["rc"] == 0, sh1["output"]
    assert sh1["cwd"] == str(ws1)  # the session started in its checkout
    assert '"name": "c1"' in sh1["output"]  # `gh fleet` is on the session's PATH
    # The commit went to the bare repository, on the agent's own branch.
    assert sh(bare, "log", "--format=%s", "fleet/c1/fix-12").splitlines() == ["fix #12", "first"]
    w = status_ws(fleet, "c1")
    assert (w["branch"], w["ahead"], w["behind"], w["dirty"]) == ("fleet/c1/fix-12", 0, 0, False)

    # The second agent on the same repo: its own clean tree on its own branch.
    run_cli(fleet, "tell", "c2", "what is the state?")
    wait_until(lambda: shells(t2))
    (sh2,) = shells(t2)
    assert (sh2["cwd"], sh2["rc"], sh2["output"]) == (str(ws2), 0, "")
    assert sh(ws2, "branch", "--show-current").strip() == "fleet/c2/work"
    assert not (ws2 / "fix.txt").exists()

    # on-event: never mid-turn (the last event not yet acknowledged): the fetch waits …
    sha = push_change(origin, "acme/WMS", "NEWS.md", "news\n")
    run_cli(fleet, "tell", "c1", "still busy?")
    wait_until(lambda: len(shells(t1)) == 2)
    assert sh(ws1, "rev-parse", "origin/main").strip() != sha
    assert runner_ws(fleet, "c1")["deferred"] >= 1
    # … and comes before the next batch once the session is done with its turn.
    ack_all(fleet, "c1")
    wait_until(lambda: _pending(fleet, "c1") == 0)
    run_cli(fleet, "tell", "c1", "anything new?")
    wait_until(lambda: len(shells(t1)) == 3)
    assert sh(ws1, "rev-parse", "origin/main").strip() == sha
    assert runner_ws(fleet, "c1")["fetched_at"] and runner_ws(fleet, "c1")["fetch_error"] is None
    # fetch = "never": c2 has not seen it.
    assert sh(ws2, "rev-parse", "origin/main").strip() != sha

    # A fetch that fails is logged and shown, and delivery goes on.
    sh(ws1, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    ack_all(fleet, "c1")
    wait_until(lambda: _pending(fleet, "c1") == 0)
    run_cli(fleet, "tell", "c1", "and now?")
    wait_until(lambda: len(shells(t1)) == 4)
    wait_until(lambda: status_ws(fleet, "c1").get("fetch_error"))
    assert "git fetch failed" in status_ws(fleet, "c1")["fetch_error"]
    _, out, _ = run_cli(fleet, "status")
    assert "c1: workspace fetch failed: git fetch failed" in out
    assert "workspace fetch failed (delivery goes on)" in fleet.paths.runner_log("c1").read_text()


def _pending(fleet: FleetDir, name: str) -> int | None:
    st = read_json(fleet.paths.runner_status(name), {}) or {}
    return st.get("pending")


def test_the_orchestrator_prepares_a_fleet_change_in_its_own_worktree(
    tmp_path: Path, gitenv: Path, stopper: list[FleetDir]
) -> None:
    identity(gitenv)
    origin = tmp_path / "gh"
    make_origin(origin, "acme/WMS")
    root = fleet_repo(tmp_path, origin)
    fleet_origin = tmp_path / "fleet-origin.git"
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(fleet_origin))
    fleet = FleetDir(root)
    stopper.append(fleet)
    transcript = fake_agent(fleet, "orch", ORCH_WORK, "orchestrator", 'mode = "worktree"')
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "fleet: +agent orch (orchestrator)")
    sh(root, "remote", "add", "origin", str(fleet_origin))
    sh(root, "push", "-q", "-u", "origin", "main")
    (root / "notes.txt").write_text("the operator's own uncommitted work\n")
    before = (sh(root, "rev-parse", "HEAD"), sh(root, "symbolic-ref", "HEAD"))
    status_before = sh(root, "status", "--porcelain")

    rc, _, err = run_cli(fleet, "start", "orch")
    assert rc == 0, err
    run_cli(fleet, "tell", "orch", "add a coder for acme/WMS")
    wait_until(lambda: shells(transcript), timeout=60)
    (shell,) = shells(transcript)
    assert shell["rc"] == 0, shell["output"]
    work = fleet.paths.agent_state("orch") / "workspace"
    assert shell["cwd"] == str(work)
    out = shell["output"]
    assert "Created agent c9 (coder)" in out
    # validate and diff ran in the worktree, on its own .fleet/.
    assert f"✓ {work}/.fleet is valid" in out
    assert "+agent c9 (coder)" in out.split("is valid", 1)[1]  # gh fleet diff main

    # The change is on the orchestrator's branch in the fleet's remote, ready for a PR …
    files = sh(fleet_origin, "ls-tree", "-r", "--name-only", "fleet/orch/add-c9")
    assert ".fleet/agents/c9/agent.toml" in files.split()
    assert sh(fleet_origin, "log", "-1", "--format=%s", "fleet/orch/add-c9").strip() == (
        "fleet: +agent c9 (coder)"
    )
    # … and the operator's checkout, its HEAD and its status are exactly as they were.
    assert (sh(root, "rev-parse", "HEAD"), sh(root, "symbolic-ref", "HEAD")) == before
    assert sh(root, "status", "--porcelain") == status_before
    assert not (root / ".fleet" / "agents" / "c9").exists()
    assert sh(root, "branch", "--show-current").strip() == "main"


def test_a_workspace_that_cannot_be_made_stops_the_start_and_says_why(
    tmp_path: Path, gitenv: Path, stopper: list[FleetDir]
) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    stopper.append(fleet)
    (fleet.root / ".fleet" / "fleet.toml").write_text(
        f'[fleet]\nname = "t"\n[github]\nclone_url = "{tmp_path}/nowhere/{{repo}}.git"\n'
    )
    fake_agent(fleet, "c1", "true", "coder", 'mode = "clone"')
    rc, _, err = run_cli(fleet, "start", "c1")
    assert rc == 1 and "c1: the runner exited during start-up" in err
    assert "workspace: making a clone of acme/WMS" in err  # the runner log's tail
    _, out, _ = run_cli(fleet, "status", "--json")
    (row,) = json.loads(out)["agents"]
    assert row["running"] is False
    assert row["error"].startswith("workspace: git clone failed in ")
    assert "not starting: workspace: git clone failed" in fleet.paths.runner_log("c1").read_text()
