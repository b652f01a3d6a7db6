"""A fleet whose agent `coder` is the real Claude Code, offline: a fake Messages API on loopback
plays the model (research/real-claude-offline.md). For the CLI tests that run it under a real
runner."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleetkit import FleetDir, make_fleet, run_cli

from relayfleet.fakes.messages_api import FakeMessagesAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realclaude import claude_or_skip


@contextmanager
def claude_fleet(
    tmp_path: Path, reply: str, extra: str = ""
) -> Iterator[tuple[FleetDir, FakeMessagesAPI]]:
    """A fleet in `tmp_path/fleet` with `coder` on the real client, pointed at a fake API that
    answers every turn with `reply`; `extra` is more agent.toml. After the block `coder` is
    stopped and the API shut down (what it was sent stays readable). Skips without the client."""
    claude = claude_or_skip()
    api = FakeMessagesAPI(default_text=reply)
    url = api.start()
    try:
        fleet = make_fleet(tmp_path / "fleet")
        endpoint = f'[claude.endpoint]\nmode = "custom"\nurl = {json.dumps(url)}\n'
        fleet.add_agent("coder", [str(claude)], engine="claude", extra=endpoint + extra)
        try:
            yield fleet, api
        finally:
            run_cli(fleet, "stop", "coder")
    finally:
        api.stop()
