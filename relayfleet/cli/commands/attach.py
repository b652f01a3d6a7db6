"""`gh fleet attach <agent>`: your terminal on the agent's live session, like `tmux attach`.

The runner serves its PTY on a 0600 unix socket in the agent's state dir. Detach with Ctrl-]
(the runner and the session keep going). While you are attached the runner holds typed
deliveries, so it never types into your half-written prompt; they go in when you detach.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from relayfleet.cli.context import Context

DETACH_KEY = b"\x1d"  # Ctrl-]
DETACH_NAME = "Ctrl-]"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attach", help=f"attach to an agent's live session (detach: {DETACH_NAME})")
    p.add_argument("agent", help="the agent's name (see `gh fleet list`)")
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.sessionio import attach_path
    from relayfleet.core.errors import BackendError

    paths = ctx.paths
    fleet = ctx.load()
    agent = fleet.agent(args.agent)
    # The same for every backend: the runner's socket here (local, docker's bind mount) or
    # on the ssh host through a forward over the pooled connection.
    with attach_path(paths, fleet, agent) as sock_path:
        try:
            sock = connect(sock_path)
        except OSError as exc:
            raise BackendError(
                f"{agent.name} has no live session to attach to ({exc.strerror or exc})",
                hints=[f"gh fleet start {agent.name}"],
            ) from exc
        return _attached(ctx, agent.name, sock)


def _attached(ctx: Context, name: str, sock: socket.socket) -> int:
    print(
        f"[attached to {name}; detach with {DETACH_NAME}; deliveries wait while attached]",
        file=ctx.err,
        flush=True,
    )
    stdin_fd = sys.stdin.fileno()
    stdout_fd = sys.stdout.fileno()
    with raw_terminal(stdin_fd):
        reason = pump(sock, stdin_fd, stdout_fd)
    print(f"\r\n[detached from {name}: {reason}]", file=ctx.err)
    return 0


def connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        raise
    return s


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Keystrokes go through unchanged (Ctrl-C reaches the session, not us) until we return."""
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _winsize(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def pump(sock: socket.socket, in_fd: int, out_fd: int, detach: bytes = DETACH_KEY) -> str:
    """Copy session -> out and in -> session until the detach key, EOF, or the runner goes away.

    The terminal's size goes along, at once and on every SIGWINCH: the session is drawn for this
    terminal while attached (the runner restores its own size when the last viewer leaves)."""
    import signal

    from relayfleet.runner.attach_server import data_frames, winsize_frame

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old = None
    if os.isatty(in_fd):
        old = signal.signal(signal.SIGWINCH, lambda *_: _poke(wake_w))
        size = _winsize(in_fd)
        if size:
            sock.sendall(winsize_frame(*size))
    watched: list[socket.socket | int] = [sock, in_fd, wake_r]
    try:
        while True:
            ready, _, _ = select.select(watched, [], [])
            if wake_r in ready:
                os.read(wake_r, 64)
                size = _winsize(in_fd)
                if size:
                    sock.sendall(winsize_frame(*size))
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return "the runner closed the session"
                _write_all(out_fd, data)
            if in_fd in ready:
                data = os.read(in_fd, 4096)
                if not data:
                    return "end of input"
                if detach in data:
                    before = data.split(detach, 1)[0]
                    if before:
                        sock.sendall(data_frames(before))
                    return "detached"
                sock.sendall(data_frames(data))
    finally:
        if old is not None:
            signal.signal(signal.SIGWINCH, old)
        os.close(wake_r)
        os.close(wake_w)
        sock.close()


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"w")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
