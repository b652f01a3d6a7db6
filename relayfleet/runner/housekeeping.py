"""Keeping an agent's state bounded when it runs for weeks.

`session.log` rotates (pty.RotatingLog), `runner.log` rotates (logging's RotatingFileHandler),
the ledger prunes itself (ledger.py), the debug file is cut back (engine_claude.DebugLog) and
`runner.out` at each start (backends/local.py). What is left are the append-only JSONL files that
plugins keep in their state dirs (the inbox plugin's `outbox.jsonl`): `trim_jsonl` keeps their
newest whole lines.
"""

from __future__ import annotations

import os
from pathlib import Path

from relayfleet.core.atomic import flocked

JSONL_MAX_BYTES = 1 << 20
JSONL_KEEP_BYTES = 256 * 1024


def trim_jsonl(
    path: Path, *, max_bytes: int = JSONL_MAX_BYTES, keep: int = JSONL_KEEP_BYTES
) -> bool:
    """Cut `path` back to its newest whole lines (at most `keep` bytes) once it passes `max_bytes`.

    In place, under the same flock that `append_line` takes: an appender holding the file open
    (O_APPEND) keeps writing to the same file, after the kept tail; nothing is torn.
    """
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except OSError:
        return False
    with flocked(path) as fd:
        size = os.fstat(fd).st_size
        if size <= max_bytes:
            return False
        with open(path, "rb") as src:  # the locked fd is write-only (O_APPEND)
            src.seek(size - keep)
            tail = src.read(keep)
        tail = tail[tail.find(b"\n") + 1 :]  # whole lines only
        os.ftruncate(fd, 0)
        os.write(fd, tail)  # O_APPEND: at the (new) end, which is 0
        os.fsync(fd)
    return True


def trim_plugin_state(state_dir: Path) -> list[Path]:
    """Every plugin's JSONL files under `state_dir/plugins/`; returns the ones cut back."""
    return [p for p in sorted((state_dir / "plugins").glob("*/*.jsonl")) if trim_jsonl(p)]
