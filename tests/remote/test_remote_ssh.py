"""The ssh backend, the pooled connection and the ssh inbox transport against a real sshd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.sshpool import SshPool, SshTarget
from relayfleet.backends.transports import outbox_backlog, transport_for
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet

pytestmark = pytest.mark.slow


def target(sshd: rs.Sshd, known_hosts: Path | None = None) -> SshTarget:
    return SshTarget(
        name="vm",
        addr="127.0.0.1",
        port=sshd.port,
        user=sshd.user,
        key=str(sshd.client_key),
        known_hosts=(str(known_hosts or sshd.known_hosts),),
    )


def test_ten_commands_share_one_connection(sshd: rs.Sshd) -> None:
    pool = SshPool()
    before = sshd.accepted()
    try:
        outs = [pool.run(target(sshd), f"echo {i}").stdout.strip() for i in range(10)]
    finally:
        pool.close()
    assert outs == [str(i) for i in range(10)]
    assert pool.opened == 1
    rs.wait_until(lambda: sshd.accepted() == before + 1, 10)


def test_an_unknown_host_key_is_refused_with_how_to_trust_it(sshd: rs.Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    before = sshd.accepted()
    pool = SshPool()
    try:
        with pytest.raises(BackendError) as info:
            pool.run(target(sshd, empty), "true")
    finally:
        pool.close()
    assert "host key is not in known_hosts" in str(info.value)
    assert any("gh fleet host trust vm" in h for h in info.value.hints)
    assert any(f"ssh-keyscan -p {sshd.port} 127.0.0.1" in h for h in info.value.hints)
    assert sshd.accepted() == before  # never authenticated to an unverified server


def test_sftp_put_sets_the_mode_and_read_returns_the_bytes(sshd: rs.Sshd, tmp_path: Path) -> None:
    pool = SshPool()
    dest = tmp_path / "remote" / "deep" / "secret.txt"
    try:
        pool.put(target(sshd), b"s3cret", str(dest), mode=0o600)
        assert pool.read(target(sshd), str(dest)) == b"s3cret"
        assert pool.read(target(sshd), str(tmp_path / "absent")) is None
    finally:
        pool.close()
    assert dest.stat().st_mode & 0o777 == 0o600


# -- end to end ---------------------------------------------------------------------------------


def seed_remote_venv(workdir: Path) -> None:
    """Pre-provision the host's runner venv with our dependencies (no PyPI in tests).

    The backend still syncs the package, links it into the venv and checks the pinned
    dependencies; only the `pip install` of them is skipped because they are already there.
    """
    import sys
    import sysconfig

    from relayfleet import __version__

    venv = workdir / f"relayfleet-{__version__}" / "venv"
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "zz-relayfleet-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


@pytest.fixture
def ssh_fleet(sshd: rs.Sshd, tmp_path: Path) -> tuple[FleetPaths, Path, Path]:
    root = tmp_path / "op"
    workdir = tmp_path / "w"  # short: the runner binds a unix socket under it
    transcript = tmp_path / "transcript.jsonl"
    host = {
        "backend": "ssh",
        "host": f"{sshd.user}@127.0.0.1",
        "port": sshd.port,
        "workdir": str(workdir),
        "key": str(sshd.client_key),
    }
    rs.write_fleet(
        root,
        name=f"s{os.getpid() % 10000}",
        hosts={"vm": host},
        agents={"coder": rs.fake_claude_agent(transcript, "ssh", "vm", "ssh", 8801)},
    )
    paths = FleetPaths(root)
    paths.state.mkdir(parents=True, exist_ok=True)
    # `gh fleet host trust vm` writes this file; here the test knows the key already.
    (paths.state / "known_hosts").write_text(sshd.known_hosts.read_text())
    seed_remote_venv(workdir)
    return paths, workdir, transcript


def test_ssh_e2e(
    ssh_fleet: tuple[FleetPaths, Path, Path],
) -> None:
    """An ssh agent starts in tmux, gets a `tell`, and `stop` leaves nothing on either side."""
    from relayfleet.backends.ssh import SshBackend

    paths, workdir, transcript = ssh_fleet
    fleet = load_fleet(paths)
    agent = fleet.agent("coder")
    backend = SshBackend()
    try:
        st = backend.start(paths, fleet, agent)
        assert st.running and st.detail.startswith("[ssh@vm]")
        remote_root = workdir / "fleets" / fleet.name
        assert (workdir / "relayfleet-0.1.0" / "src" / "relayfleet" / "runner").is_dir()
        assert (remote_root / ".fleet" / "agents" / "coder" / "agent.toml").is_file()

        rs.wait_until(lambda: rs.transcript_ready(transcript), 30)
        t = transport_for(paths, fleet, "coder")
        landed = t.append(
            "coder",
            {
                "id": "evt_tell_1",
                "ts": "2026-01-01T00:00:00Z",
                "source": "operator",
                "body": "hello over ssh",
                "metadata": {},
            },
        )
        assert landed is True
        assert t.has("coder", "evt_tell_1")
        assert outbox_backlog(paths, "coder") == 0
        rs.wait_until(
            lambda: any("hello over ssh" in x for x in rs.transcript_turns(transcript)), 30
        )
        assert backend.status(paths, fleet, agent).running
    finally:
        stopped = backend.stop(paths, fleet, agent)
    assert stopped
    assert not backend.status(paths, fleet, agent).running
    left = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout
    assert left.strip() == ""
