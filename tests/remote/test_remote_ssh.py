"""The ssh backend, the pooled connection and the ssh inbox transport against a real sshd."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import remote_support as rs

from relayfleet.backends.sshpool import SshPool, SshTarget
from relayfleet.core.errors import BackendError

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


def test_status_of_many_agents_on_one_host_is_one_remote_command(
    sshd: rs.Sshd, tmp_path: Path
) -> None:
    import io

    from relayfleet.backends.sshpool import default_pool
    from relayfleet.cli.context import Context
    from relayfleet.cli.main import main

    root = tmp_path / "op"
    agents = {
        f"a{i}": rs.fake_claude_agent(tmp_path / "t.jsonl", "ssh", "vm", "ssh", 8900 + i)
        for i in range(5)
    }
    rs.ssh_fleet(root, sshd, tmp_path / "w", name="st", agents=agents, seed=False)
    pool = default_pool()
    before = pool.commands
    out = io.StringIO()
    ctx = Context(out=out, err=io.StringIO(), env={**os.environ, "FLEET_ROOT": str(root)}, cwd=root)
    assert main(["status", "--json"], ctx) == 0
    rows = json.loads(out.getvalue())["agents"]
    assert [(r["name"], r["running"], r["host"]) for r in rows] == [
        (f"a{i}", False, "vm") for i in range(5)
    ]
    assert pool.commands - before == 1


def test_the_batched_status_output_is_parsed_per_agent() -> None:
    from relayfleet.backends.ssh import parse_status_output

    text = (
        "@pane a0 4242 0\n@pane a1 4343 1\n@pane a0 9999 0\n"
        '@json a0\n{"pid": 4242, "delivery": "channel",\n "pending": 0}\n\n'
        "@json a1\n\n@json a2\n{torn\n"
    )
    panes, facts = parse_status_output(text)
    assert panes == {"a0": (4242, True), "a1": (4343, False)}
    assert facts == {"a0": {"pid": 4242, "delivery": "channel", "pending": 0}}


# -- a slow or odd host -------------------------------------------------------------------------


def test_a_noisy_login_shell_does_not_reach_command_output(sshd: rs.Sshd) -> None:
    """The host user's shell prints a greeting before every command; we see only ours."""
    import asyncssh

    pool = SshPool()
    t = target(sshd)
    try:
        raw = pool.call(lambda: _raw_run(pool, t, "echo hi"))
        assert rs.NOISE in raw  # the shell does greet (this test would pass vacuously otherwise)
        r = pool.run(t, "echo hi; echo oops >&2; exit 3")
        assert (r.stdout, r.stderr, r.exit_status) == ("hi\n", "oops\n", 3)
        assert pool.run(t, "cat", input="x\ny\n").stdout == "x\ny\n"
    finally:
        pool.close()
    del asyncssh


async def _raw_run(pool: SshPool, t: SshTarget, cmd: str) -> str:
    conn = await pool.connection(t)
    r = await conn.run(cmd, check=False)
    return str(r.stdout)


def test_a_command_honours_its_own_timeout_and_names_host_step_and_time(sshd: rs.Sshd) -> None:
    pool = SshPool()
    try:
        # A command that takes a while gets the time it asked for.
        assert pool.run(target(sshd), "sleep 2; echo done", timeout=60).stdout == "done\n"
        with pytest.raises(BackendError) as info:
            pool.check(target(sshd), "sleep 30", timeout=2, what="installing the dependencies")
    finally:
        pool.close()
    msg = str(info.value)
    assert "'vm'" in msg and "installing the dependencies" in msg and "within 2 s" in msg


def test_a_host_without_sftp_is_named_with_the_fix(tmp_path: Path) -> None:
    why = rs.ensure_packages(rs.SSHD, ["openssh-server"])
    if why:
        pytest.skip(why)
    bare = rs.start_sshd(tmp_path / "bare", sftp=False)
    pool = SshPool()
    try:
        with pytest.raises(BackendError) as info:
            pool.put(target(bare), b"x", str(tmp_path / "f"))
    finally:
        pool.close()
        bare.stop()
    assert "SFTP" in str(info.value) and "'vm'" in str(info.value)
    assert any("Subsystem sftp internal-sftp" in h for h in info.value.hints)


def test_output_is_what_follows_the_marker_and_inbox_counts_are_parsed() -> None:
    from relayfleet.backends.ssh import inbox_counts
    from relayfleet.backends.sshpool import unframe

    assert unframe("Welcome!\nmotd\n@m@\nreal\n", "@m@") == "real\n"
    assert unframe("no marker\n", "@m@") == "no marker\n"  # nothing to cut
    assert unframe("@m@\n", "@m@") == ""
    assert inbox_counts("@lines a0 3\n@json a0\n{}\n@lines a1 0\n@lines bad x\n") == {
        "a0": 3,
        "a1": 0,
    }
