"""`attach` (a real subprocess on the runner's socket), `logs` (ANSI, -n, -f across rotation),
`login --print-env`, and backends that are not installed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fleetkit import FleetDir, make_fleet, pid_alive, run_cli, turns, wait_until

from relayfleet.cli.commands.logs import follow
from relayfleet.core.atomic import read_json
from relayfleet.core.errors import BackendError


@contextmanager
def started(fleet: FleetDir, agent: str) -> Iterator[None]:
    """`start <agent>` for the block, and `stop <agent>` after it whatever happened."""
    try:
        assert run_cli(fleet, "start", agent)[0] == 0
        yield
    finally:
        run_cli(fleet, "stop", agent)


def attach(fleet: FleetDir, agent: str) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of `gh fleet attach <agent>` as a separate process."""
    argv = [sys.executable, "-m", "relayfleet", "attach", agent]
    return argv, {**os.environ, "FLEET_ROOT": str(fleet.root)}


def coder_log(tmp_path: Path) -> tuple[FleetDir, Path]:
    """A fleet with an agent `coder` that has not run, and where its session log goes."""
    fleet = make_fleet(tmp_path / "fleet")
    fleet.echo_agent("coder")
    log = fleet.paths.session_log("coder")
    log.parent.mkdir(parents=True)
    return fleet, log


@contextmanager
def following(log: Path) -> Iterator[io.StringIO]:
    """`logs -f` on `log` in a thread for the block; what it printed is in the StringIO."""
    out = io.StringIO()
    done = threading.Event()
    kwargs = {"raw": False, "stop_after": 30, "stop": done.is_set}
    t = threading.Thread(target=follow, args=(log, out), kwargs=kwargs)
    t.start()
    time.sleep(0.3)  # follow starts at the end of the file: let it get there before a write
    try:
        yield out
    finally:
        done.set()
        t.join()


@pytest.mark.slow
def test_attach_types_into_the_session_and_detaches_with_ctrl_bracket(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    transcript = fleet.echo_agent("coder")
    with started(fleet, "coder"):
        argv, env = attach(fleet, "coder")
        pipe = subprocess.PIPE
        proc = subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=pipe, env=env)
        assert proc.stdin is not None
        wait_until(lambda: read_json(fleet.paths.runner_status("coder")).get("attached") == 1)
        proc.stdin.write(b"hello from a human\r")
        proc.stdin.flush()
        wait_until(lambda: "hello from a human" in turns(transcript))
        proc.stdin.write(b"\x1d")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert b"detach with Ctrl-]" in err and b"[detached from coder: detached]" in err
        assert b"hello from a human" in out  # the session's echo came back to our terminal
        st = read_json(fleet.paths.runner_status("coder"))
        assert pid_alive(st["pid"]) and pid_alive(st["session_pid"])  # the runner keeps going


