"""A JSONL log that rotates by size: `x.jsonl`, then `x.jsonl.1` (newest) .. `x.jsonl.<keep>`.

Many processes append to the same log (`append_json_rotating`): each takes the live file's flock
(`core.atomic.flocked`), appends one whole line, and the one whose line takes the file to
`max_bytes` or past renames the older generations one step back (the oldest is dropped) and the
live file to `.1` before it lets go of the lock. A writer that was waiting on the lock finds the
path naming another inode once it holds it, and retries on the new live file (`flocked` does
that), so no line is lost or lands in a rotated file after its rotation.

A reader (`read_jsonl_rotating`) opens every generation while holding a shared lock on the live
file, so no rotation can happen between two opens: it reads one consistent history, oldest first.

A crash between two renames leaves a gap in the numbering (`.1` missing, say); the next rotation
closes it, and readers take whatever numbered generations exist, in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import flocked, fsync_dir, parse_jsonl, repair_tail


def generation(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotated(path: Path) -> list[tuple[int, Path]]:
    """The rotated generations that exist, as (n, path), oldest (highest n) first."""
    found = []
    for p in path.parent.glob(f"{path.name}.*"):
        suffix = p.name[len(path.name) + 1 :]
        if suffix.isdigit():
            found.append((int(suffix), p))
    return sorted(found, reverse=True)


def _rotate(path: Path, keep: int) -> None:
    """Shift the generations one older and make the live file `.1`. The caller holds its flock."""
    for n, p in rotated(path):
        if n >= keep:  # the oldest (and any left from a larger `keep`) is dropped
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    for n in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(generation(path, n), generation(path, n + 1))
    os.replace(path, generation(path, 1))
    fsync_dir(path.parent)


def append_json_rotating(path: Path, obj: Any, *, max_bytes: int, keep: int) -> bool:
    """Append `obj` as one line (flock, one write, fsync); rotate once the file reaches
    `max_bytes`, keeping `keep` (>= 1) rotated generations. True if it rotated."""
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    with flocked(path) as fd:
        repair_tail(fd, path)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
        if os.fstat(fd).st_size < max_bytes:
            return False
        _rotate(path, max(1, keep))
        return True


def _open_generations(path: Path) -> list[int]:
    """Read-only fds of every generation, oldest first, opened while no rotation can run."""
    while True:
        try:
            live = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # never written, or rotated and not appended to since
            return _open_rotated(path)
        try:
            fcntl.flock(live, fcntl.LOCK_SH)  # a rotation runs under the writers' LOCK_EX
            if os.stat(path).st_ino == os.fstat(live).st_ino:
                fds = [*_open_rotated(path), live]
                fcntl.flock(live, fcntl.LOCK_UN)  # the files are open: read them unlocked
                return fds
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(live)
            raise
        os.close(live)  # rotated while we waited for the lock: take the new live file


def _open_rotated(path: Path) -> list[int]:
    fds = []
    for _, p in rotated(path):
        with contextlib.suppress(FileNotFoundError):
            fds.append(os.open(p, os.O_RDONLY))
    return fds


def read_jsonl_rotating(path: Path) -> list[dict[str, Any]]:
    """Every complete line of every generation, oldest first (a torn last line is ignored)."""
    fds = _open_generations(Path(path))
    try:
        return [item for fd in fds for item in parse_jsonl(_read_all(fd))]
    finally:
        for fd in fds:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
