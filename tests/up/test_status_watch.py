"""`gh fleet status --watch` in a real PTY: it renders, refreshes in place, quits on `q`, and
gives the terminal back exactly as it found it."""

from __future__ import annotations

import io
import os
import re
import select
import sys
from pathlib import Path

from ptyprocess import PtyProcess
from upkit import PROJECT, Fleet, wait_until

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.core.atomic import write_json_atomic

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Screen:
    def __init__(self, proc: PtyProcess) -> None:
        self.proc = proc
        self.raw = ""

    def pump(self) -> str:
        while select.select([self.proc.fd], [], [], 0.05)[0]:
            try:
                self.raw += os.read(self.proc.fd, 65536).decode(errors="replace")
            except OSError:  # EIO: the child side closed
                break
        return ANSI.sub("", self.raw)

    def shows(self, text: str) -> bool:
        return text in self.pump()


def fleet_with_state(tmp_path: Path) -> Fleet:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    fleet.write_agent("reviewer", 8802)
    fleet.commit("fleet: two agents")
    write_json_atomic(fleet.paths.router_status, {"pending": 4, "cycles": 1})
    return fleet


def test_watch_renders_refreshes_and_quits_on_q(tmp_path: Path) -> None:
    fleet = fleet_with_state(tmp_path)
    # The terminal's own size decides the layout (not COLUMNS/LINES a test runner may export).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLEET_") and k not in ("COLUMNS", "LINES")
    }
    env.update(FLEET_ROOT=str(fleet.root), PYTHONPATH=str(PROJECT), TERM="xterm-256color")
    watch = f"{sys.executable} -m relayfleet status --watch --interval 0.2"
    cmd = f"stty -g; {watch}; echo RC=$?; stty -g"
    proc = PtyProcess.spawn(["sh", "-c", cmd], env=env, cwd=str(fleet.root), dimensions=(40, 140))
    screen = Screen(proc)
    try:
        # It renders: the router and both agents, with the router's pending count.
        cells = ("router", "coder", "reviewer", "cursor age", "pending")
        wait_until(lambda: screen.shows("q quits") and all(c in screen.pump() for c in cells), 30)
        text = screen.pump()
        assert re.search(r"router\s*│\s*stopped\s*│\s*-\s*│\s*github poll\s*│\s*4", text)

        # It refreshes: a change in the router's state shows up without a keypress.
        write_json_atomic(fleet.paths.router_status, {"pending": 17, "cycles": 2})
        wait_until(lambda: re.search(r"github poll\s*│\s*17", screen.pump()), 15)

        # In place, not by clearing the screen (no flicker): no clear-screen sequence.
        assert "\x1b[2J" not in screen.raw

        # `q` (no Enter: cbreak) quits with 0 and the terminal settings are what they were.
        proc.write(b"q")
        wait_until(lambda: screen.shows("RC=") and len(stty_lines(screen.pump())) >= 2, 15)
    finally:
        proc.terminate(force=True)
    text = screen.pump()
    assert "RC=0" in text
    before, after = stty_lines(text)[:2]
    assert before == after


def stty_lines(text: str) -> list[str]:
    return re.findall(r"^([0-9a-f]+(?::[0-9a-f]+){10,})\s*$", text, re.M)


def test_watch_without_a_terminal_prints_once(tmp_path: Path) -> None:
    fleet = fleet_with_state(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env["FLEET_ROOT"] = str(fleet.root)
    rc = main(["status", "--watch"], ctx=Context(out=out, err=err, env=env, cwd=fleet.root))
    assert rc == 0
    assert out.getvalue().count("q quits") == 1
    assert "coder" in out.getvalue() and "reviewer" in out.getvalue()
    assert "not a terminal: printed once" in err.getvalue()


def test_the_table_fits_80_columns_cutting_ids_before_names_never_the_pid() -> None:
    from rich.console import Console

    from relayfleet.cli.status_watch import render

    router = {"running": True, "pid": 4194301, "last_cycle": "x", "last_cycle_age_s": 3,
              "cursor_age_s": 7265, "broken_watches": {}, "pending": 0}  # fmt: skip
    agents = [
        {"name": name, "running": True, "session": "up", "pid": 4194300 - i,
         "delivery": "channel", "attached": 1, "pending": 12, "restarts": 3,
         "last_delivered": f"evt_op_{'0123456789abcdef' * 2}", "last_delivered_at": 1.0}
        for i, name in enumerate(("warehouse-reviewer-eu", "coder"))
    ]  # fmt: skip
    snap = {"router": router, "agents": agents, "up": {"running": True, "pid": 1}}

    def lines(width: int) -> list[str]:
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(render(snap, fleet_name="acme", width=width))
        return console.export_text().splitlines()

    narrow = lines(80)
    assert max(len(x) for x in narrow) <= 80, "\n".join(narrow)
    table = "\n".join(narrow)
    for pid in ("4194301", "4194300", "4194299"):
        assert pid in table  # never cut
    # The names survive (whole or nearly); the event ids are what was cut.
    assert "warehouse-revi" in table and "coder" in table
    assert "evt_op_0123456789abcdef0123456789abcdef" not in table

    # Narrower still: whole columns go, the pid stays whole.
    tiny = lines(60)
    assert max(len(x) for x in tiny) <= 60 and "4194300" in "\n".join(tiny)

    wide = "\n".join(lines(200))
    assert "warehouse-reviewer-eu" in wide and "evt_op_0123456789abcdef0123456789abcdef" in wide
