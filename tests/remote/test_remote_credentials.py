"""Credentials: resolved at start, delivered as declared, never leaked (scanned for a canary)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.credentials import redact, resolve
from relayfleet.core.errors import CredentialError
from relayfleet.fleet.model import Agent, Credential

CANARY = "canary-7f3a91c2-do-not-leak"


def agent(*creds: Credential) -> Agent:
    return Agent("coder", "coder", credentials=creds)


def test_sources_and_deliveries(tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_bytes(b"KEYDATA\n")
    a = agent(
        Credential("openai", from_env="OPENAI_API_KEY"),
        Credential(
            "gh", from_command=(sys.executable, "-c", "print('tok-123')"), as_env="GH_TOKEN"
        ),
        Credential("deploy", from_file=str(keyfile), as_file="~/.ssh/id_ed25519", mode="0400"),
    )
    r = resolve(a, {"OPENAI_API_KEY": "sk-1"})
    assert r.env == {"OPENAI_API_KEY": "sk-1", "GH_TOKEN": "tok-123"}
    (f,) = r.files
    assert (f.path_in("/root"), f.data, f.mode) == ("/root/.ssh/id_ed25519", b"KEYDATA\n", 0o400)
    assert "sk-1" not in repr(r) and "tok-123" not in repr(r)
    assert redact("token tok-123 here", r) == "token *** here"


@pytest.mark.parametrize(
    ("cred", "expect"),
    [
        (Credential("openai", from_env="NOPE_NOT_SET"), "environment variable NOPE_NOT_SET"),
        (Credential("k", from_file="/nonexistent/x", as_env="K"), "cannot read /nonexistent/x"),
        (Credential("gh", from_command=("false",), as_env="GH_TOKEN"), "exited 1"),
        (Credential("x", as_env="X"), "exactly one of"),
    ],
)
def test_a_missing_source_names_the_credential_and_the_agent(cred: Credential, expect: str) -> None:
    with pytest.raises(CredentialError) as info:
        resolve(agent(Credential("ok", from_env="HOME"), cred), {"HOME": "/root"})
    assert "agent 'coder'" in str(info.value)
    assert f"credential {cred.name!r}" in str(info.value)
    assert expect in str(info.value)


def test_a_failing_command_never_echoes_its_output() -> None:
    cmd = (sys.executable, "-c", "import os; print(os.environ['SRC']); raise SystemExit(3)")
    with pytest.raises(CredentialError) as info:
        resolve(agent(Credential("gh", from_command=cmd, as_env="GH_TOKEN")), {"SRC": CANARY})
    assert CANARY not in str(info.value) + "".join(info.value.hints)


def test_ssh_agent_credentials_arrive_and_never_leak(sshd: rs.Sshd, tmp_path: Path) -> None:
    """The canary reaches the remote runner's environment and a 0600 file, and nowhere else."""

    from relayfleet.backends.ssh import SshBackend
    from relayfleet.core.paths import FleetPaths
    from relayfleet.fleet.load import load_fleet

    root, workdir = tmp_path / "op", tmp_path / "w"
    transcript = tmp_path / "t.jsonl"
    spec = rs.fake_claude_agent(transcript, "ssh", "vm", "ssh", 8821)
    spec["credentials"] = {
        "tok": {"from_env": "RF_CANARY", "as_env": "RF_TOKEN"},
        "file": {"from_env": "RF_CANARY", "as_file": str(tmp_path / "box" / "tok"), "mode": "0600"},
    }
    rs.ssh_fleet(root, sshd, workdir, name=f"c{os.getpid() % 10000}", agents={"coder": spec})
    paths = FleetPaths(root)
    fleet = load_fleet(paths)
    backend = SshBackend()

    os.environ.pop("RF_CANARY", None)
    with pytest.raises(CredentialError, match="credential 'tok'"):
        backend.start(paths, fleet, fleet.agent("coder"))
    # Nothing half-configured on the host (only the seeded venv is there).
    assert not (rs.remote_root(workdir, root, fleet.name) / ".fleet").exists()

    os.environ["RF_CANARY"] = CANARY
    try:
        st = backend.start(paths, fleet, fleet.agent("coder"))
        rs.wait_until(lambda: rs.transcript_ready(transcript), 30)
        env = Path(f"/proc/{st.pid}/environ").read_bytes()
        assert f"RF_TOKEN={CANARY}".encode() in env
        secret = tmp_path / "box" / "tok"
        assert secret.read_text() == CANARY and secret.stat().st_mode & 0o777 == 0o600
        status = str(backend.status(paths, fleet, fleet.agent("coder")))
        cmdlines = b"".join(
            p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists()
        )
    finally:
        os.environ.pop("RF_CANARY", None)
        backend.stop(paths, fleet, fleet.agent("coder"))
    assert CANARY not in status
    assert CANARY.encode() not in cmdlines
    for tree in (root / ".fleet", workdir):
        for p in tree.rglob("*"):
            if p.is_file() and p.stat().st_size < 5_000_000:
                assert CANARY.encode() not in p.read_bytes(), p
