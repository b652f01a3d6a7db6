"""The inbox event (ARCHITECTURE 3.7), built so that appending it is idempotent.

`event_id(agent, key)` is deterministic: after a crash the router rebuilds the same event, the
inbox transport (`backends/transports.py`) sees its id already there and does nothing. That is
what makes the write order "append, then record in the cursor" safe at every instant.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

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
