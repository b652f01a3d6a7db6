"""Append an event to an inbox file exactly once (idempotent by event id), under flock.

One implementation for every place that writes an inbox: the local file transport, the shared
mount transport, the runner's HTTP inbox, and the ssh transport (which runs this module on the
remote host). Stdlib only, so it runs with any Python 3 the remote has.

`serve` is the ssh transport's long-lived worker: one per pooled connection, started once with
the host's runner venv, so an append costs one round trip on an open channel instead of a new
exec (which runs the user's login shell and rc files, ~100 ms on a pyenv machine). It speaks
JSON lines on stdin/stdout:

    <- {"ready": true, "pid": 1234, "protocol": 1}                 once, at start
    -> {"op": "append", "path": "<inbox>", "event": {...}}     <- {"ok": true, "appended": false}
    -> {"op": "has", "path": "<inbox>", "id": "evt_1"}          <- {"ok": true, "has": true}
    <- {"ok": false, "error": "..."}                             a bad request; it keeps serving

Every append goes through `append_once` (the same flock as the runner's local writers), so a
client that lost a reply (the worker died) simply re-sends: the retry answers `appended: false`.
It exits at end of input, i.e. when the SSH channel or connection closes.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


def _has_id(raw: bytes, event_id: str) -> bool:
    needle = json.dumps(event_id).encode()
    if needle not in raw:  # fast path: a substring scan, no JSON parsing
        return False
    for line in raw.split(b"\n"):
        if needle in line:
            try:
                if json.loads(line).get("id") == event_id:
                    return True
            except ValueError:
                continue
    return False


def contains(path: Path, event_id: str) -> bool:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return False
    # Only complete (newline-terminated) lines count: a torn tail never landed.
    return _has_id(raw[: raw.rfind(b"\n") + 1], event_id)


def append_once(path: Path, event: dict[str, Any], *, create_parent: bool = True) -> bool:
    """Append `event` unless its id is already there. True when it was appended.

    Holds an exclusive flock for the check and the write, so two writers (the router and a
    `tell`) never both append the same id; one write() + fsync, and a torn tail left by a killed
    writer is cut first.
    """
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("an inbox event needs a string id")
    path = Path(path)
    if create_parent:
        # 0700: the agent's state dir holds session text (created here when the first event
        # arrives before its runner ever ran).
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # The runner compacts by replacing the file under this lock: if it did while we waited,
        # lock the new one (appending to the old would lose the event).
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, size, 0) if size else b""
        end = raw.rfind(b"\n") + 1
        if end != len(raw):
            os.ftruncate(fd, end)  # a writer died mid-line: drop the torn tail
            raw = raw[:end]
        if _has_id(raw, event_id):
            return False
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


PROTOCOL = 1


def _answer(req: dict[str, Any]) -> dict[str, Any]:
    op = req.get("op")
    if op == "append":
        return {"ok": True, "appended": append_once(Path(req["path"]), req["event"])}
    if op == "has":
        return {"ok": True, "has": contains(Path(req["path"]), str(req["id"]))}
    return {"ok": False, "error": f"unknown op {op!r}"}


def _lines(fd: int, idle: float | None) -> Iterator[bytes]:
    """Complete lines read from `fd` until EOF, or until `idle` seconds pass with no input."""
    buf = b""
    while True:
        if idle is not None and not select.select([fd], [], [], idle)[0]:
            return
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buf += chunk
        *done, buf = buf.split(b"\n")
        yield from done


def serve(inp: BinaryIO, out: BinaryIO, idle: float | None = None) -> int:
    """Answer requests, one JSON line each, until end of input or `idle` seconds without one."""

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj).encode() + b"\n")
        out.flush()

    send({"ready": True, "pid": os.getpid(), "protocol": PROTOCOL})
    for line in _lines(inp.fileno(), idle):
        if not line.strip():
            continue
        try:
            resp = _answer(json.loads(line))
        except Exception as exc:  # a bad request must not end the worker
            resp = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        send(resp)
    return 0


def main(argv: list[str]) -> int:
    """`append <path>` (event JSON on stdin) prints appended|present; `has <path> <id>` 0/1;
    `serve` runs the line-protocol worker."""
    if argv[:1] == ["serve"]:
        idle = float(argv[2]) if argv[1:2] == ["--idle"] and len(argv) == 3 else None
        return serve(sys.stdin.buffer, sys.stdout.buffer, idle)
    if len(argv) >= 2 and argv[0] == "append":
        event = json.loads(sys.stdin.read())
        print("appended" if append_once(Path(argv[1]), event) else "present")
        return 0
    if len(argv) == 3 and argv[0] == "has":
        return 0 if contains(Path(argv[1]), argv[2]) else 1
    print(
        "usage: inboxfile append <path> < event.json | inboxfile has <path> <id> | "
        "inboxfile serve [--idle SEC]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
