"""Least privilege for local sessions: a canary test.

The operator's environment holds secrets no agent declared (an OpenAI key, an AWS secret, a
GitHub token, the gateway secret, a real-looking Anthropic key). Six real runners start: the
`command` and `claude` engines, each in the `default`, `custom` and `gateway` endpoint modes.
Then every process of every session (/proc/<pid>/environ), every file under the fleet's state,
every log, the CLI's output and `ps` are searched for the canaries.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.fleetkit import PY, FleetDir, make_fleet, run_cli
from tests.procfs import group_members

pytestmark = pytest.mark.slow

ANTHROPIC = "sk-ant-api03-CANARYrealLookingMachineKey0000000000000000000000000-AA"
UNDECLARED = {
    "OPENAI_API_KEY": "canary-openai-5b1f0e0d9c8a7b6a",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-secret-0f1e2d3c4b5a",
    "GH_TOKEN": "ghp_CANARYoperatorToken000000000000000000",
    "RELAYFLEET_GATEWAY_SECRET": "canary-gateway-secret-0123456789abcdef",
}
DECLARED = "declared-value-the-agent-asked-for"
SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n"
MODES = {
    "default": "",
    "custom": '[claude.endpoint]\nmode = "custom"\nurl = "http://127.0.0.1:9/"\n',
    "gateway": '[claude.endpoint]\nmode = "gateway"\n',
}
CREDENTIAL = '[credentials.tool]\nfrom_env = "DECLARED_SRC"\nas_env = "TOOL_TOKEN"\n'


def session_pids(fleet: FleetDir, name: str) -> list[int]:
    """The session leader and every live process of its group (a zombie has no environment)."""
    st = json.loads(fleet.paths.runner_status(name).read_text())
    return group_members(st["session_pgid"])


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(kv.split("=", 1) for kv in raw.decode().split("\0") if "=" in kv)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for k, v in {**UNDECLARED, "ANTHROPIC_API_KEY": ANTHROPIC}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DECLARED_SRC", DECLARED)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    f = make_fleet(tmp_path / "fleet")
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(SLEEPER)
    for mode, table in MODES.items():
        f.add_agent(f"cmd-{mode}", [PY, str(sleeper)], plugins=[], extra=table + CREDENTIAL)
        f.add_agent(
            f"cc-{mode}",
            [PY, "-m", "relayfleet.fakes.fake_claude"],
            engine="claude",
            plugins=[],
            extra=table + CREDENTIAL,
        )
    yield f
    run_cli(f, "stop", "--all")


def test_no_session_sees_an_undeclared_secret_and_none_leaks_anywhere(fleet: FleetDir) -> None:
    rc, out, err = run_cli(fleet, "start", "--all")
    assert rc == 0, err
    assert all(f"{name}: started" in out for name in fleet.agents)  # every session is up

    for name in fleet.agents:
        mode = name.split("-", 1)[1]
        pids = session_pids(fleet, name)
        assert pids, name
        for pid in pids:
            env = environ(pid)
            seen = "\n".join(f"{k}={v}" for k, v in env.items())
            for key, value in UNDECLARED.items():
                assert value not in seen, f"{name} (pid {pid}) sees {key}"
            assert "DECLARED_SRC" not in env and env["TOOL_TOKEN"] == DECLARED
            assert env["LC_ALL"] == "C.UTF-8" and env["HOME"] == os.environ["HOME"]
            # The runner's PATH, after the agent's own bin/ (`gh fleet`: runner/fleet_bin.py).
            agent_bin = str(fleet.paths.agent_state(name) / "bin")
            assert env["PATH"] == agent_bin + os.pathsep + os.environ["PATH"]
            if mode == "default":  # the machine's own login: what inherit_auth asks for
                assert env["ANTHROPIC_API_KEY"] == ANTHROPIC, name
            else:
                assert ANTHROPIC not in seen, f"{name} (pid {pid}) sees the real key"
            if mode == "gateway":
                assert env["ANTHROPIC_API_KEY"].startswith("sk-ant-api03-")
                assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8799"
            if mode == "custom":
                assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/"

    canaries = [*UNDECLARED.values(), ANTHROPIC, DECLARED]
    for path in fleet.paths.state.rglob("*"):
        if path.is_file() and not path.is_socket():
            data = path.read_bytes()
            for c in canaries:
                assert c.encode() not in data, f"{c[:14]}… in {path}"
    for c in canaries:
        assert c not in out and c not in err
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
    for c in canaries:
        assert c not in ps


def test_the_runner_is_not_inspectable_by_its_sessions_which_stay_normal() -> None:
    """The runner holds the operator's whole environment: it marks itself not dumpable, so a
    session of the same (non-root) user cannot read /proc/<runner>/environ. A program it execs
    (the session) is dumpable again, as usual."""
    code = (
        "import ctypes, subprocess, sys\n"
        "from relayfleet.core.procs import forbid_inspection\n"
        "assert forbid_inspection()\n"
        "get = lambda: ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)\n"
        "child = subprocess.run([sys.executable, '-c', "
        "'import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))'],"
        " capture_output=True, text=True).stdout.strip()\n"
        "print(get(), child)\n"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "1"]
