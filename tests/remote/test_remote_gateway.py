"""A gateway-routed agent on an ssh host: it carries only its sentinel, and its model traffic
reaches the operator's real gateway through the reverse tunnel `start` opens (issue 7)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import remote_support as rs
from remote_support import cli

from relayfleet.core.sentinel import ENV_GATEWAY_URL, ENV_SENTINEL
from relayfleet.fakes.messages_api import FakeMessagesAPI

pytestmark = pytest.mark.slow

CANARY = rs.CANARY


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(x.decode(errors="replace").partition("=")[::2] for x in raw if x)


def test_ssh_agent_reaches_the_gateway_with_only_its_sentinel(
    sshd: rs.Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, workdir = tmp_path / "op", tmp_path / "w"
    transcript = tmp_path / "transcript.jsonl"
    gw_port, host_port = rs.free_port(), rs.free_port()  # the "host" is this machine
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.delenv("RELAYFLEET_GATEWAY_SECRET", raising=False)
    monkeypatch.setenv("FLEET_GATEWAY_REMOTE_PORT", str(host_port))
    agent = rs.through_the_gateway(rs.fake_claude_agent(transcript, "ssh", "vm", "ssh", 8801))
    name = f"g{os.getpid() % 10000}"
    state = rs.ssh_fleet(root, sshd, workdir, name=name, agents={"coder": agent})

    with FakeMessagesAPI(default_text="pong") as upstream:
        rs.add_gateway(root, gw_port, upstream.base_url)
        rc, out, err = cli(root, "gateway", "start")
        assert rc == 0, err
        try:
            rc, out, err = cli(root, "start", "coder")
            assert rc == 0, err
            rc, out, _ = cli(root, "tunnel", "status", "--json")
            (tunnel,) = json.loads(out)
            assert tunnel["connected"] and tunnel["ports"] == [f"{host_port}:{gw_port}"]
            sentinel = rs.sentinel_of(root)
            secret = (state / "gateway" / "secret").read_text().strip()

            # The runner on the host got the sentinel and the tunnel's URL from the 0600 env
            # file (already deleted), never through argv; no real key, no gateway secret.
            runner_pid = json.loads(cli(root, "status", "--json")[1])["agents"][0]["pid"]
            renv = environ(runner_pid)
            assert renv[ENV_SENTINEL] == sentinel
            assert renv[ENV_GATEWAY_URL] == f"http://127.0.0.1:{host_port}"
            assert "ANTHROPIC_API_KEY" not in renv
            cmdline = Path(f"/proc/{runner_pid}/cmdline").read_bytes().decode(errors="replace")
            assert sentinel not in cmdline
            assert not list((workdir / "secrets").rglob("env.json"))

            # Its session: the sentinel as its only key, the gateway (via the tunnel) as base.
            rs.wait_until(lambda: rs.transcript_ready(transcript), 40)
            remote_state = rs.remote_state(workdir, root, name)
            session_pid = rs.wait_until(
                lambda: json.loads((remote_state / "runner.json").read_text()).get("session_pid")
            )
            senv = environ(session_pid)
            assert senv["ANTHROPIC_API_KEY"] == sentinel
            assert senv["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{host_port}"
            assert CANARY not in json.dumps(senv) and secret not in json.dumps(senv)

            # A turn makes the session call the API: host -> tunnel -> gateway -> upstream.
            rs.assert_turn_reaches_upstream(root, upstream, transcript, sentinel)

            # Nothing on the host holds the real key or the gateway secret.
            found = subprocess.run(
                ["grep", "-rlF", "-e", CANARY, "-e", secret, str(workdir)],
                capture_output=True,
                text=True,
            ).stdout
            assert found == ""
        finally:
            assert cli(root, "stop", "coder")[0] == 0
            cli(root, "gateway", "stop")
    rc, out, _ = cli(root, "tunnel", "status", "--json")
    assert json.loads(out)[0]["running"] is False  # the last gateway agent there stopped
