"""A docker agent through the CLI, as the local and ssh agents are in test_remote_mixed.py: logs
(-n, --raw, -f), attach, a second start, inbox --json; one container serves the module."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import remote_support as rs

pytestmark = pytest.mark.slow

SETUP_TIMEOUT = 180
STEP_TIMEOUT = 90


@dataclass
class Box:
    root: Path
    transcript: Path
    env: dict[str, str]

    def cli(self, *argv: str) -> tuple[int, str, str]:
        return rs.cli(self.root, *argv, env=self.env)

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        return rs.spawn(self.env, *argv)

    @property
    def state(self) -> Path:
        return self.root / ".fleet/state/agents/coder"


@pytest.fixture(scope="module")
def box(dockerd: rs.Dockerd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    root = tmp_path_factory.mktemp("dbox") / "op"
    transcript = root / ".fleet/state/agents/coder/transcript.jsonl"  # bind-mounted
    rs.write_fleet(
        root,
        name=f"s{os.getpid() % 10000}",
        hosts={"engine": {"backend": "docker", "host": dockerd.base_url}},
        agents={
            "coder": rs.fake_claude_agent(
                transcript, "docker", "engine", "file", 8863, image=rs.SKELETON_IMAGE
            )
        },
    )
    # The skeleton image borrows this machine's /usr and venv (no registry to pull from).
    env = {
        **os.environ,
        "FLEET_ROOT": str(root),
        "FLEET_DOCKER_MOUNTS": ",".join(rs.runner_mounts()),
    }
    b = Box(root, transcript, env)
    # The backend reads the mounts from the process environment (a module fixture has no
    # monkeypatch): set for the module, restored after.
    saved = os.environ.get("FLEET_DOCKER_MOUNTS")
    os.environ["FLEET_DOCKER_MOUNTS"] = env["FLEET_DOCKER_MOUNTS"]
    try:
        rc, _, err = b.cli("start", "coder", "--no-wait")
        assert rc == 0, err
        rs.wait_until(lambda: rs.transcript_ready(transcript), SETUP_TIMEOUT)
        yield b
    finally:
        b.cli("stop", "coder")
        if saved is None:
            os.environ.pop("FLEET_DOCKER_MOUNTS", None)
        else:
            os.environ["FLEET_DOCKER_MOUNTS"] = saved


def test_start_of_a_running_docker_agent_says_so(box: Box) -> None:
    rc, out, err = box.cli("start", "coder")
    assert rc == 0, err
    assert out.startswith("coder: already running (pid "), out


def test_logs_n_and_raw(box: Box) -> None:
    rc, out, err = box.cli("logs", "coder", "-n", "3")
    assert rc == 0, err
    assert len(out.splitlines()) == 3 and "\x1b" not in out
    assert "\x1b[" in box.cli("logs", "coder", "-n", "500", "--raw")[1]


def test_logs_follow(box: Box) -> None:
    proc = box.spawn("logs", "coder", "-f", "-n", "1")
    got: list[bytes] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    t = threading.Thread(target=lambda: got.extend(iter(stdout.readline, b"")), daemon=True)
    t.start()
    try:
        rs.wait_until(lambda: got, STEP_TIMEOUT)
        n = uuid.uuid4().hex[:8]
        assert box.cli("tell", "coder", f"follow me {n}")[0] == 0
        rs.wait_until(lambda: any(f"follow me {n}".encode() in x for x in got), STEP_TIMEOUT)
    finally:
        proc.terminate()
        proc.wait(20)


def test_inbox_json_lists_each_event_once(box: Box) -> None:
    _, out, _ = box.cli("tell", "coder", "--json", "inbox check")
    event_id = json.loads(out)["id"]
    ids = [e["id"] for e in json.loads(box.cli("inbox", "coder", "--json")[1])]
    assert ids.count(event_id) == 1


def test_attach_types_into_the_docker_session(box: Box) -> None:
    proc = box.spawn("attach", "coder")
    n = uuid.uuid4().hex[:8]
    text = f"hello from a human {n}"
    out, err = rs.type_through_attach(proc, box.state, box.transcript, text, STEP_TIMEOUT)
    assert proc.returncode == 0, err
    assert b"[detached from coder: detached]" in err
    assert f"hello from a human {n}".encode() in out
