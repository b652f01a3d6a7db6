"""The local runner end to end: start, tell, the session sees it, ack, status, stop, restart.

Real detached runner processes, real PTYs, the real loopback MCP server; the session is a tiny
echo script or the fake `claude` run by the `command` engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from fleetkit import (
    PY,
    FleetDir,
    make_fleet,
    pid_alive,
    read_transcript,
    run_cli,
    turns,
    wait_until,
)

from relayfleet.cli.agent_facts import runner_facts
from relayfleet.core.atomic import read_json
from relayfleet.runner.supervisor import runner_state_file
from tests.ports import free_port

pytestmark = pytest.mark.slow


def facts(fleet: FleetDir, name: str) -> dict:
    from relayfleet.fleet.load import load_fleet

    model = load_fleet(fleet.paths)
    return runner_facts(fleet.paths, model, model.agent(name))


def tree_pids(fleet: FleetDir, name: str) -> list[int]:
    st = read_json(fleet.paths.runner_status(name), {})
    return [p for p in (st.get("pid"), st.get("session_pid")) if p]


def mcp_call(fleet: FleetDir, name: str, tool: str, args: dict) -> object:
    """Call one of the runner's MCP tools the way the session does (URL + token from mcp.json)."""
    from fastmcp import Client

    cfg = json.loads((fleet.paths.agent_state(name) / "mcp.json").read_text())
    (server,) = cfg["mcpServers"].values()
    token = server["headers"]["Authorization"].removeprefix("Bearer ")

    async def main() -> object:
        async with Client(server["url"], auth=token) as c:
            if tool == "__list__":
                return sorted(t.name for t in await c.list_tools())
            res = await c.call_tool(tool, args)
            return res.data if res.data is not None else res.content[0].text

    return asyncio.run(main())


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    f = make_fleet(tmp_path / "fleet")
    yield f
    # Never leave a runner behind, whatever the test did.
    for name in f.agents:
        with __import__("contextlib").suppress(Exception):
            run_cli(f, "stop", name)


def test_start_tell_ack_status_stop(fleet: FleetDir) -> None:
    transcript = fleet.echo_agent("coder")
    fleet.echo_agent("reviewer")

    rc, out, err = run_cli(fleet, "start", "coder")
    assert rc == 0, err
    assert "coder: started (pid" in out and "delivery pty" in out

    rc, out, _ = run_cli(fleet, "tell", "coder", "please", "fix", "issue", "12")
    assert rc == 0 and out.startswith("told coder (evt_op_")
    event_id = out.split("(")[1].rstrip(")\n")
    wait_until(lambda: "[FROM operator] please fix issue 12" in turns(transcript))

    f = facts(fleet, "coder")
    assert f["running"] and f["backend"] == "local" and f["delivery"] == "pty"
    wait_until(lambda: facts(fleet, "coder")["pending"] == 1)
    assert facts(fleet, "coder")["last_delivered"] == event_id

    # The session acknowledges through the runner's MCP tools.
    tools = mcp_call(fleet, "coder", "__list__", {})
    assert {"ack_event", "get_event", "list_pending", "handoff", "fleet_status"} <= set(tools)
    assert {"inbox_history", "reply_operator"} <= set(tools)  # the bundled inbox plugin
    pending = mcp_call(fleet, "coder", "list_pending", {})
    assert [p["event_id"] for p in pending] == [event_id]
    full = mcp_call(fleet, "coder", "get_event", {"event_id": event_id})
    assert full["source"] == "operator"
    assert "acknowledged" in mcp_call(fleet, "coder", "ack_event", {"event_id": event_id})
    wait_until(lambda: facts(fleet, "coder")["pending"] == 0)

    # A hand-off lands in the other agent's inbox, from this agent.
    msg = mcp_call(fleet, "coder", "handoff", {"agent": "reviewer", "message": "review #12"})
    assert "handed off to reviewer" in msg
    (ev,) = [json.loads(x) for x in fleet.paths.inbox("reviewer").read_text().splitlines()]
    assert ev["source"] == "coder" and "review #12" in ev["body"]

    # status --json (when the status command is present) carries the runner facts.
    try:
        from relayfleet.cli.commands import status  # noqa: F401
    except ImportError:
        pass
    else:
        rc, out, _ = run_cli(fleet, "status", "--json")
        agents = {a["name"]: a for a in json.loads(out)["agents"]}
        assert agents["coder"]["running"] is True
        assert agents["coder"]["delivery"] == "pty"
        assert agents["coder"]["pending"] == 0
        assert agents["reviewer"]["running"] is False

    pids = tree_pids(fleet, "coder")
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    rc, out, _ = run_cli(fleet, "stop", "coder")
    assert rc == 0 and "coder: stopped" in out
    assert not any(pid_alive(p) for p in pids)
    assert facts(fleet, "coder")["running"] is False
    rc, out, _ = run_cli(fleet, "stop", "coder")
    assert "coder: not running" in out


