"""Two fleets on one host user never see each other's runners, and a failed start leaves no
secret on the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.remote_layout import fleet_identity
from relayfleet.backends.ssh import SshBackend
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet

pytestmark = pytest.mark.slow

CANARY = "canary-isolation-3b1e-do-not-leave"


def test_two_same_named_fleets_on_one_host_user_do_not_see_each_other(
    sshd: rs.Sshd, tmp_path: Path
) -> None:
    workdir = tmp_path / "w"  # one host user, one workdir: only the fleets' roots differ
    fleets = []
    for side in ("a", "b"):
        root = tmp_path / side
        t = tmp_path / f"{side}.jsonl"
        rs.ssh_fleet(
            root, sshd, workdir, name="twin",
            agents={"coder": rs.fake_claude_agent(t, "ssh", "vm", "ssh", 8840)},
        )  # fmt: skip
        paths = FleetPaths(root)
        fleets.append((paths, load_fleet(paths)))
    (pa, fa), (pb, fb) = fleets
    assert fleet_identity("twin", pa.root) != fleet_identity("twin", pb.root)
    backend = SshBackend(say=lambda _: None)
    a, b = fa.agent("coder"), fb.agent("coder")
    try:
        sa = backend.start(pa, fa, a)
        assert sa.running and not sa.detail.endswith("already running")
        assert not backend.status(pb, fb, b).running  # B does not see A's runner
        sb = backend.start(pb, fb, b)
        assert sb.running and not sb.detail.endswith("already running")
        assert sb.pid != sa.pid
        assert backend.stop(pa, fa, a) is True
        assert backend.status(pb, fb, b).running  # stopping A left B alone
        assert backend.status(pb, fb, b).pid == sb.pid
    finally:
        backend.stop(pa, fa, a)
        backend.stop(pb, fb, b)
    assert not backend.status(pb, fb, b).running


def test_a_start_that_fails_after_the_credential_push_leaves_no_secret(
    sshd: rs.Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, workdir = tmp_path / "op", tmp_path / "w"
    spec = rs.fake_claude_agent(tmp_path / "t.jsonl", "ssh", "vm", "ssh", 8841)
    secret_file = tmp_path / "box" / "tok"
    spec["credentials"] = {
        "tok": {"from_env": "RF_ISO_CANARY", "as_env": "RF_TOKEN"},
        "file": {"from_env": "RF_ISO_CANARY", "as_file": str(secret_file), "mode": "0600"},
    }
    name = f"f{os.getpid() % 10000}"
    rs.ssh_fleet(root, sshd, workdir, name=name, agents={"coder": spec})
    paths = FleetPaths(root)
    fleet = load_fleet(paths)
    backend = SshBackend(say=lambda _: None)
    monkeypatch.setenv("RF_ISO_CANARY", CANARY)
    # The host's tmux cannot make this fleet's socket (a directory is in its place), so the
    # start fails at its last step: after the env file and the credential file were pushed.
    sock = Path(f"/tmp/tmux-{os.getuid()}") / f"relayfleet-{fleet_identity(name, root)}"
    sock.mkdir(parents=True)
    try:
        with pytest.raises(BackendError, match="starting the runner in tmux"):
            backend.start(paths, fleet, fleet.agent("coder"))
    finally:
        sock.rmdir()
    assert (rs.remote_root(workdir, root, name) / ".fleet").is_dir()  # it did get that far
    assert not secret_file.exists()
    assert not list((workdir / "secrets").rglob("*.json"))
    for p in workdir.rglob("*"):
        if p.is_file() and p.stat().st_size < 5_000_000:
            assert CANARY.encode() not in p.read_bytes(), p
