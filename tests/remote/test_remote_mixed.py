"""A fleet with a local agent and an ssh agent, as a user runs it through the CLI: hand-offs
both ways, the ssh agent's inbox, status and fleet_status, logs, attach and a second start, each
through the agent's own transport or backend. One sshd host and one start of both runners serve
the whole module (starting sessions is the slow part on a loaded machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import remote_support as rs
from remote_support import said

from relayfleet.fakes.github import FakeGitHub

pytestmark = pytest.mark.slow

NAME = "mix"
SETUP_TIMEOUT = 240  # both sessions up, install included, on a loaded 2-core machine
STEP_TIMEOUT = 90  # one delivery, one hop through a host


@dataclass
class Mixed:
    root: Path
    workdir: Path
    front: Path  # the local agent's transcript
    back: Path  # the ssh agent's transcript
    github: FakeGitHub

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FLEET_ROOT": str(self.root),
            "FLEET_GITHUB_API_URL": self.github.base_url,
            "GH_TOKEN": self.github.token,
            "FLEET_ROUTER_MIN_PERIOD": "0",
        }

    def cli(self, *argv: str) -> tuple[int, str, str]:
        return rs.cli(self.root, *argv, env=self.env())

    def remote_state(self, agent: str = "back") -> Path:
        return rs.remote_state(self.workdir, self.root, NAME, agent)

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        return rs.spawn(self.env(), *argv)


def nonce() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def mixed(sshd: rs.Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    tmp = tmp_path_factory.mktemp("mixed")
    root, workdir = tmp / "op", tmp / "w"
    front, back = tmp / "front.jsonl", tmp / "back.jsonl"
    local = rs.fake_claude_agent(front, "local", "", "file", 8861)
    local["claude"]["command"] = [sys.executable, "-m", "relayfleet.fakes.fake_claude"]
    remote = rs.fake_claude_agent(back, "ssh", "vm", "ssh", 8862)
    for spec in (local, remote):
        # The engine that gives the session its MCP tools (the fake calls `handoff` with them).
        spec["claude"]["engine"] = "claude"
    rs.ssh_fleet(
        root,
        sshd,
        workdir,
        name=NAME,
        agents={
            "front": local,
            "back": remote,
        },
    )
    with FakeGitHub() as github:
        m = Mixed(root, workdir, front, back, github)
        try:
            # Both at once, without waiting per agent: the ssh install overlaps the local start.
            rc, _, err = m.cli("start", "front", "back", "--no-wait")
            assert rc == 0, err
            assert "installing on vm: step 1/4 (copying the package), 0 s" in err  # progress
            rs.wait_until(lambda: rs.transcript_ready(front), SETUP_TIMEOUT)
            rs.wait_until(lambda: rs.transcript_ready(back), SETUP_TIMEOUT)
            yield m
        finally:
            m.cli("stop", "--all")


def test_a_handoff_goes_from_a_local_agent_to_an_ssh_agent_and_back(mixed: Mixed) -> None:
    n = nonce()
    rc, _, err = mixed.cli("tell", "front", f"HANDOFF(back): HANDOFF(front): all done {n}")
    assert rc == 0, err
    # front -> back: the local runner appends on the host, through back's ssh transport.
    rs.wait_until(lambda: said(mixed.back, f"[FROM front | hand-off] HANDOFF(front): all done {n}"),
                  STEP_TIMEOUT)  # fmt: skip

    # back -> front: the host cannot reach this machine; the router carries the hand-off on.
    def back_home() -> bool:
        assert mixed.cli("router", "run", "--once")[0] == 0
        return said(mixed.front, f"[FROM back | hand-off] all done {n}")

    rs.wait_until(back_home, STEP_TIMEOUT, step=0.5)
    mixed.cli("router", "run", "--once")  # once more: nothing is carried twice
    on_host = [
        json.loads(x) for x in (mixed.remote_state() / "inbox.jsonl").read_text().splitlines()
    ]
    here = [json.loads(x) for x in (mixed.root / ".fleet/state/agents/front/inbox.jsonl")
            .read_text().splitlines()]  # fmt: skip
    assert len([e for e in on_host if e["source"] == "front" and n in e["body"]]) == 1
    assert len([e for e in here if e["source"] == "back" and n in e["body"]]) == 1
    assert not (mixed.root / ".fleet/state/agents/back/inbox.jsonl").exists()  # nothing local


def test_inbox_json_of_an_ssh_agent_shows_each_event_once(mixed: Mixed) -> None:
    n = nonce()
    ids = []
    for i in range(3):
        rc, out, err = mixed.cli("tell", "back", "--json", f"inbox check {n} {i}")
        assert rc == 0, err
        ids.append(json.loads(out)["id"])
    rc, out, err = mixed.cli("inbox", "back", "--json")
    assert rc == 0, err
    events = json.loads(out)
    got = [e["id"] for e in events]
    assert all(got.count(i) == 1 for i in ids)
    assert got == [json.loads(x)["id"] for x in (mixed.remote_state() / "inbox.jsonl")
                   .read_text().splitlines()]  # fmt: skip
    rc, out, _ = mixed.cli("inbox", "back", "-n", "3")
    assert [line.split(f"inbox check {n} ")[1] for line in out.splitlines()] == ["0", "1", "2"]


def test_status_and_fleet_status_report_the_ssh_agent_through_its_backend(mixed: Mixed) -> None:
    rc, out, err = mixed.cli("status", "--json")
    assert rc == 0, err
    rows = {r["name"]: r for r in json.loads(out)["agents"]}
    assert rows["back"]["running"] is True and rows["back"]["backend"] == "ssh"
    assert rows["back"]["host"] == "vm" and rows["back"]["delivery"] in ("channel", "pty")
    lines = (mixed.remote_state() / "inbox.jsonl").read_text().splitlines()
    assert rows["back"]["inbox_events"] == len(lines)
    assert rows["front"]["running"] is True

    # The MCP tool, as the local agent's session calls it.
    rows = {r["name"]: r for r in mcp_call(mixed.root, "front", "fleet_status")}
    assert rows["back"]["running"] is True and rows["back"]["backend"] == "ssh"
    assert rows["back"]["delivery"] in ("channel", "pty")
    assert rows["front"]["running"] is True


def mcp_call(root: Path, agent: str, tool: str, args: dict | None = None) -> object:
    import asyncio

    from fastmcp import Client

    cfg = json.loads((root / ".fleet/state/agents" / agent / "mcp.json").read_text())
    (server,) = cfg["mcpServers"].values()
    token = server["headers"]["Authorization"].removeprefix("Bearer ")

    async def go() -> object:
        async with Client(server["url"], auth=token) as c:
            res = await c.call_tool(tool, args or {})
            return res.data if res.data is not None else json.loads(res.content[0].text)

    return asyncio.run(go())


def test_start_of_a_running_agent_says_so_on_both_backends(mixed: Mixed) -> None:
    for agent in ("front", "back"):
        rc, out, err = mixed.cli("start", agent)
        assert rc == 0, err
        assert out.startswith(f"{agent}: already running (pid "), out


@pytest.mark.parametrize("agent", ["front", "back"])
def test_logs_n_and_raw_read_the_session_log_where_it_is(mixed: Mixed, agent: str) -> None:
    rc, out, err = mixed.cli("logs", agent, "-n", "3")
    assert rc == 0, err
    assert len(out.splitlines()) == 3 and "\x1b" not in out
    rc, raw, _ = mixed.cli("logs", agent, "-n", "500", "--raw")
    assert "\x1b[" in raw  # the session's own escapes, kept
    rc, plain, _ = mixed.cli("logs", agent, "-n", "500")
    assert "Welcome" in plain or "❯" in plain


@pytest.mark.parametrize("agent", ["front", "back"])
def test_logs_follow_prints_what_the_session_prints_next(mixed: Mixed, agent: str) -> None:
    proc = mixed.spawn("logs", agent, "-f", "-n", "1")
    got: list[bytes] = []
    assert proc.stdout is not None
    stdout = proc.stdout

    def read() -> None:
        for line in iter(stdout.readline, b""):
            got.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        rs.wait_until(lambda: got, STEP_TIMEOUT)  # the tail is printed: now it follows
        n = nonce()
        assert mixed.cli("tell", agent, f"follow me {n}")[0] == 0
        rs.wait_until(lambda: any(f"follow me {n}".encode() in x for x in got), STEP_TIMEOUT)
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.parametrize("agent", ["front", "back"])
def test_attach_types_into_the_session_on_both_backends(mixed: Mixed, agent: str) -> None:
    state = mixed.root / ".fleet/state/agents/front" if agent == "front" else mixed.remote_state()
    transcript = mixed.front if agent == "front" else mixed.back

    proc = mixed.spawn("attach", agent)
    n = nonce()
    text = f"hello from a human {n}"
    out, err = rs.type_through_attach(proc, state, transcript, text, STEP_TIMEOUT)
    assert proc.returncode == 0, err
    assert f"[detached from {agent}: detached]".encode() in err
    assert f"hello from a human {n}".encode() in out
    rs.wait_until(lambda: rs.attached_count(state) == 0, STEP_TIMEOUT)
