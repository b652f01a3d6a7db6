"""Installing the runner on an ssh host: locked on the host, idempotent, with progress, and a step
that overruns its time is a clear error that leaves nothing running there."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.hostlock import HostLock
from relayfleet.backends.ssh import SshBackend
from relayfleet.backends.sshpool import SshPool
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet

pytestmark = pytest.mark.slow


def test_a_second_install_waits_for_the_first_or_says_it_is_in_progress(
    sshd: rs.Sshd, tmp_path: Path
) -> None:
    root, workdir = tmp_path / "op", tmp_path / "w"
    agents = {"coder": rs.fake_claude_agent(tmp_path / "t.jsonl", "ssh", "vm", "ssh", 8830)}
    rs.ssh_fleet(root, sshd, workdir, name="inst", agents=agents)
    paths = FleetPaths(root)
    fleet = load_fleet(paths)
    pool = SshPool()
    lines: list[str] = []
    try:
        remote = SshBackend(pool=pool).remote(paths, fleet, fleet.agent("coder"))
        # Another operator process is installing (it holds the lock on the host).
        other = HostLock(pool, remote.target, remote.layout.install_lock, owner="ops@laptop pid 7")
        other.acquire(wait=0, say=lines.append, what="installing the runner")

        impatient = SshBackend(pool=pool, install_wait=1, say=lines.append)
        with pytest.raises(BackendError) as info:
            impatient.ensure_installed(remote)
        assert "in progress by ops@laptop pid 7" in str(info.value)
        assert "'vm'" in str(info.value)

        # A patient one waits for it, then does the install itself (the other left no marker).
        threading.Timer(2.0, other.release).start()
        patient = SshBackend(pool=pool, install_wait=120, say=lines.append)
        assert patient.ensure_installed(remote) == "installed"
        assert any("in progress by ops@laptop pid 7" in x and "waiting" in x for x in lines)
        steps = [x for x in lines if x.startswith("installing on vm: step ")]
        assert [x.split(" (")[0] for x in steps] == [
            f"installing on vm: step {i}/4" for i in (1, 2, 3, 4)
        ]
        assert all(x.endswith(" s") for x in steps)
        # Idempotent: the next start finds it done and takes no lock.
        assert patient.ensure_installed(remote) == "up to date"
        assert not Path(remote.layout.install_lock).exists()
    finally:
        pool.close()


def test_a_step_that_overruns_is_killed_on_the_host_and_named(
    sshd: rs.Sshd, tmp_path: Path
) -> None:
    from relayfleet.backends.sshpool import SshTarget

    t = SshTarget(
        "vm", "127.0.0.1", sshd.port, sshd.user, str(sshd.client_key), (str(sshd.known_hosts),)
    )
    pool = SshPool()
    lock = HostLock(pool, t, str(tmp_path / "w" / "x.lock"), owner="me")
    marker = f"{time.time_ns() % 10**6}.5"  # a sleep only this test runs
    try:
        lock.acquire(wait=0, say=print, what="installing")
        with pytest.raises(BackendError) as info:
            pool.check(t, lock.step_command(f"sleep 6{marker}"), timeout=5, what="a slow step")
        lock.kill_step()
        lock.release()
    finally:
        pool.close()
    assert "a slow step did not finish within 5 s" in str(info.value)
    left = subprocess.run(["pgrep", "-f", f"sleep 6{marker}"], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # no orphan keeps running on the host
    assert not (tmp_path / "w" / "x.lock").exists()