def test_restart_resumes_the_same_session_and_nothing_is_redelivered(fleet: FleetDir) -> None:
    transcript = fleet.echo_agent("coder")
    assert run_cli(fleet, "start", "coder")[0] == 0
    run_cli(fleet, "tell", "coder", "one")
    wait_until(lambda: turns(transcript) == ["[FROM operator] one"])

    def ledger() -> dict:
        return read_json(runner_state_file(fleet.paths, "coder")) or {}

    wait_until(lambda: ledger().get("launched"))  # the first turn made the conversation
    state = ledger()

    rc, out, err = run_cli(fleet, "restart", "coder")
    assert rc == 0, err
    assert "coder: stopped" in out and "coder: started" in out
    run_cli(fleet, "tell", "coder", "two")
    wait_until(lambda: turns(transcript)[-1:] == ["[FROM operator] two"])
    assert turns(transcript) == ["[FROM operator] one", "[FROM operator] two"]
    # The session may see the line a moment before the ledger records it as delivered.
    wait_until(lambda: ledger().get("delivered_count") == 2)
    assert ledger()["session_id"] == state["session_id"]


def test_a_crashed_session_is_restarted_with_backoff(fleet: FleetDir) -> None:
    transcript = fleet.echo_agent("coder")
    assert run_cli(fleet, "start", "coder")[0] == 0
    first = tree_pids(fleet, "coder")[1]
    run_cli(fleet, "tell", "coder", "CRASH-NOW")
    wait_until(lambda: facts(fleet, "coder")["restarts"] == 1)
    wait_until(lambda: facts(fleet, "coder")["session"] == "up")
    second = read_json(fleet.paths.runner_status("coder"))["session_pid"]
    assert second != first and not pid_alive(first)
    run_cli(fleet, "tell", "coder", "after the crash")
    wait_until(lambda: "[FROM operator] after the crash" in turns(transcript))
    launches = [t for t in read_transcript(transcript) if t["type"] == "launch"]
    assert len(launches) == 2
    log = fleet.paths.runner_log("coder").read_text()
    assert "session exited with status 3" in log
    assert "restarting the session in 1.0s (restart #1)" in log


def test_fake_claude_in_the_command_engine_gets_events_and_stop_kills_everything(
    fleet: FleetDir,
) -> None:
    transcript = fleet.root / "fake.jsonl"
    mcp = fleet.paths.agent_state("fake") / "mcp.json"
    fleet.add_agent(
        "fake",
        [
            PY,
            "-m",
            "relayfleet.fakes.fake_claude",
            "--mcp-config",
            str(mcp),
            "--transcript",
            str(transcript),
        ],
    )
    rc, out, err = run_cli(fleet, "start", "fake")
    assert rc == 0, err
    # Told right after `start` returns: the `command` engine reports ready only once the program
    # has settled (the fake switches to raw mode, which would discard typed-ahead input).
    for i in range(3):
        run_cli(fleet, "tell", "fake", f"message {i}")

    def pty_turns() -> list[str]:
        return [t["text"] for t in read_transcript(transcript) if t.get("type") == "turn"]

    wait_until(lambda: len(pty_turns()) == 3)
    assert pty_turns() == [f"[FROM operator] message {i}" for i in range(3)]
    rc, out, _ = run_cli(fleet, "logs", "fake", "-n", "200")
    assert "message 2" in out and "\x1b[" not in out
    _, raw, _ = run_cli(fleet, "logs", "fake", "--raw", "-n", "200")
    assert "\x1b[" in raw

    st = read_json(fleet.paths.runner_status("fake"))
    runner_pid, session_pid = st["pid"], st["session_pid"]
    run_cli(fleet, "stop", "fake")
    assert not pid_alive(runner_pid) and not pid_alive(session_pid)
    # Nothing whose parent chain led to the runner is left anywhere.
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                environ = Path(f"/proc/{d}/environ").read_bytes()
            except OSError:
                continue
            assert f"RELAYFLEET_MCP_CONFIG={mcp}".encode() not in environ, d


