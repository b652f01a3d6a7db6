"""The `command` engine: any program in a PTY, events typed into it one line each."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from sessionkit import make_spec, wait_until

from relayfleet.core.errors import ConfigError
from relayfleet.runner.engine import DELIVERY_PTY
from relayfleet.runner.engine_command import CommandEngine
from relayfleet.runner.engines import make_engine

# Records each typed line, plus where the runner's MCP config is, then exits on "quit".
LINE_RECORDER = textwrap.dedent(
    """
    import json, os, sys
    out = sys.argv[1]
    with open(out, "a") as f:
        f.write(json.dumps({"mcp_config": os.environ.get("RELAYFLEET_MCP_CONFIG")}) + "\\n")
    while True:
        line = input("> ")
        with open(out, "a") as f:
            f.write(json.dumps({"line": line}) + "\\n")
        if line == "quit":
            raise SystemExit(3)
    """
)


class NoChannel:
    def connected(self) -> bool:
        return False

    async def push(self, content: str, meta: dict[str, str]) -> int:
        return 0


def _records(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_events_are_typed_as_lines_in_order(tmp_path: Path) -> None:
    script = tmp_path / "recorder.py"
    script.write_text(LINE_RECORDER)
    out = tmp_path / "lines.jsonl"
    spec = make_spec(
        tmp_path,
        command=(sys.executable, str(script)),
        args=(str(out),),
        mcp_url="http://127.0.0.1:9/mcp",
        mcp_token="tok",
    )
    engine = make_engine(spec, NoChannel())
    assert isinstance(engine, CommandEngine)

    async def main() -> int:
        await engine.start()
        assert engine.delivery == DELIVERY_PTY
        await engine.deliver({"id": "evt_1", "body": "first event\nwith two lines"})
        await engine.deliver({"id": "evt_2", "body": "second"}, resend=True)
        await engine.deliver({"id": "evt_3", "body": "quit"})
        return await engine.wait()

    assert asyncio.run(main()) == 3
    lines = [r["line"] for r in _records(out) if "line" in r]
    assert lines == ["first event ⏎ with two lines", "[re-send] second", "quit"]
    config = Path(_records(out)[0]["mcp_config"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "first event" in spec.session_log.read_text()


def test_stop_ends_the_program(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, command=(sys.executable, "-c", "import time; time.sleep(300)"))
    engine = CommandEngine(spec, NoChannel())

    async def main() -> int:
        await engine.start()
        assert engine.pty is not None
        pid = engine.pty.pid
        await engine.stop(grace=2)
        await wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10)
        return await engine.wait()

    assert asyncio.run(main()) != 0


def test_unknown_engine_is_a_config_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, command=("true",), engine="telepathy")
    with pytest.raises(ConfigError, match="unknown session engine 'telepathy'"):
        make_engine(spec, NoChannel())


# Busy start-up (imports, config), then raw mode with TCSAFLUSH, as `tty.setraw` does: whatever
# was typed before the switch is discarded by the terminal. Then one record per line read.
LATE_RAW = textwrap.dedent(
    """
    import json, os, sys, time, tty
    out = sys.argv[1]
    t = time.monotonic()
    while time.monotonic() - t < 0.5:
        pass
    tty.setraw(0)
    os.write(1, b"ready> ")
    buf = b""
    while True:
        c = os.read(0, 1)
        if c in (b"\\r", b"\\n"):
            with open(out, "a") as f:
                f.write(json.dumps({"line": buf.decode()}) + "\\n")
            buf = b""
        else:
            buf += c
    """
)


def test_an_event_told_right_after_start_survives_the_programs_switch_to_raw_mode(
    tmp_path: Path,
) -> None:
    script = tmp_path / "late_raw.py"
    script.write_text(LATE_RAW)

    async def typed_right_after_spawn(out: Path) -> None:
        # The control: typing as soon as the program is spawned loses the line.
        from relayfleet.runner.pty import PtySession

        pty = await PtySession.spawn([sys.executable, str(script), str(out)])
        seen = bytearray()
        pty.subscribe(seen.extend)
        await pty.paste("typed too early", enter_delay=0.01, single_line=True)
        await wait_until(lambda: b"ready>" in seen)
        await pty.paste("typed later", enter_delay=0.01, single_line=True)
        await wait_until(lambda: _records(out))
        await pty.terminate(2)

    early = tmp_path / "early.jsonl"
    asyncio.run(typed_right_after_spawn(early))
    assert [r["line"] for r in _records(early)] == ["typed later"]

    out = tmp_path / "lines.jsonl"
    spec = make_spec(tmp_path, command=(sys.executable, str(script)), args=(str(out),))
    engine = CommandEngine(spec, NoChannel())

    async def main() -> None:
        await engine.start()
        await engine.deliver({"id": "evt_1", "body": "told right after start"})
        await wait_until(lambda: _records(out))
        assert engine.status()["ready_after_s"] >= 0.3  # it did wait for the program
        await engine.stop(grace=2)

    asyncio.run(main())
    assert [r["line"] for r in _records(out)] == ["told right after start"]
