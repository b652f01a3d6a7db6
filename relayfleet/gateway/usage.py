"""Token usage read from Messages API responses as they stream past (pure, incremental).

JSON responses carry `usage` at the top level. Streams carry it in `message_start`
(`message.usage`: input tokens, cache tokens, an initial output count) and `message_delta`
(`usage`: the cumulative output count, sometimes input counts too). Only those two event kinds are
parsed; the bulk of a stream (`content_block_delta`) is skipped without decoding it.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_SEP = re.compile(rb"\r?\n\r?\n")
_MAX_JSON = 16 * 1024 * 1024  # a bigger JSON body is not a Messages response worth metering
_MAX_EVENT = 1024 * 1024


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def merge(self, usage: Any) -> None:
        """Take each count the `usage` object states (counts in a stream are cumulative)."""
        if not isinstance(usage, dict):
            return
        for key in USAGE_KEYS:
            value = usage.get(key)
            if isinstance(value, int) and value >= getattr(self, key):
                setattr(self, key, value)


class UsageMeter:
    """Feed it the response body chunk by chunk; read `.usage` at any time."""

    def __init__(self, content_type: str = "", content_encoding: str = "") -> None:
        self.usage = Usage()
        ctype = content_type.split(";")[0].strip().lower()
        self._sse = ctype == "text/event-stream"
        self._json = ctype == "application/json"
        enc = content_encoding.strip().lower()
        self._inflate = zlib.decompressobj(47) if enc in ("gzip", "x-gzip", "deflate") else None
        if enc not in ("", "identity", "gzip", "x-gzip", "deflate"):
            self._sse = self._json = False  # br, zstd: passed through, not metered
        self._buf = bytearray()
        self._scan = 0

    def feed(self, chunk: bytes) -> None:
        if not (self._sse or self._json):
            return
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk)
            except zlib.error:
                self._sse = self._json = False
                return
        self._buf += chunk
        if self._json:
            if len(self._buf) > _MAX_JSON:
                self._json = False
                self._buf.clear()
            return
        self._events()

    def _events(self) -> None:
        start = 0
        # Resume a little before the old end: a separator may straddle two chunks.
        pos = max(0, self._scan - 3)
        while True:
            m = _SEP.search(self._buf, pos)
            if m is None:
                break
            self._event(bytes(self._buf[start : m.start()]))
            start = pos = m.end()
        if start:
            del self._buf[:start]
        if len(self._buf) > _MAX_EVENT:
            self._buf.clear()  # a runaway event without a separator: drop it, keep streaming
        self._scan = len(self._buf)

    def _event(self, block: bytes) -> None:
        if b"message_start" not in block and b"message_delta" not in block:
            return
        data = b"\n".join(
            line[5:].lstrip() for line in block.splitlines() if line.startswith(b"data:")
        )
        try:
            obj = json.loads(data)
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        if obj.get("type") == "message_start" and isinstance(obj.get("message"), dict):
            self.usage.merge(obj["message"].get("usage"))
        elif obj.get("type") == "message_delta":
            self.usage.merge(obj.get("usage"))

    def finish(self) -> Usage:
        if self._json and self._buf:
            try:
                obj = json.loads(bytes(self._buf))
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                self.usage.merge(obj.get("usage"))
            self._buf.clear()
        elif self._sse and self._buf.strip():
            self._event(bytes(self._buf))  # a last event without its trailing blank line
            self._buf.clear()
        return self.usage