def test_stop_escalates_to_kill_and_leaves_no_orphans(fleet: FleetDir) -> None:
    """A session that ignores TERM/HUP (and a tool it started) is still gone after stop."""
    stubborn = fleet.root / "stubborn.py"
    stubborn.write_text(
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'],"
        " start_new_session=True)\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    child_file = fleet.root / "child.pid"
    fleet.add_agent("stubborn", [PY, str(stubborn), str(child_file)])
    rc, _, err = run_cli(fleet, "start", "stubborn")
    assert rc == 0, err
    wait_until(child_file.exists)
    child = int(wait_until(lambda: child_file.read_text().strip()))
    st = read_json(fleet.paths.runner_status("stubborn"))
    pids = [st["pid"], st["session_pid"], child]
    assert all(pid_alive(p) for p in pids)
    run_cli(fleet, "stop", "stubborn")
    assert not any(pid_alive(p) for p in pids)


def test_a_kill_9_runner_leaves_a_session_that_stop_still_cleans_up(fleet: FleetDir) -> None:
    fleet.echo_agent("coder")
    assert run_cli(fleet, "start", "coder")[0] == 0
    st = read_json(fleet.paths.runner_status("coder"))
    os.kill(st["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(st["pid"]))
    assert facts(fleet, "coder")["running"] is False
    run_cli(fleet, "stop", "coder")
    assert not pid_alive(st["session_pid"])


@pytest.mark.parametrize("channels", [True, False], ids=["channel", "pty-fallback"])
def test_claude_engine_against_the_fake_claude(fleet: FleetDir, channels: bool) -> None:
    """The `claude` engine in a real runner: dialog answered, channel (or PTY) delivery, the
    session's own ack_event clears pending, and a restart resumes the same conversation."""
    transcript = fleet.root / "claude.jsonl"
    args = ["--transcript", str(transcript)] + ([] if channels else ["--fake-no-channels"])
    fleet.add_agent(
        "cc",
        [PY, "-m", "relayfleet.fakes.fake_claude"],
        engine="claude",
        extra=f"args = {json.dumps(args)}\n",
    )
    rc, out, err = run_cli(fleet, "start", "cc")
    assert rc == 0, err
    want = "channel" if channels else "pty"
    assert f"delivery {want}" in out
    run_cli(fleet, "tell", "cc", "fix", "the", "scanner")

    def records(kind: str) -> list[dict]:
        return [t for t in read_transcript(transcript) if t.get("type") == kind]

    wait_until(lambda: records("turn"))
    (turn,) = records("turn")
    assert turn["via"] == want
    assert "[FROM operator] fix the scanner" in turn["text"]
    if channels:
        # The fake acks through the runner's ack_event, as the instructions ask.
        wait_until(lambda: records("ack"))
        wait_until(lambda: facts(fleet, "cc")["pending"] == 0)
    else:
        # Nothing acks a typed turn here: it stays pending (re-sent after ack_timeout_sec).
        wait_until(lambda: facts(fleet, "cc")["pending"] == 1)
        engine = read_json(fleet.paths.runner_status("cc"))["engine"]
        assert "not currently available" in (engine.get("channel_notice") or "")

    # status shows the engine's own facts: the path, the channel's state, the session's pid.
    rc, out, _ = run_cli(fleet, "status", "--json")
    (row,) = json.loads(out)["agents"]
    assert row["delivery"] == want and row["session_pid"]
    assert row["channel_connected"] is True
    if channels:
        assert row["engine"]["channel_confirmed_by"] in ("screen", "debug-file")
    else:
        assert "not currently available" in row["channel_notice"]
        assert "delivery pty:" in run_cli(fleet, "status")[1]

    first = records("launch")[0]
    assert run_cli(fleet, "restart", "cc")[0] == 0
    wait_until(lambda: len(records("launch")) == 2)
    second = records("launch")[1]
    assert second["resumed"] is True
    assert second["session_id"] == first["session_id"]


def test_all_tries_every_agent_and_counts_the_failures(fleet: FleetDir) -> None:
    from relayfleet.core.errors import FleetError

    # "alpha" sorts first and cannot start (its credential's source is unset); the others must
    # still be tried, each reported on its own line.
    fleet.echo_agent(
        "alpha", extra='[credentials.gh]\nfrom_env = "RELAYFLEET_TEST_UNSET"\nas_env = "X"\n'
    )
    fleet.echo_agent("beta")
    fleet.echo_agent("gamma")
    os.environ.pop("RELAYFLEET_TEST_UNSET", None)
    run_cli(fleet, "start", "gamma")

    ctx, out, err = fleet.ctx()
    from relayfleet.cli.main import main

    rc = main(["start", "--all"], ctx=ctx)
    assert rc == 1
    assert "beta: started (pid" in out.getvalue()
    assert "gamma: already running (pid" in out.getvalue()
    lines = err.getvalue().splitlines()
    assert any(line.startswith("alpha: ") and "RELAYFLEET_TEST_UNSET" in line for line in lines)
    assert "gh fleet: 1 of 3 agents failed: alpha" in lines
    assert facts(fleet, "beta")["running"] is True

    rc, out_s, _ = run_cli(fleet, "stop", "--all")
    assert rc == 0
    assert out_s.splitlines() == ["alpha: not running", "beta: stopped", "gamma: stopped"]

    # One named agent: its own error is the command's error.
    with pytest.raises(FleetError, match="RELAYFLEET_TEST_UNSET"):
        run_cli(fleet, "start", "alpha")


def test_tell_dash_reads_the_message_from_stdin(fleet: FleetDir) -> None:
    from relayfleet.cli.main import main

    fleet.echo_agent("coder")
    ctx, out, _ = fleet.ctx()
    ctx.inp = __import__("io").StringIO("line one\nline two\n")
    assert main(["tell", "coder", "-"], ctx=ctx) == 0
    assert out.getvalue().startswith("told coder (")
    (ev,) = [json.loads(x) for x in fleet.paths.inbox("coder").read_text().splitlines()]
    assert ev["body"] == "[FROM operator] line one\nline two"


def test_a_stopped_agent_shows_its_backlog_as_pending(fleet: FleetDir) -> None:
    transcript = fleet.echo_agent("coder")
    run_cli(fleet, "tell", "coder", "before", "any", "start")
    run_cli(fleet, "tell", "coder", "second")
    f = facts(fleet, "coder")
    assert (f["running"], f["pending"], f["undelivered"]) == (False, 2, 2)

    # Delivered but never acknowledged (the echo session never acks) still counts once stopped.
    assert run_cli(fleet, "start", "coder")[0] == 0
    wait_until(lambda: len(turns(transcript)) == 2)
    wait_until(lambda: facts(fleet, "coder")["pending"] == 2)
    run_cli(fleet, "stop", "coder")
    run_cli(fleet, "tell", "coder", "while", "stopped")
    f = facts(fleet, "coder")
    assert (f["running"], f["pending"], f["undelivered"]) == (False, 3, 1)
    _, out, _ = run_cli(fleet, "status")
    row = next(line for line in out.splitlines() if line.startswith("coder"))
    assert " 3 " in row


def set_port(fleet: FleetDir, name: str, port: int) -> None:
    import re

    toml = fleet.paths.agent_toml(name)
    toml.write_text(re.sub(r"(?m)^port = \d+$", f"port = {port}", toml.read_text()))


def test_the_agents_port_is_where_its_channel_listens(fleet: FleetDir) -> None:
    import socket

    fleet.echo_agent("coder")
    fleet.echo_agent("reviewer")
    mine, taken = free_port(), free_port()
    set_port(fleet, "coder", mine)
    set_port(fleet, "reviewer", taken)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", taken))
    squatter.listen()
    try:
        assert run_cli(fleet, "start", "coder", "reviewer")[0] == 0
        cfg = json.loads((fleet.paths.agent_state("coder") / "mcp.json").read_text())
        (server,) = cfg["mcpServers"].values()
        assert server["url"] == f"http://127.0.0.1:{mine}/mcp"
        f = facts(fleet, "coder")
        assert (f["port"], f["channel_port"], f["port_notice"]) == (mine, mine, None)
        assert "handed off" in str(
            mcp_call(fleet, "coder", "handoff", {"agent": "reviewer", "message": "hi"})
        )

        # Taken by another program: the runner still starts, elsewhere, and says so.
        r = facts(fleet, "reviewer")
        assert r["running"] and r["channel_port"] not in (None, taken)
        assert f"port {taken} is taken" in r["port_notice"]
        assert f"listening on {r['channel_port']} instead" in r["port_notice"]
        _, out, _ = run_cli(fleet, "status")
        assert f"reviewer: warning: channel port {taken} is taken" in out
        assert "handed off" in str(
            mcp_call(fleet, "reviewer", "handoff", {"agent": "coder", "message": "hi"})
        )
    finally:
        squatter.close()


def test_status_shows_a_session_blocked_by_a_dialog_and_the_runner_does_not_retry(
    tmp_path: Path,
) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    fake = [sys.executable, "-m", "relayfleet.fakes.fake_claude", "--fake-unknown-dialog"]
    fleet.add_agent("coder", fake, engine="claude")
    status = fleet.paths.runner_status("coder")
    line = "coder: blocked: Pick a release channel (answer it: gh fleet attach coder)"
    try:
        rc, _, err = run_cli(fleet, "start", "coder")
        assert rc == 1 and line in err.splitlines(), err  # at once, not after a timeout
        rc, out, _ = run_cli(fleet, "status")
        assert rc == 0
        assert line in out.splitlines(), out
        time.sleep(2)  # a restart loop would show up as restarts
        assert read_json(status)["restarts"] == 0
    finally:
        run_cli(fleet, "stop", "coder")
