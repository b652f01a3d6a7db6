"""The bundled `inbox` plugin: the agent's side of the universal delivery channel.

Every event (GitHub via the router, `gh fleet tell`, hand-offs from other agents, plugin emits)
lands in `state/agents/<name>/inbox.jsonl` and the runner pushes it into the session. This plugin
gives the agent the two things it needs around that stream:

- `inbox_history(limit, source)`: look back over what arrived (after a compaction, or to find the
  thread an event belongs to), newest last.
- `reply_operator(message)`: answer a `[FROM operator]` message; the reply is appended to this
  plugin's `outbox.jsonl`, which `gh fleet logs <agent> --replies` prints.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import append_json
from relayfleet.runner.plugin_api import make_event


def _tail_events(path: Path, limit: int, source: str) -> list[dict[str, Any]]:
    out: deque[dict[str, Any]] = deque(maxlen=limit)
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a line still being written
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict) and (not source or ev.get("source") == source):
                    out.append(ev)
    except FileNotFoundError:
        pass
    return list(out)


async def setup(api: Any) -> None:
    own = api.config.get("plugin", {})
    max_limit = int(own.get("history_limit", 50))
    body_chars = int(own.get("body_chars", 2000))
    outbox = Path(api.state_dir) / "outbox.jsonl"

    @api.tool(
        name="inbox_history",
        description="The most recent events of your inbox (oldest first). "
        "Optional `source` filters: github, operator, an agent name, or a plugin name.",
    )
    async def inbox_history(limit: int = 10, source: str = "") -> list[dict[str, Any]]:
        limit = max(1, min(int(limit), max_limit))
        events = await asyncio.to_thread(_tail_events, Path(api.inbox), limit, source)
        return [
            {
                "id": e.get("id"),
                "ts": e.get("ts"),
                "source": e.get("source"),
                "body": str(e.get("body", ""))[:body_chars],
            }
            for e in events
        ]

    @api.tool(
        name="reply_operator",
        description="Answer the human operator (for [FROM operator] messages). "
        "The operator reads replies with `gh fleet logs <agent> --replies`.",
    )
    async def reply_operator(message: str) -> str:
        event = make_event(str(message), source=api.agent, metadata={"to": "operator"})
        await asyncio.to_thread(append_json, outbox, event)
        api.log.info("reply to operator %s", event["id"])
        return f"sent ({event['id']})"