def test_attach_to_a_stopped_agent_is_a_clear_error(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    fleet.echo_agent("coder")
    with pytest.raises(BackendError, match="coder has no live session to attach to"):
        run_cli(fleet, "attach", "coder")


def test_logs_strips_ansi_and_reads_into_the_rotated_file(tmp_path: Path) -> None:
    fleet, log = coder_log(tmp_path)
    log.with_name("session.log.1").write_bytes(b"old line 1\nold line 2\n")
    log.write_bytes(b"\x1b[1;32mgreen\x1b[0m text\r\n\x1b]0;title\x07progress 10%\rprogress 99%\n")
    rc, out, _ = run_cli(fleet, "logs", "coder", "-n", "3")
    assert rc == 0
    assert out == "old line 2\ngreen text\nprogress 99%\n"
    _, raw, _ = run_cli(fleet, "logs", "coder", "-n", "1", "--raw")
    assert "\x1b]0;title" in raw


def test_logs_follow_continues_across_rotation(tmp_path: Path) -> None:
    log = tmp_path / "session.log"
    log.write_bytes(b"before\n")
    with following(log) as out:
        with open(log, "ab") as f:
            f.write(b"\x1b[31mappended\x1b[0m\n")
        wait_until(lambda: "appended" in out.getvalue(), timeout=5)
        os.replace(log, tmp_path / "session.log.1")  # rotation: a new file takes the name
        log.write_bytes(b"in the new file\n")
        wait_until(lambda: "in the new file" in out.getvalue(), timeout=10)
    assert out.getvalue() == "appended\nin the new file\n"


def test_login_runs_in_the_agents_own_config_dir(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet")
    fleet.add_agent("coder", ["claude"], extra="isolate_config = true\ninherit_auth = false\n")
    rc, out, _ = run_cli(fleet, "login", "coder", "--print-env")
    assert rc == 0
    cdir = fleet.paths.agent_state("coder") / "claude-config"
    assert out.splitlines() == [f"CLAUDE_CONFIG_DIR={cdir}", "claude /login"]


def test_backends_that_are_not_installed_fail_clearly() -> None:
    from relayfleet.backends.registry import backend_named

    with pytest.raises(BackendError, match="unknown backend 'k8s'"):
        backend_named("k8s")
    assert backend_named("local").name == "local"


# Reports its terminal size at start and on every SIGWINCH.
SIZE_SESSION = """\
import json, os, signal, sys, time
out = sys.argv[1]
def report(*_):
    rows, cols = os.get_terminal_size(0).lines, os.get_terminal_size(0).columns
    with open(out, "a") as f:
        f.write(json.dumps({"type": "size", "rows": rows, "cols": cols}) + "\\n")
signal.signal(signal.SIGWINCH, report)
report()
while True:
    time.sleep(1)
"""


@pytest.mark.slow
def test_attach_passes_the_terminal_size_through_and_restores_it_on_detach(tmp_path: Path) -> None:
    from fleetkit import PY, read_transcript
    from ptyprocess import PtyProcess

    fleet = make_fleet(tmp_path / "fleet")
    script = fleet.root / "size_session.py"
    script.write_text(SIZE_SESSION)
    sizes_file = fleet.root / "sizes.jsonl"
    fleet.add_agent("coder", [PY, str(script), str(sizes_file)])

    def sizes() -> list[tuple[int, int]]:
        return [(t["rows"], t["cols"]) for t in read_transcript(sizes_file)]

    with started(fleet, "coder"):
        assert sizes()[-1] == (50, 200)  # the session's own size
        argv, env = attach(fleet, "coder")
        term = PtyProcess.spawn(argv, env=env, dimensions=(30, 100))
        try:
            wait_until(lambda: sizes()[-1] == (30, 100))  # drawn for the attached terminal
            term.setwinsize(40, 120)  # the human resizes their window: SIGWINCH
            wait_until(lambda: sizes()[-1] == (40, 120))
            term.write(b"\x1d")  # detach
            wait_until(lambda: not term.isalive())
        finally:
            term.close(force=True)
        wait_until(lambda: sizes()[-1] == (50, 200))  # restored for the runner's own reading
        st = read_json(fleet.paths.runner_status("coder"))
        assert pid_alive(st["pid"]) and pid_alive(st["session_pid"])


REAL_TURN = Path(__file__).parents[1] / "runner" / "fixtures" / "real-turn-80x24.bin"


def test_logs_of_a_real_session_show_what_its_terminal_showed(tmp_path: Path) -> None:
    """Recorded from Claude Code 2.1.331: lines end in \\r\\r\\n and words are placed with cursor
    moves, so stripping escapes loses the reply; rendering shows it, spaces and all."""
    from relayfleet.backends.logtail import strip_ansi

    data = REAL_TURN.read_bytes()
    assert b"Hello there friend" not in strip_ansi(data)  # what `logs` used to show
    fleet, log = coder_log(tmp_path)
    log.write_bytes(data)
    rc, out, _ = run_cli(fleet, "logs", "coder", "-n", "40")
    assert rc == 0
    lines = out.splitlines()
    assert "● Hello there friend, the reply has spaces between its words." in lines
    assert "❯ Say hello please" in lines
    assert "\x1b" not in out and "\r" not in out
    _, raw, _ = run_cli(fleet, "logs", "coder", "--raw", "-n", "400")
    assert "\x1b[" in raw


def test_logs_follow_renders_a_real_session_as_it_grows(tmp_path: Path) -> None:
    data = REAL_TURN.read_bytes()
    cut = data.index(b"Hello there") - 40  # the reply arrives after `logs -f` started
    log = tmp_path / "session.log"
    log.write_bytes(data[:cut])
    with following(log) as out:
        with open(log, "ab") as f:
            f.write(data[cut:])
        wait_until(lambda: "Hello there friend" in out.getvalue(), timeout=10)
    assert (
        "● Hello there friend, the reply has spaces between its words."
        in out.getvalue().splitlines()
    )
    assert "\x1b" not in out.getvalue()
