"""The inbox event (ARCHITECTURE 3.7) and the file transport that appends it exactly once.

`event_id(agent, key)` is deterministic: after a crash the router rebuilds the same event, the
transport sees its id already in the inbox and does nothing. That is what makes the write order
"append, then record in the cursor" safe at every instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import flocked, repair_tail
from relayfleet.router.items import Item


def event_id(agent: str, key: str) -> str:
    return "evt_" + hashlib.sha256(f"{agent}\0{key}".encode()).hexdigest()[:20]


# Controls (C0, DEL, C1) and line/paragraph separators. Item text is written by whoever opened
# the issue: a newline there could forge a second "[FROM operator] ..." line in the agent's
# session, and an escape sequence would reach a terminal in the typed fallback.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with every control character and line break folded into one space."""
    return _UNSAFE.sub(" ", text).strip()


def event_body(item: Item) -> str:
    """One line an agent can act on without looking anything up."""
    change = one_line(item.change) or "updated"  # may quote a label name
    head = f"[FROM github | {item.kind} {item.ref} {change}]"
    title = one_line(item.title) or "(no title)"
    who = ""
    if item.author:
        who = f" — by @{one_line(item.author)}" + (
            f" ({one_line(item.association)})" if item.association else ""
        )
    extra = ""
    if item.kind == "runs":
        bits = [b for b in (item.workflow, item.branch and f"on {item.branch}", item.event) if b]
        extra = f" [{one_line(' '.join(bits))}]" if bits else ""
    elif item.labels:
        extra = " [" + one_line(", ".join(item.labels)) + "]"
    url = f" {one_line(item.url)}" if item.url else ""
    return f"{head} {title}{extra}{who}{url}"


def build_event(agent: str, item: Item, key: str, *, ts: str) -> dict[str, Any]:
    """The 3.7 envelope. `ts` is passed in (this module reads no clock)."""
    return {
        "id": event_id(agent, key),
        "ts": ts,
        "source": "github",
        "body": event_body(item),
        "metadata": {
            "watch": item.watch,
            "repo": item.repo,
            "kind": item.kind,
            "number": item.number,
            "url": item.url,
            "updated_at": item.updated_at,
            "dedup_key": key,
            "change": item.change,
            "title": item.title,
            "author": item.author,
            "association": item.association,
            "labels": list(item.labels),
            "state": item.state,
            # The opening of the body, cleaned like every GitHub text (router/hygiene.py), and
            # what the cleaning removed: an agent and the operator see that something was hidden.
            "excerpt": item.body_excerpt,
            "hygiene": dict(item.hygiene),
            **({"reason": item.reason} if item.reason else {}),
            **(
                {"run_status": item.run_status, "run_conclusion": item.run_conclusion}
                if item.kind == "runs"
                else {}
            ),
        },
    }


@dataclass
class _Scan:
    size: int = 0
    inode: int = 0
    ids: set[str] = field(default_factory=set)


class FileTransport:
    """`InboxTransport` on `state/agents/<name>/inbox.jsonl` (same machine or a shared mount).

    Under the inbox flock it reads whatever was appended since its last look (the whole file
    once per process), so "is this id already there?" is exact, whoever else appends.
    """

    def __init__(self, inbox_path: Any) -> None:
        # `inbox_path(agent) -> Path`; FleetPaths.inbox fits.
        self._path = inbox_path
        self._scans: dict[str, _Scan] = {}

    def _refresh(self, agent: str, path: Path) -> _Scan:
        scan = self._scans.setdefault(agent, _Scan())
        try:
            st = path.stat()
        except FileNotFoundError:
            self._scans[agent] = _Scan()
            return self._scans[agent]
        if st.st_ino != scan.inode or st.st_size < scan.size:
            scan = self._scans[agent] = _Scan(inode=st.st_ino)  # rotated or truncated
        if st.st_size > scan.size:
            with open(path, "rb") as f:
                f.seek(scan.size)
                chunk = f.read(st.st_size - scan.size)
            # Only complete lines count; a torn tail is re-read next time (after repair).
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].split(b"\n"):
                if b'"id"' not in line:
                    continue
                try:
                    got = json.loads(line).get("id")
                except (ValueError, AttributeError):
                    continue
                if isinstance(got, str):
                    scan.ids.add(got)
            scan.size += end
        return scan

    def has(self, agent: str, event_id: str) -> bool:
        path = Path(self._path(agent))
        with flocked(path):
            return event_id in self._refresh(agent, path).ids

    def append(self, agent: str, event: dict[str, Any]) -> None:
        path = Path(self._path(agent))
        line = (json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        with flocked(path) as fd:
            repair_tail(fd, path)
            scan = self._refresh(agent, path)
            if event["id"] in scan.ids:
                return
            os.write(fd, line)
            os.fsync(fd)
            # The size we scanned up to moves past our own line: no need to re-read it.
            if os.fstat(fd).st_size == scan.size + len(line):
                scan.size += len(line)
                scan.ids.add(event["id"])
