"""Conditional-request validators (ETag / Last-Modified) that survive a router restart.

GitHub's ETags are token-specific, so every entry remembers the fingerprint of the token that
earned it; entries from another token are ignored (and dropped at the next save). The file holds
URLs and validators only, never the token, and is written atomically with mode 0600.

The poller saves it only after the deliveries of a cycle are recorded: a validator saved before
its items were delivered would turn the next poll into a 304 and lose those items after a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_state_dict, write_atomic

VERSION = 1
# `since` moves now and then, so URLs come and go; keep the most recently used ones.
MAX_ENTRIES = 2000


class HttpCache:
    def __init__(self, path: Path | None, token_fp: str) -> None:
        self.path = path
        self.token_fp = token_fp
        # url -> {"etag", "last_modified", "token_fp"}; dict order is least to most recently put.
        self._entries: dict[str, dict[str, Any]] = {}
        self.dirty = False

    @classmethod
    def load(cls, path: Path, token_fp: str) -> HttpCache:
        """Read `path`; a missing or unreadable file starts empty (it is only an optimisation)."""
        cache = cls(Path(path), token_fp)
        data = read_state_dict(path)
        entries = data.get("entries")
        if data.get("version") != VERSION or not isinstance(entries, dict):
            return cache
        for url, entry in entries.items():
            if isinstance(entry, dict) and entry.get("token_fp") == token_fp:
                cache._entries[url] = entry
        return cache

    @classmethod
    def memory(cls, token_fp: str = "") -> HttpCache:
        """A cache that is never written to disk (tests, one-shot commands)."""
        return cls(None, token_fp)

    def get(self, url: str) -> tuple[str | None, str | None]:
        entry = self._entries.get(url)
        if entry is None or entry.get("token_fp") != self.token_fp:
            return None, None
        return entry.get("etag"), entry.get("last_modified")

    def put(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self._entries.pop(url, None)
        if etag is None and last_modified is None:
            self.dirty = True
            return
        self._entries[url] = {
            "etag": etag,
            "last_modified": last_modified,
            "token_fp": self.token_fp,
        }
        while len(self._entries) > MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self.dirty = True

    def touch(self, url: str) -> None:
        """Mark `url` as recently used (a 304) so trimming keeps it; not worth a save by itself."""
        entry = self._entries.pop(url, None)
        if entry is not None:
            self._entries[url] = entry

    def forget(self, url: str) -> None:
        if self._entries.pop(url, None) is not None:
            self.dirty = True

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write atomically with mode 0600 (a no-op for a memory cache)."""
        if self.path is None:
            return
        entries = {u: e for u, e in self._entries.items() if e.get("token_fp") == self.token_fp}
        # Not sorted: dict order is the recency order that MAX_ENTRIES trims by.
        text = json.dumps({"version": VERSION, "entries": entries}, indent=1)
        write_atomic(self.path, text + "\n", mode=0o600)
        self.dirty = False
