"""`gh fleet logs <agent> [-f] [-n N] [--raw] [--runner] [--replies]`: what the session printed."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.backends.sessionio import StateFiles


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "logs", help="print the tail of an agent's session, as its terminal showed it"
    )
    p.add_argument("agent", help="the agent's name (see `gh fleet list`)")
    p.add_argument("-n", "--lines", type=_count, default=50, help="how many lines (default 50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument(
        "--raw", action="store_true", help="the bytes as logged, escape sequences included"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--runner", action="store_true", help="the runner's own log instead")
    which.add_argument("--replies", action="store_true", help="the agent's replies to the operator")
    p.set_defaults(func=run)


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid line count {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {n})")
    return n


def _say_empty(ctx: Context, files: StateFiles, name: str, what: str, agent: str) -> None:
    """An empty tail must not look like a hang or a bug: say why there is nothing (on stderr)."""
    size = files.size(name)
    where = f"{files.where}/{name}"
    if size is None:
        print(
            f"no {what} for {agent} yet ({where} does not exist); start it: gh fleet start {agent}",
            file=ctx.err,
        )
    elif size == 0:
        print(f"{what} for {agent} is empty ({where})", file=ctx.err)


def run(ctx: Context, args: argparse.Namespace) -> int:
    """The same for every backend: the agent's state dir is read where it is (a local or
    bind-mounted dir, or the ssh host over SFTP); see backends/sessionio.py."""
    from relayfleet.backends import sessionio
    from relayfleet.backends.registry import backend_for

    paths = ctx.paths
    fleet = ctx.load(fallback=True)
    agent = fleet.agent(args.agent)
    files = sessionio.state_files(paths, fleet, agent)
    if args.replies:
        return _replies(ctx, files.read("plugins/inbox/outbox.jsonl") or b"", args)
    name, what = ("runner.log", "runner log") if args.runner else ("session.log", "session log")
    raw = args.raw or args.runner
    text = sessionio.tail(files, name, args.lines, raw=raw)
    if not text and agent.runtime.backend == "docker" and not args.runner:
        # Before the session log exists, the container's own output says why.
        text = backend_for(agent, fleet).logs(paths, fleet, agent, args.lines)
    if not text:
        _say_empty(ctx, files, name, what, agent.name)
    ctx.out.write(text)
    ctx.out.flush()
    if args.follow:
        if isinstance(files, sessionio.LocalFiles):
            follow(files.dir / name, ctx.out, raw=raw)
        else:
            sessionio.follow(files, name, ctx.out, raw=raw)
    return 0


def _replies(ctx: Context, raw: bytes, args: argparse.Namespace) -> int:
    from relayfleet.backends.transports import parse_jsonl

    events = parse_jsonl(raw)
    if not events:
        print(f"no replies from {args.agent} yet", file=ctx.err)
    for ev in events[-args.lines :]:
        print(f"{ev.get('ts', '')}  {ev.get('body', '')}", file=ctx.out)
    return 0


EMIT_EVERY = 0.25  # `logs -f`: how often changed screen lines are printed, at most


def follow(
    path: Path,
    out: TextIO,
    *,
    raw: bool,
    stop_after: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Print what is appended to `path` until ^C, across rotation and truncation.

    Not raw: the output goes through a terminal emulator (primed with the log's tail, which
    `tail_lines` already printed) and each new or changed screen line is printed once the
    output pauses, at most every `EMIT_EVERY` seconds. A CLI that waits on a human can afford a
    0.1 s poll; the runner's inbox tail cannot (inotify).
    """
    from relayfleet.backends.logtail import RenderedLog, read_tail_bytes

    deadline = None if stop_after is None else time.monotonic() + stop_after
    f = None
    ino = 0
    at_end = True  # the first open skips what `tail_lines` already printed
    pending = b""
    screen = None if raw else RenderedLog()
    if screen is not None:
        screen.feed(read_tail_bytes(path, 64 * 1024))
        screen.mark_shown()
    fed, emitted = False, 0.0
    try:
        while (deadline is None or time.monotonic() < deadline) and not (stop and stop()):
            if f is None:
                try:
                    f = open(path, "rb")  # noqa: SIM115 - held across iterations
                except FileNotFoundError:
                    at_end = False  # when it appears, all of it is new
                    time.sleep(0.1)
                    continue
                ino = os.fstat(f.fileno()).st_ino
                if at_end:
                    f.seek(0, os.SEEK_END)
                at_end = False
            chunk = f.read()
            if chunk and screen is not None:
                screen.feed(chunk)
                fed = True
            elif chunk:
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                # Whole lines only, so an escape sequence is never split between two writes.
                done, pending = data[:cut], data[cut:]
                if done:
                    out.write(done.decode("utf-8", "replace"))
                    out.flush()
            since = time.monotonic() - emitted
            # Print once the output pauses; during a long burst, every 4 * EMIT_EVERY anyway.
            if (
                screen is not None
                and fed
                and ((not chunk and since >= EMIT_EVERY) or since >= 4 * EMIT_EVERY)
            ):
                for line in screen.new_lines():
                    out.write(line + "\n")
                out.flush()
                fed, emitted = False, time.monotonic()
            if chunk:
                continue
            try:
                st = os.stat(path)
                rotated = st.st_ino != ino or st.st_size < f.tell()
            except FileNotFoundError:
                rotated = True
            if rotated:  # session.log -> session.log.1: reopen the new file from its start
                f.close()
                f = None
                continue
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        if f is not None:
            f.close()


if __name__ == "__main__":  # pragma: no cover - manual use
    follow(Path(sys.argv[1]), sys.stdout, raw=False)
