"""The docker backend against a real dockerd (started by the session fixture when none runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.docker import DockerBackend, container_name
from relayfleet.backends.transports import transport_for
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet

pytestmark = pytest.mark.slow


def test_docker_e2e(dockerd: rs.Dockerd, tmp_path: Path) -> None:
    """A docker agent runs the fake claude, gets a `tell`, and `stop` removes its container."""
    root = tmp_path / "op"
    paths = FleetPaths(root)
    transcript = paths.agent_state("coder") / "transcript.jsonl"  # bind-mounted: we can read it
    rs.write_fleet(
        root,
        name=f"d{os.getpid() % 10000}",
        hosts={"engine": {"backend": "docker", "host": dockerd.base_url}},
        agents={
            "coder": rs.fake_claude_agent(
                transcript,
                "docker",
                "engine",
                "file",
                8811,
                image=rs.SKELETON_IMAGE,
                cpus=1.0,
                memory="512m",
            )
        },
    )
    fleet = load_fleet(paths)
    agent = fleet.agent("coder")
    # Another agent's state on this machine (its channel token, say) stays out of the container.
    neighbour = paths.agent_state("reviewer")
    neighbour.mkdir(parents=True)
    (neighbour / "mcp.json").write_text('{"token": "NEIGHBOUR-CANARY"}')
    backend = DockerBackend(extra_mounts=rs.runner_mounts())
    client = dockerd.client()
    try:
        st = backend.start(paths, fleet, agent)
        assert st.running, st
        assert st.detail.startswith("[docker] ")
        ctr = client.containers.get(container_name(fleet, agent, paths.root))
        assert ctr.labels == {"relayfleet.fleet": fleet.name, "relayfleet.agent": "coder"}
        host_cfg = ctr.attrs["HostConfig"]
        assert host_cfg["RestartPolicy"]["Name"] == "unless-stopped"
        assert host_cfg["NanoCpus"] == 1_000_000_000
        assert host_cfg["Memory"] == 512 * 1024 * 1024
        assert host_cfg["Init"] is True
        look = (
            "import os, sys; s = sys.argv[1]; print(sorted(os.listdir(s)), "
            "sorted(os.listdir(os.path.join(s, 'agents'))))"
        )
        code, out = ctr.exec_run(["python", "-c", look, str(paths.state.resolve())])
        assert code == 0, out
        assert out.decode().split() == ["['agents']", "['coder']"]

        rs.wait_until(lambda: rs.transcript_ready(transcript), 40)
        t = transport_for(paths, fleet, "coder")
        event = {
            "id": "evt_d1",
            "ts": "2026-01-01T00:00:00Z",
            "source": "operator",
            "body": "hello in a container",
            "metadata": {},
        }
        assert t.append("coder", event) is True
        rs.wait_until(
            lambda: any("hello in a container" in x for x in rs.transcript_turns(transcript)), 30
        )
        assert backend.status(paths, fleet, agent).running
        assert "Welcome" in backend.logs(paths, fleet, agent, 50)
    finally:
        backend.stop(paths, fleet, agent)
    assert not backend.status(paths, fleet, agent).running
    assert (
        client.containers.list(all=True, filters={"label": f"relayfleet.fleet={fleet.name}"}) == []
    )
