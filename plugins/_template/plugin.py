"""A starting point for a relayfleet plugin (see docs/plugins.md for the whole contract).

1. Copy this folder to `.fleet/plugins/<your-name>/` and set `"name"` in `plugin.json`.
2. Enable it per agent: `plugins = ["inbox", "<your-name>"]` in `agent.toml`; settings for it go in
   `[plugin.<your-name>]` there (they override `"config"` defaults in `plugin.json`).
3. `gh fleet restart <agent>`; `gh fleet status` shows a plugin that failed to load.

`setup(api)` runs once when the agent's runner starts. Keep it quick: start long-running work
with `api.spawn(...)`.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def setup(api: Any) -> None:
    settings = api.config.get("plugin", {})
    greeting = str(settings.get("greeting", "hello"))

    # A tool: the session sees it as an MCP tool of the runner's channel server.
    @api.tool(name="template_echo", description="Echo a text back (template plugin).")
    async def template_echo(text: str) -> str:
        return f"{greeting}: {text}"

    # A background task: e.g. watch something and emit an inbox event when it changes.
    # A crash here is reported in `gh fleet status`; it never takes the runner down.
    interval = float(settings.get("interval_sec", 0))
    if interval > 0:

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                await api.emit(f"[FROM {api.name}] tick", metadata={"kind": "tick"})

        api.spawn(tick())
