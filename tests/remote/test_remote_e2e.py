"""End to end, through the CLI as a user runs it: an agent on a docker engine and on an ssh host
runs the fake `claude`; a `gh fleet tell` and a GitHub event routed by `gh fleet router run`
reach its session; `gh fleet stop` leaves nothing running on either side."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import remote_support as rs
from remote_support import said

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.fakes.github import FakeGitHub

pytestmark = pytest.mark.slow


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_repo("acme/wms")
        yield gh


def cli(root: Path, github: FakeGitHub, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {
        **os.environ,
        "FLEET_ROOT": str(root),
        "FLEET_GITHUB_API_URL": github.base_url,
        "GH_TOKEN": github.token,
        "FLEET_ROUTER_MIN_PERIOD": "0",
    }
    rc = main(list(argv), Context(out=out, err=err, env=env, cwd=root))
    return rc, out.getvalue(), err.getvalue()


def tell_and_route(root: Path, github: FakeGitHub, transcript: Path) -> None:
    """The two ways work reaches an agent, checked in its session's transcript."""
    rs.wait_until(lambda: rs.transcript_ready(transcript), 40)
    rc, out, err = cli(root, github, "tell", "coder", "hello", "from", "the", "operator")
    assert rc == 0 and out.startswith("told coder"), (out, err)

    rc, out, err = cli(root, github, "router", "run", "--once")  # first poll: a snapshot
    assert rc == 0, err
    n = github.open_issue("acme/wms", "Scanner crash on pallet 7", author="alice")
    rc, out, err = cli(root, github, "router", "run", "--once")
    assert rc == 0 and "delivered 1 event(s)" in out, (out, err)

    rs.wait_until(lambda: said(transcript, "hello from the operator"), 30)
    rs.wait_until(lambda: said(transcript, f"acme/wms#{n}"), 30)
    assert said(transcript, "Scanner crash on pallet 7")


def test_ssh_agent_end_to_end(sshd: rs.Sshd, github: FakeGitHub, tmp_path: Path) -> None:
    root, workdir = tmp_path / "op", tmp_path / "w"  # short: the runner binds a socket there
    transcript = tmp_path / "transcript.jsonl"
    state = rs.ssh_fleet(
        root,
        sshd,
        workdir,
        name=f"e{os.getpid() % 10000}",
        agents={"coder": rs.fake_claude_agent(transcript, "ssh", "vm", "ssh", 8801)},
    )
    (root / ".fleet" / "routes.toml").write_text(rs.ROUTES)
    try:
        rc, out, err = cli(root, github, "start", "coder")
        assert rc == 0, err
        rc, out, _ = cli(root, github, "status", "--json")
        (row,) = json.loads(out)["agents"]
        assert row["running"] and row["backend"] == "ssh" and row["host"] == "vm"

        tell_and_route(root, github, transcript)
        remote = rs.remote_state(workdir, root, f"e{os.getpid() % 10000}")
        ids = [json.loads(x)["source"] for x in (remote / "inbox.jsonl").read_text().splitlines()]
        assert ids == ["operator", "github"]  # each exactly once, on the host
        assert not (state / "agents" / "coder" / "inbox.jsonl").exists()  # nothing local
    finally:
        rc, out, err = cli(root, github, "stop", "coder")
    assert rc == 0, err
    rc, out, _ = cli(root, github, "status", "--json")
    assert json.loads(out)["agents"][0]["running"] is False
    left = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout
    assert left.strip() == ""  # no runner, no session, no tmux server left on the host
    assert not list((workdir / "secrets").rglob("env.json"))


def test_docker_agent_end_to_end(
    dockerd: rs.Dockerd, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "op"
    name = f"d{os.getpid() % 10000}"
    transcript = root / ".fleet" / "state" / "agents" / "coder" / "transcript.jsonl"
    rs.write_fleet(
        root,
        name=name,
        hosts={"engine": {"backend": "docker", "host": dockerd.base_url}},
        agents={
            "coder": rs.fake_claude_agent(
                transcript, "docker", "engine", "file", 8811, image=rs.SKELETON_IMAGE
            )
        },
    )
    (root / ".fleet" / "routes.toml").write_text(rs.ROUTES)
    # The skeleton image borrows this machine's /usr and venv (no registry to pull from).
    monkeypatch.setenv("FLEET_DOCKER_MOUNTS", ",".join(rs.runner_mounts()))
    client = dockerd.client()
    try:
        rc, out, err = cli(root, github, "start", "coder")
        assert rc == 0, err
        rc, out, _ = cli(root, github, "status", "--json")
        (row,) = json.loads(out)["agents"]
        assert row["running"] and row["backend"] == "docker"
        tell_and_route(root, github, transcript)
        ctr = client.containers.get(rs.container_of(root, name))
        env = ctr.attrs["Config"]["Env"]
        assert not any(e.startswith(("GH_TOKEN", "ANTHROPIC")) for e in env)
        # The container sees its agents' state, but not the rest of .fleet/state.
        r = ctr.exec_run(
            ["python", "-c", f"import os; print(os.listdir({str(root / '.fleet' / 'state')!r}))"]
        )
        assert r.output.decode().strip() == "['agents']"
    finally:
        rc, out, err = cli(root, github, "stop", "coder")
    assert rc == 0, err
    assert client.containers.list(all=True, filters={"label": f"relayfleet.fleet={name}"}) == []


def test_http_transport_reaches_a_remote_runner_through_an_ssh_forward(
    sshd: rs.Sshd, github: FakeGitHub, tmp_path: Path
) -> None:
    """`inbox_transport = "http"` on an ssh host: the runner's loopback HTTP inbox is reached
    through a local forward over the pooled connection (its port is not exposed)."""
    from relayfleet.backends.transports import inner_transport
    from relayfleet.core.paths import FleetPaths
    from relayfleet.fleet.load import load_fleet

    root, workdir = tmp_path / "op", tmp_path / "w"
    transcript = tmp_path / "transcript.jsonl"
    name = f"h{os.getpid() % 10000}"
    rs.ssh_fleet(
        root,
        sshd,
        workdir,
        name=name,
        agents={"coder": rs.fake_claude_agent(transcript, "ssh", "vm", "http", 8801)},
    )
    paths = FleetPaths(root)
    endpoint_file = rs.remote_state(workdir, root, name) / "http-inbox.json"
    try:
        assert cli(root, github, "start", "coder")[0] == 0
        rs.wait_until(lambda: rs.transcript_ready(transcript) and endpoint_file.exists(), 40)
        rc, out, err = cli(root, github, "tell", "coder", "over", "http")
        assert rc == 0 and out.startswith("told coder"), (out, err)
        rs.wait_until(lambda: said(transcript, "over http"), 30)

        http = inner_transport(paths, load_fleet(paths), load_fleet(paths).agent("coder"))
        url, token = http.endpoint("coder")  # type: ignore[attr-defined]
        remote_port = json.loads(endpoint_file.read_text())["port"]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(f":{remote_port}")
        assert token == json.loads(endpoint_file.read_text())["token"]
    finally:
        assert cli(root, github, "stop", "coder")[0] == 0
