"""`gh fleet up` in a real terminal that goes away: the window closes (SIGHUP to `up`), or the
terminal hangs up under an `up` it does not signal (writes fail with EIO). Either way `up` stops
the fleet as on Ctrl-C: no router, runner or session process is left."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

import pytest
from upkit import PY, REPO, TOKEN, Fleet, env_for, pid_alive, route_toml, wait_until, watch_toml

from relayfleet.core.atomic import read_json
from relayfleet.fakes.github import FakeGitHub
from relayfleet.up.supervisor import up_state_path
from tests.procfs import group_members

pytestmark = pytest.mark.slow


class Terminal:
    """A pseudo-terminal running `argv`; its output is drained (and kept) until it is closed."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        from ptyprocess import PtyProcess

        self.proc = PtyProcess.spawn(argv, cwd=str(cwd), env=env, dimensions=(40, 160))
        self.fd = self.proc.fd
        self.text = ""
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if self._closed.is_set():
                return
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.text += data.decode(errors="replace")

    def close_master(self) -> None:
        """What closing the terminal window does: the master side goes away."""
        self._closed.set()
        self._reader.join(5)
        os.close(self.fd)
        self.proc.closed = True


@pytest.fixture
def github():  # type: ignore[no-untyped-def]
    fake = FakeGitHub(token=TOKEN, login="fleet-bot", poll_interval=1)
    fake.start()
    fake.add_repo(REPO)
    yield fake
    fake.stop()


@pytest.mark.parametrize("detached", [False, True], ids=["sighup", "hung-up-tty-only"])
def test_closing_the_terminal_stops_the_whole_fleet(
    tmp_path: Path, github: FakeGitHub, detached: bool
) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    fleet.write_routes(watch_toml("app") + route_toml(["coder"], watch="app"))
    fleet.commit("fleet: coder")
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(fleet.root, home, FLEET_GITHUB_API_URL=github.base_url, GH_TOKEN=TOKEN)
    argv = [PY, "-m", "relayfleet", "up"]
    # `setsid`: `up` keeps the terminal as its output but is outside its session, so no
    # SIGHUP reaches it when the terminal goes: only its writes failing can tell it.
    term = Terminal(["setsid", "-w", *argv] if detached else argv, cwd=fleet.root, env=env)
    pids: list[int] = []
    try:
        try:
            wait_until(lambda: "Ctrl-C stops everything" in term.text, 60)
        except AssertionError:
            raise AssertionError(f"up did not come up; its terminal showed:\n{term.text}") from None
        wait_until(lambda: fleet.session_up("coder"), 30)
        wait_until(lambda: fleet.router_pid(), 30)
        up_pid = read_json(up_state_path(fleet.paths))["pid"]
        runner = fleet.runner("coder")
        pids += [up_pid, fleet.router_pid(), runner["pid"], runner["session_pid"]]
        pgid = runner["session_pgid"]
        assert all(pid_alive(p) for p in pids) and group_members(pgid)

        term.close_master()

        wait_until(lambda: not pid_alive(up_pid), 60)
        assert [p for p in pids if pid_alive(p)] == []
        assert group_members(pgid) == []
        assert not up_state_path(fleet.paths).exists()  # it shut down, not crashed
        log = (fleet.paths.runner_log("coder")).read_text()
        assert "runner for coder stopped" in log
    finally:
        for p in pids:  # whatever a failure left behind
            if pid_alive(p):
                os.kill(p, 9)
