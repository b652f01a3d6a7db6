"""`gh fleet host check|trust` and `gh fleet tunnel open|status|close` against a real sshd."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import remote_support as rs
from remote_support import cli

from relayfleet.backends.sshpool import SshTarget, default_pool

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet_root(sshd: rs.Sshd, tmp_path: Path) -> Path:
    root = tmp_path / "op"
    rs.write_fleet(
        root,
        name=f"t{os.getpid() % 10000}",
        agents={},
        hosts={
            "vm": {
                "backend": "ssh",
                "host": f"{sshd.user}@127.0.0.1",
                "port": sshd.port,
                "workdir": str(tmp_path / "w"),
                "key": str(sshd.client_key),
            }
        },
    )
    return root


ITEMS = ["reachable", "key trusted", "python", "sftp", "tmux", "workdir", "runner"]


def lines_by_item(out: str) -> dict[str, str]:
    return {
        line[2:].split(":")[0]: line[0] for line in out.splitlines() if line[:1] in ("✓", "✗", "!")
    }


def test_trust_then_check(fleet_root: Path, sshd: rs.Sshd) -> None:
    rc, out, err = cli(fleet_root, "host", "check", "vm")
    assert rc == 1 and "not in known_hosts" in out and "gh fleet host trust vm" in out
    # Every item has its own line; the untrusted key does not end the report.
    marks = lines_by_item(out)
    assert list(marks) == ITEMS
    assert marks["reachable"] == "✓" and marks["key trusted"] == "✗"

    rc, out, err = cli(fleet_root, "host", "trust", "vm")
    assert rc == 0, err
    assert "SHA256:" in out
    known = (fleet_root / ".fleet" / "state" / "known_hosts").read_text()
    assert sshd.host_pub.split()[1] in known

    rc, out, err = cli(fleet_root, "host", "check", "vm", "--json")
    items = {i["name"]: i for i in json.loads(out)}
    assert items["reachable"]["status"] == "ok"
    assert items["python"]["status"] == "ok"
    assert items["workdir"]["status"] == "ok"
    assert items["tmux"]["status"] == "ok"
    assert items["sftp"]["status"] == "ok"
    assert items["runner"]["status"] == "warn"  # not installed yet
    assert rc == 0


def test_check_reports_a_missing_sftp_subsystem_and_goes_on(tmp_path: Path) -> None:
    why = rs.ensure_packages(rs.SSHD, ["openssh-server"])
    if why:
        pytest.skip(why)
    bare = rs.start_sshd(tmp_path / "bare", sftp=False)
    root = tmp_path / "op"
    try:
        rs.write_fleet(
            root, name="nosftp", agents={}, hosts={"vm": rs.ssh_host(bare, tmp_path / "w")}
        )
        rs.trust(root, bare)
        rc, out, err = cli(root, "host", "check", "vm")
    finally:
        bare.stop()
    assert rc == 1, err
    marks = lines_by_item(out)
    assert list(marks) == ITEMS
    assert marks["sftp"] == "✗" and marks["tmux"] == "✓" and marks["workdir"] == "✓"
    assert "SFTP subsystem" in out and "Subsystem sftp internal-sftp" in out


def test_tunnel_reaches_this_machine_from_the_host(fleet_root: Path, sshd: rs.Sshd) -> None:
    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"operator-gateway")

        def log_message(self, *a: object) -> None:
            pass

    gw = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=gw.serve_forever, daemon=True).start()
    remote_port = rs.free_port()
    rs.trust(fleet_root, sshd)
    try:
        rc, out, err = cli(
            fleet_root, "tunnel", "open", "vm", "--port", f"{remote_port}:{gw.server_address[1]}"
        )
        assert rc == 0, err
        # "On the host": a command run over ssh fetches localhost:<remote_port>.
        target = SshTarget(
            "vm", "127.0.0.1", sshd.port, sshd.user, str(sshd.client_key), (str(sshd.known_hosts),)
        )
        got = default_pool().run(
            target,
            f'python3 -c "import urllib.request as u; '
            f"print(u.urlopen('http://127.0.0.1:{remote_port}/').read().decode())\"",
        )
        assert got.stdout.strip() == "operator-gateway", got.stderr
        rc, out, _ = cli(fleet_root, "tunnel", "status", "--json")
        (row,) = json.loads(out)
        assert row["connected"] and row["host"] == "vm"
    finally:
        rc, out, _ = cli(fleet_root, "tunnel", "close", "vm")
        gw.shutdown()
    assert "closed" in out
    rc, out, _ = cli(fleet_root, "tunnel", "status", "--json")
    assert json.loads(out)[0]["running"] is False
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{remote_port}/", timeout=2)


def test_check_of_a_host_that_is_down_reports_every_item(tmp_path: Path) -> None:
    root = tmp_path / "op"
    rs.write_fleet(
        root,
        name="down",
        agents={},
        hosts={"vm": {"backend": "ssh", "host": "me@127.0.0.1", "port": rs.free_port()}},
    )
    rc, out, err = cli(root, "host", "check", "vm")
    assert rc == 1, err
    marks = lines_by_item(out)
    assert list(marks) == ITEMS and set(marks.values()) == {"✗"}
    assert "check host/port of 'vm' in fleet.toml" in out
    assert out.count("not checked: no SSH session") == len(ITEMS) - 2
