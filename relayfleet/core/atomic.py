"""Crash-safe file writes: a reader never sees a torn file or line, `kill -9` loses nothing."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from relayfleet.core.privdir import current_umask


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Replace `path` with `data` all at once (tmp file + fsync + rename + dir fsync).

    `mode` is applied exactly; without one the file is 0644 less the process umask, as
    open() would make it (a runner, umask 077, keeps its state private that way)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), mode if mode is not None else 0o644 & ~current_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, obj: Any, *, mode: int | None = None) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n", mode=mode)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def read_state_dict(path: Path) -> dict[str, Any]:
    """A JSON object the fleet keeps as state for display (status.json, runner.json): missing,
    torn or hand-mangled reads as {} so `status` still answers (its writer rewrites it whole)."""
    try:
        data = read_json(path, {})
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def _open_locked(path: Path, flags: int) -> int:
    while True:
        fd = os.open(path, flags, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # replaced (or removed) while we waited: lock what the path names now


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[int]:
    """Hold an exclusive flock on `path` (opened for append) and yield its fd.

    Once locked, the path must still name the file we locked: the runner compacts an inbox by
    replacing it under this lock (runner/compaction.py), and a writer that waited on the old
    file would otherwise append to a file nobody reads any more."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_locked(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        yield fd
    finally:
        os.close(fd)


def repair_tail(fd: int, path: Path) -> None:
    """Cut a torn last line (a writer killed mid-write) so the next append starts clean."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        # Find the last complete line and truncate after it.
        chunk = 65536
        pos = size
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            i = buf.rfind(b"\n")
            if i >= 0:
                os.truncate(path, start + i + 1)
                return
            pos = start
        os.truncate(path, 0)


def append_line(path: Path, line: str) -> None:
    """Append one line under flock, with one write() and an fsync.

    A torn tail from an earlier crash is cut first, so every complete line stays parseable.
    """
    if "\n" in line:
        raise ValueError("a JSONL line must not contain a newline")
    with flocked(path) as fd:
        repair_tail(fd, path)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)


def append_json(path: Path, obj: Any) -> None:
    append_line(path, json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete, parseable line; a torn last line is ignored."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return parse_jsonl(raw)


def parse_jsonl(raw: bytes) -> list[dict[str, Any]]:
    """The JSON objects of `raw`'s complete lines (see `read_jsonl`)."""
    out: list[dict[str, Any]] = []
    lines = raw.split(b"\n")
    # Only newline-terminated lines were fully written; the last segment is torn or empty.
    for line in lines[:-1]:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):  # a hand-edited `[1]` or `"x"` line is not an event
            out.append(item)
    return out
