"""A gateway-routed agent in a docker container: it carries only its sentinel (in a 0600 file
inside the container, not in `docker inspect`), and reaches the operator's real gateway on
loopback through host networking (issue 7; the ssh version is test_remote_gateway.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import remote_support as rs
from remote_support import cli

from relayfleet.core.sentinel import ENV_GATEWAY_URL, ENV_SENTINEL
from relayfleet.fakes.messages_api import FakeMessagesAPI

pytestmark = pytest.mark.slow

CANARY = rs.CANARY


def container_environ(ctr, pid: int) -> dict[str, str]:  # ctr: docker Container
    """A process's environment; `pid` is the container's own. Read from the host: the runner
    makes itself non-dumpable, so even root inside the container may not read it."""
    ns = os.readlink(f"/proc/{ctr.attrs['State']['Pid']}/ns/pid")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
            nspid = next(ln for ln in status.splitlines() if ln.startswith("NSpid:"))
            if int(nspid.split()[-1]) == pid:
                raw = Path(f"/proc/{entry}/environ").read_bytes().decode(errors="replace")
                return dict(x.partition("=")[::2] for x in raw.split("\0") if x)
        except (OSError, StopIteration, ValueError):
            continue
    raise AssertionError(f"no process {pid} in the container")


def test_docker_agent_reaches_the_gateway_with_only_its_sentinel(
    dockerd: rs.Dockerd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "op"
    state = root / ".fleet" / "state"
    transcript = state / "agents" / "coder" / "transcript.jsonl"  # bind-mounted: we read it
    gw_port = rs.free_port()
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.delenv("RELAYFLEET_GATEWAY_SECRET", raising=False)
    # The skeleton image borrows this machine's /usr and venv (no registry to pull from).
    monkeypatch.setenv("FLEET_DOCKER_MOUNTS", ",".join(rs.runner_mounts()))
    agent = rs.through_the_gateway(
        rs.fake_claude_agent(transcript, "docker", "engine", "file", 8811, image=rs.SKELETON_IMAGE)
    )
    name = f"dg{os.getpid() % 10000}"
    rs.write_fleet(
        root,
        name=name,
        hosts={"engine": {"backend": "docker", "host": dockerd.base_url}},
        agents={"coder": agent},
    )
    client = dockerd.client()

    with FakeMessagesAPI(default_text="pong") as upstream:
        rs.add_gateway(root, gw_port, upstream.base_url)
        rc, _, err = cli(root, "gateway", "start")
        assert rc == 0, err
        try:
            rc, _, err = cli(root, "start", "coder")
            assert rc == 0, err
            sentinel = rs.sentinel_of(root)
            secret = (state / "gateway" / "secret").read_text().strip()
            ctr = client.containers.get(rs.container_of(root, name))

            # `docker inspect` holds no credential of any kind: the sentinel travels in a 0600
            # file inside the container; the real key and the gateway secret never leave here.
            inspect = json.dumps(client.api.inspect_container(ctr.id))
            for value in (CANARY, secret, sentinel):
                assert value not in inspect
            assert ctr.attrs["HostConfig"]["NetworkMode"] == "host"
            # The container cannot read the gateway's state (an empty tmpfs over .fleet/state).
            r = ctr.exec_run(["python", "-c", f"import os; print(os.listdir({str(state)!r}))"])
            assert r.output.decode().strip() == "['agents']"

            # Its session: the sentinel as its only key, the gateway on loopback as its base.
            rs.wait_until(lambda: rs.transcript_ready(transcript), 40)
            runner_json = state / "agents" / "coder" / "runner.json"
            session_pid = rs.wait_until(
                lambda: json.loads(runner_json.read_text()).get("session_pid")
            )
            runner_pid = int(json.loads(runner_json.read_text())["pid"])
            senv = container_environ(ctr, int(session_pid))
            assert senv["ANTHROPIC_API_KEY"] == sentinel
            assert senv["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{gw_port}"
            assert CANARY not in json.dumps(senv) and secret not in json.dumps(senv)
            renv = container_environ(ctr, runner_pid)
            assert renv[ENV_SENTINEL] == sentinel
            assert renv[ENV_GATEWAY_URL] == f"http://127.0.0.1:{gw_port}"
            assert "ANTHROPIC_API_KEY" not in renv

            # A turn makes the session call the API: container -> gateway (loopback) -> upstream.
            rs.assert_turn_reaches_upstream(root, upstream, transcript, sentinel)

            # Nothing the container wrote to its bind mount holds the key or the secret.
            for f in (state / "agents").rglob("*"):
                if f.is_file():
                    text = f.read_text(errors="replace")
                    assert CANARY not in text and secret not in text, f
        finally:
            assert cli(root, "stop", "coder")[0] == 0
            cli(root, "gateway", "stop")
    assert client.containers.list(all=True, filters={"label": f"relayfleet.fleet={name}"}) == []
