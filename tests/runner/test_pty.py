"""PtySession: typing, bracketed paste, the input hold, log rotation, and no orphans."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

from sessionkit import wait_until

from relayfleet.runner.pty import PtySession, sanitize

# Reads raw keystrokes until CR, after optionally switching bracketed paste on; records them.
RAW_READER = textwrap.dedent(
    """
    import os, sys, termios, tty
    out, bracketed = sys.argv[1], sys.argv[2] == "on"
    tty.setraw(0)
    if bracketed:
        os.write(1, b"\\x1b[?2004h")
    os.write(1, b"ready> ")
    data = b""
    while not data.endswith(b"\\r"):
        data += os.read(0, 1024)
    open(out, "wb").write(data)
    """
)


def _spawn_reader(tmp: Path, bracketed: bool) -> tuple[list[str], Path]:
    script = tmp / "reader.py"
    script.write_text(RAW_READER)
    out = tmp / "typed.bin"
    return [sys.executable, str(script), str(out), "on" if bracketed else "off"], out


def test_paste_uses_bracketed_markers_when_program_enabled_them(tmp_path: Path) -> None:
    async def main() -> bytes:
        argv, out = _spawn_reader(tmp_path, bracketed=True)
        pty = await PtySession.spawn(argv, log_path=tmp_path / "session.log")
        await wait_until(lambda: pty.bracketed_paste)
        await pty.paste("fix it\x1b[201~ now\x07", enter_delay=0.05)
        await wait_until(out.exists)
        assert await pty.wait() == 0
        return out.read_bytes()

    typed = asyncio.run(main())
    # The embedded end-marker lost its ESC, so it cannot end the paste early.
    assert typed == b"\x1b[200~fix it[201~ now\x1b[201~\r"


def test_paste_is_plain_text_when_program_did_not_enable_bracketed_mode(tmp_path: Path) -> None:
    async def main() -> bytes:
        argv, out = _spawn_reader(tmp_path, bracketed=False)
        pty = await PtySession.spawn(argv)
        await asyncio.sleep(0.2)
        assert not pty.bracketed_paste
        await pty.paste("line one\nline two", enter_delay=0.05)
        await wait_until(out.exists)
        await pty.wait()
        return out.read_bytes()

    # Without paste markers a newline would submit: the text is folded onto one line.
    assert asyncio.run(main()) == b"line one line two\r"


def test_held_input_waits_until_released(tmp_path: Path) -> None:
    async def main() -> None:
        argv, out = _spawn_reader(tmp_path, bracketed=False)
        pty = await PtySession.spawn(argv)
        pty.held = True
        typing = asyncio.create_task(pty.paste("queued", enter_delay=0.01))
        await asyncio.sleep(0.3)
        assert not typing.done() and not out.exists()
        pty.held = False
        await typing
        await wait_until(out.exists)
        assert out.read_bytes() == b"queued\r"
        await pty.wait()

    asyncio.run(main())


def test_output_reaches_subscribers_and_wait_returns_exit_status(tmp_path: Path) -> None:
    async def main() -> tuple[int, bytes]:
        seen: list[bytes] = []
        pty = await PtySession.spawn(
            [sys.executable, "-c", "print('hello from the pty'); raise SystemExit(7)"],
            log_path=tmp_path / "session.log",
        )
        pty.subscribe(seen.append)
        return await pty.wait(), b"".join(seen)

    code, seen = asyncio.run(main())
    assert code == 7
    assert b"hello from the pty" in seen
    assert b"hello from the pty" in (tmp_path / "session.log").read_bytes()


def test_session_log_rotation_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "session.log"

    async def main() -> None:
        prog = "import sys\nfor i in range(4000): sys.stdout.write('x' * 99 + '\\n')\n"
        pty = await PtySession.spawn(
            [sys.executable, "-c", prog], log_path=log, log_max_bytes=64 * 1024, log_backups=2
        )
        await pty.wait()

    asyncio.run(main())
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["session.log", "session.log.1", "session.log.2"]
    assert all((tmp_path / f).stat().st_size <= 64 * 1024 for f in files)


def test_terminate_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The program starts a child that ignores SIGTERM and SIGHUP, then waits forever.
    prog = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(300)"])
        open({str(pids)!r}, "w").write(str(child.pid))
        time.sleep(300)
        """
    )

    async def main() -> int:
        pty = await PtySession.spawn([sys.executable, "-c", prog])
        await wait_until(lambda: pids.exists() and pids.read_text())
        await pty.terminate(grace=0.5)
        return int(pids.read_text())

    child = asyncio.run(main())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{child}/stat")
        return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"

    asyncio.run(wait_until(gone, timeout=10))


def test_sanitize_strips_controls_and_can_fold_lines() -> None:
    assert sanitize("a\x1b[31mb\x00c\x9bd") == "a[31mbcd"
    assert sanitize("one\r\ntwo\tthree", single_line=True) == "one two three"
    assert sanitize("one\r\ntwo") == "one\ntwo"
