"""Credentials for local agents: resolved at start, into the session's env and box, nowhere else.

A canary value is resolved from the environment and from a file; the test then scans `.fleet/`
(logs, state, status), `status --json`, every process's argv and the error messages for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from fleetkit import PY, FleetDir, make_fleet, read_transcript, run_cli, turns, wait_until

from relayfleet.core.atomic import read_json
from relayfleet.core.errors import CredentialError

pytestmark = pytest.mark.slow

ENV_CANARY = "canary-env-7f3a9c1e5b2d4f60"
FILE_CANARY = "canary-file-0d9e8c7b6a5f4e3d"

SESSION = """\
import hashlib, json, os, sys
out = sys.argv[1]
box = os.environ.get("RELAYFLEET_BOX", "")
key = os.path.join(box, "keys", "deploy.key")
def h(b): return hashlib.sha256(b).hexdigest()
rec = {"type": "launch", "gh": h(os.environ.get("GH_TOKEN", "").encode()), "box": box,
       "key": h(open(key, "rb").read()) if os.path.exists(key) else None,
       "key_mode": oct(os.stat(key).st_mode & 0o777) if os.path.exists(key) else None}
with open(out, "a") as f:
    f.write(json.dumps(rec) + "\\n")
for line in sys.stdin:
    with open(out, "a") as f:
        f.write(json.dumps({"type": "turn", "text": line.rstrip("\\n")}) + "\\n")
    if "LEAK" in line:  # a careless session printing its token: session.log must mask it
        print("token is " + os.environ["GH_TOKEN"], flush=True)
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    secret_file = tmp_path / "secrets" / "deploy.key"
    secret_file.parent.mkdir()
    secret_file.write_text(FILE_CANARY)
    f = make_fleet(tmp_path / "fleet")
    script = f.root / "cred_session.py"
    script.write_text(SESSION)
    f.add_agent(
        "coder",
        [PY, str(script), str(f.root / "coder.transcript.jsonl")],
        extra=(
            '[credentials.gh]\nfrom_env = "CANARY_SRC"\nas_env = "GH_TOKEN"\n'
            f'[credentials.deploy]\nfrom_file = "{secret_file}"\n'
            'as_file = "keys/deploy.key"\nmode = "0640"\n'
        ),
    )
    yield f
    run_cli(f, "stop", "coder")


def scan_for_canaries(fleet: FleetDir) -> list[str]:
    """Every place a canary must never be: files under .fleet/, and every process's argv."""
    leaks = []
    for p in (fleet.root / ".fleet").rglob("*"):
        if p.is_file() and not p.is_socket():
            data = p.read_bytes()
            leaks += [f"{p}: {c}" for c in (ENV_CANARY, FILE_CANARY) if c.encode() in data]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                argv = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            leaks += [f"pid {d} argv" for c in (ENV_CANARY, FILE_CANARY) if c.encode() in argv]
    return leaks


def test_a_local_agent_gets_exactly_its_credentials_and_they_leak_nowhere(
    fleet: FleetDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY_SRC", ENV_CANARY)
    transcript = fleet.root / "coder.transcript.jsonl"
    rc, out, err = run_cli(fleet, "start", "coder")
    assert rc == 0, err
    (launch,) = [t for t in read_transcript(transcript) if t["type"] == "launch"]
    assert launch["gh"] == sha(ENV_CANARY)
    assert launch["key"] == sha(FILE_CANARY) and launch["key_mode"] == "0o640"
    box = Path(launch["box"])
    assert not box.is_relative_to(fleet.root)  # outside .fleet/ (and outside the repo)
    assert stat.S_IMODE(box.stat().st_mode) == 0o700

    run_cli(fleet, "tell", "coder", "LEAK")
    wait_until(lambda: "[FROM operator] LEAK" in turns(transcript))
    wait_until(lambda: "token is ***" in fleet.paths.session_log("coder").read_text())

    rc, status_json, _ = run_cli(fleet, "status", "--json")
    _, status_table, _ = run_cli(fleet, "status")
    for text in (out, err, status_json, status_table):
        assert ENV_CANARY not in text and FILE_CANARY not in text
    (row,) = json.loads(status_json)["agents"]
    assert row["running"] and row["credentials"] == ["gh", "deploy"]
    assert scan_for_canaries(fleet) == []

    run_cli(fleet, "stop", "coder")
    assert not (box / "keys" / "deploy.key").exists()  # the box file goes with the runner
    assert scan_for_canaries(fleet) == []


def test_a_missing_source_stops_the_start_before_anything_runs(
    fleet: FleetDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CANARY_SRC", raising=False)
    with pytest.raises(CredentialError) as info:
        run_cli(fleet, "start", "coder")
    msg = str(info.value)
    assert "credential 'gh'" in msg and "agent 'coder'" in msg and "CANARY_SRC" in msg
    assert FILE_CANARY not in msg
    assert not fleet.paths.runner_pid("coder").exists()
    assert not (fleet.root / "coder.transcript.jsonl").exists()

    # `gh fleet up` runs the runner directly: the runner refuses by itself, half-configured never.
    proc = subprocess.run(
        [PY, "-m", "relayfleet.runner", str(fleet.root), "coder"],
        env={k: v for k, v in os.environ.items() if k != "CANARY_SRC"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1
    log = fleet.paths.runner_log("coder").read_text()
    assert "not starting" in log and "credential 'gh'" in log
    st = read_json(fleet.paths.runner_status("coder"))
    assert st["running"] is False and "credential 'gh'" in st["error"]
    assert not (fleet.root / "coder.transcript.jsonl").exists()
    box = Path(os.environ["XDG_RUNTIME_DIR"]) / "relayfleet" / "test-fleet" / "coder"
    assert not (box / "keys" / "deploy.key").exists()
    assert scan_for_canaries(fleet) == []


def test_an_absolute_as_file_is_refused_for_a_local_agent(tmp_path: Path) -> None:
    f = make_fleet(tmp_path / "fleet")
    f.add_agent(
        "coder",
        [PY, "-c", "pass"],
        extra='[credentials.k]\nfrom_env = "HOME"\nas_file = "/etc/relayfleet-test-key"\n',
    )
    with pytest.raises(CredentialError, match="never over a file of this machine"):
        run_cli(f, "start", "coder")
