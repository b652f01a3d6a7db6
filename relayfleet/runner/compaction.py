"""Bounded inboxes: cut the long-acked prefix of `inbox.jsonl` off into `inbox.jsonl.1`.

The runner calls `Compactor.maybe_compact` when its tail has read everything (nothing buffered,
no delivery in flight: the supervisor holds its delivery lock). Only a prefix in which every
event was delivered and is no longer pending (acked or given up) is cut, and the newest
`keep_bytes` always stay, so the router's crash window (append, then record in its cursor) never
reaches an archived line.

Why the router's idempotence still holds: `has()`/`append_once` only look at the live file, so
an id moved into an archive reads as absent. The router asks for an id only when its cursor does
not record the dedup key, i.e. in the window between a crashed append and the cursor save (one
poll cycle). An archived event was appended long before that: it was delivered, acked, and then
`keep_bytes` more bytes were appended after it. `tell`, `handoff` and `api.emit` mint fresh ids.

Every writer takes an exclusive flock on the inbox and, once it holds it, checks that the path
still names the inode it locked (`core.atomic.flocked`, `core.inboxfile.append_once`); a writer
that was waiting on the old file retries on the new one, so replacing the file loses no append.

Crash safety (`kill -9` at any instant), with the ledger as the journal:

    1. archive tmp  <- bytes [0, cut)            (fsync; outside the flock: they never change)
       -- flock the inbox --
    2. compact tmp  <- bytes [cut, size)         (fsync)
    3. ledger.compaction = {from_ino, to_ino, cut}, saved      <- the commit point is step 4
    4. os.replace(compact tmp, inbox.jsonl)       (fsync dir)
    5. inbox.jsonl.N.. shifted, archive tmp -> inbox.jsonl.1
    6. ledger offsets -= cut, compaction = None, saved; the tail's offset rebased
       -- unlock --

`recover` (at runner start) finishes or undoes a half-done compaction by looking at which inode
`inbox.jsonl` is now: `to_ino` means step 4 happened, so steps 5-6 are redone (each is
idempotent); anything else means it did not, and the temporary files are dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import fsync_dir

DEFAULT_MAX_BYTES = 4 << 20  # compact once the live inbox passes this
DEFAULT_KEEP_BYTES = 256 << 10  # the newest bytes always stay live (router crash window, context)
DEFAULT_ARCHIVES = 3  # inbox.jsonl.1 (newest) .. inbox.jsonl.3; older ones are deleted
# Test-only fault injection: the runner SIGKILLs itself when it reaches this step.
CRASH_ENV = "RELAYFLEET_COMPACT_CRASH_AT"
STEPS = ("archive-tmp", "compact-tmp", "intent", "replaced", "archived", "rebased")


@dataclass(frozen=True)
class CompactionConfig:
    max_bytes: int = DEFAULT_MAX_BYTES
    keep_bytes: int = DEFAULT_KEEP_BYTES
    archives: int = DEFAULT_ARCHIVES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CompactionConfig:
        """`RELAYFLEET_INBOX_MAX_BYTES`, `_KEEP_BYTES`, `_ARCHIVES` (the runner's environment)."""

        def num(name: str, default: int) -> int:
            try:
                return max(0, int(env.get(f"RELAYFLEET_INBOX_{name}", default)))
            except ValueError:
                return default

        return cls(
            max_bytes=num("MAX_BYTES", DEFAULT_MAX_BYTES),
            keep_bytes=num("KEEP_BYTES", DEFAULT_KEEP_BYTES),
            archives=max(1, num("ARCHIVES", DEFAULT_ARCHIVES)),
        )


def archive_path(inbox: Path, n: int) -> Path:
    return inbox.with_name(f"{inbox.name}.{n}")


def archives(inbox: Path) -> list[Path]:
    """The archives that exist, newest first."""
    found = []
    for p in inbox.parent.glob(f"{inbox.name}.*"):
        suffix = p.name[len(inbox.name) + 1 :]
        if suffix.isdigit():
            found.append((int(suffix), p))
    return [p for _, p in sorted(found)]


def _tmp(inbox: Path, what: str) -> Path:
    return inbox.with_name(f".{inbox.name}.{what}.tmp")


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def locked_inbox(inbox: Path) -> Iterator[int]:
    """The inbox open read-write under its exclusive flock (the lock every writer takes)."""
    while True:
        fd = os.open(inbox, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(inbox).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # replaced while we waited: lock the file the path names now
    try:
        yield fd
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> int:
    """`data` into a fresh file, fsync'd; returns its inode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def _make_room(inbox: Path, n: int, keep: int) -> None:
    """Free `inbox.jsonl.<n>` by shifting it (and what follows it) one older.

    Stops at the first gap, so redoing it after a crash midway shifts nothing twice."""
    p = archive_path(inbox, n)
    if not p.exists():
        return
    if n >= keep:
        p.unlink()
        return
    _make_room(inbox, n + 1, keep)
    os.replace(p, archive_path(inbox, n + 1))


def _install_archive(inbox: Path, keep: int) -> None:
    tmp = _tmp(inbox, "archive")
    if not tmp.exists():
        return  # already installed before a crash
    _make_room(inbox, 1, keep)
    os.replace(tmp, archive_path(inbox, 1))
    fsync_dir(inbox.parent)


def safe_cut_limit(ledger: Any) -> int:
    """The furthest byte the ledger allows cutting at: nothing pending or in flight before it."""
    limit = int(ledger.offset)
    for p in ledger.pending.values():
        limit = min(limit, int(p.start))
    if ledger.delivering:
        limit = min(limit, int(ledger.delivering.get("start", 0)))
    return max(0, limit)


def recover(ledger: Any, inbox: Path, log: logging.Logger | None = None) -> str | None:
    """Finish (or undo) a compaction a killed runner left half-done; what was done, if anything.

    Call before anything reads the ledger's offsets."""
    c = ledger.compaction
    if not c:
        for what in ("compact", "archive"):  # died before the intent was recorded
            with contextlib.suppress(FileNotFoundError):
                _tmp(inbox, what).unlink()
        return None
    try:
        ino: int | None = os.stat(inbox).st_ino
    except FileNotFoundError:
        ino = None
    if ino == c["to_ino"]:
        _install_archive(inbox, int(c.get("archives", DEFAULT_ARCHIVES)))
        ledger.rebase(int(c["cut"]))
        outcome = "finished"
    else:
        for what in ("compact", "archive"):
            with contextlib.suppress(FileNotFoundError):
                _tmp(inbox, what).unlink()
        outcome = "undone"
    ledger.compaction = None
    ledger.save()
    if log is not None:
        log.info("inbox compaction interrupted by the last runner's exit: %s", outcome)
    return outcome


class Compactor:
    """Keeps one agent's live inbox under `config.max_bytes` (see the module docstring)."""

    def __init__(
        self,
        inbox: Path,
        ledger: Any,
        config: CompactionConfig | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.inbox = Path(inbox)
        self.ledger = ledger
        self.config = config or CompactionConfig()
        self.log = log or logging.getLogger("relayfleet.runner")
        self.compactions = 0
        self.bytes_archived = 0

    def due(self) -> bool:
        try:
            size = os.stat(self.inbox).st_size
        except FileNotFoundError:
            return False
        return size > self.config.max_bytes and self._cut_estimate(size) > 0

    def _cut_estimate(self, size: int) -> int:
        limit = min(safe_cut_limit(self.ledger), size - self.config.keep_bytes)
        # A cut smaller than keep_bytes is not worth a rewrite (an agent that never acks would
        # otherwise trigger one per event).
        return limit if limit >= max(1, self.config.keep_bytes) else 0

    def prepare(self) -> tuple[int, int] | None:
        """Step 1 (blocking I/O, may run in a thread): the archive tmp. Returns (cut, inode)."""
        try:
            st = os.stat(self.inbox)
        except FileNotFoundError:
            return None
        limit = self._cut_estimate(st.st_size)
        if limit <= 0:
            return None
        with open(self.inbox, "rb") as f:
            if os.fstat(f.fileno()).st_ino != st.st_ino:
                return None
            prefix = f.read(limit)
        cut = prefix.rfind(b"\n") + 1  # whole lines only
        if cut <= 0:
            return None
        _write_file(_tmp(self.inbox, "archive"), prefix[:cut])
        _crash_point("archive-tmp")
        return cut, st.st_ino

    def commit(self, cut: int, ino: int, tail: Any = None) -> int:
        """Steps 2-6 (synchronous: the ledger and the tail are rebased with nothing in between).

        The cut must still be safe: the caller held its delivery lock since `prepare`, and acks
        only shrink what is pending. Returns the bytes archived (0: nothing done)."""
        inbox, archive_tmp, compact_tmp = self.inbox, _tmp(self.inbox, "archive"), None
        try:
            with locked_inbox(inbox) as fd:
                st = os.fstat(fd)
                if st.st_ino != ino or st.st_size < cut or cut > safe_cut_limit(self.ledger):
                    return 0
                # All of it, a torn tail included: the next writer repairs that, as ever.
                rest = os.pread(fd, st.st_size - cut, cut)
                compact_tmp = _tmp(inbox, "compact")
                to_ino = _write_file(compact_tmp, rest)
                _crash_point("compact-tmp")
                self.ledger.compaction = {
                    "from_ino": ino,
                    "to_ino": to_ino,
                    "cut": cut,
                    "archives": self.config.archives,
                }
                self.ledger.save()
                _crash_point("intent")
                os.replace(compact_tmp, inbox)
                compact_tmp = None
                # Committed: from here on the rebase must happen, whatever else fails.
                try:
                    fsync_dir(inbox.parent)
                    _crash_point("replaced")
                    _install_archive(inbox, self.config.archives)
                    _crash_point("archived")
                except OSError as exc:  # the archive is history; the live inbox is what counts
                    self.log.warning("inbox archive not written: %s", exc)
                self.ledger.rebase(cut)
                self.ledger.compaction = None
                self.ledger.save()
                _crash_point("rebased")
                if tail is not None:
                    tail.rebase(cut, to_ino)
        finally:
            for tmp in (compact_tmp, archive_tmp):
                if tmp is not None:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
        self.compactions += 1
        self.bytes_archived += cut
        self.log.info(
            "inbox compacted: %d bytes archived to %s, %d bytes live",
            cut,
            archive_path(inbox, 1).name,
            st.st_size - cut,
        )
        return cut

    def compact_now(self, tail: Any = None) -> int:
        """Both phases in one go (tests, and callers with nothing else to do)."""
        prepared = self.prepare()
        return self.commit(*prepared, tail=tail) if prepared else 0
