"""The permission policy against the REAL Claude Code 2.1.331, offline: the fake Messages API asks
for a denied tool, an allowed one and an `ask` one; the client refuses, runs, and waits for
`approve` (real-claude-offline.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest
from sessionkit import real_claude_spec, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realclaude import claude_or_skip

from relayfleet.core.paths import FleetPaths
from relayfleet.fakes.messages_api import FakeMessagesAPI, Reply
from relayfleet.fleet.model import Permissions
from relayfleet.runner import permissions as pm
from relayfleet.runner.channel import ChannelServer
from relayfleet.runner.engine_claude import ClaudeEngine

pytestmark = pytest.mark.slow

POLICY = Permissions(
    mode="policy",
    allow=("Bash(echo allowed-run:*)",),
    deny=("Bash(rm -rf:*)",),
    ask=("Bash(echo after-approval:*)",),
)


def test_real_client_refuses_runs_and_waits_for_approve(tmp_path: Path) -> None:
    claude = claude_or_skip()
    api = FakeMessagesAPI(default_text="All three handled.")
    base_url = api.start()
    paths = FleetPaths(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()

    def tool_results() -> str:
        """What the client sent back to the model as tool results (not the model's own calls)."""
        out = []
        for r in api.messages_requests():
            for m in r.body.get("messages", []):
                for block in m.get("content") if isinstance(m.get("content"), list) else []:
                    if block.get("type") == "tool_result":
                        out.append(json.dumps(block.get("content")))
        return "\n".join(out)

    async def main() -> None:
        srv = ChannelServer()
        url, token = await srv.start()
        perms = pm.PermissionServer(paths, "coder", POLICY, logging.getLogger("t"), lambda: "e1")
        perms.poll = 0.05
        settings = await perms.start()
        spec = real_claude_spec(tmp_path, claude, (url, token), base_url)
        spec.settings = settings
        engine = ClaudeEngine(spec, srv)
        engine.busy_timeout = 60
        try:
            await engine.start()
            assert "--settings" in engine.launched_with
            api.script(
                Reply.tool_use("Bash", {"command": f"rm -rf {victim}", "description": "rm"}),
                Reply.tool_use("Bash", {"command": "echo allowed-run ok", "description": "e"}),
                Reply.tool_use("Bash", {"command": "echo after-approval ok", "description": "e"}),
            )
            await engine.deliver({"id": "e1", "source": "operator", "body": "do three things"})
            await wait_until(lambda: pm.waiting(paths), timeout=120)
            # Refused: the directory is still there, and the model was told why.
            assert victim.exists()
            assert "deny rule Bash(rm -rf:*)" in tool_results()
            # Ran: its output went back to the model.
            assert "allowed-run ok" in tool_results()
            # Waiting: nothing after the ask has reached the model.
            await asyncio.sleep(1.0)
            assert "after-approval ok" not in tool_results()
            (req,) = pm.waiting(paths)
            assert req["detail"] == "echo after-approval ok"
            pm.answer(paths, req["id"], "allow", "approved in the test", "operator:test")
            await wait_until(lambda: "after-approval ok" in tool_results(), timeout=120)
            await wait_until(lambda: engine.screen.contains("All three handled."), timeout=120)
        finally:
            await engine.stop(grace=3)
            await perms.stop()
            await srv.stop()
            api.stop()

    asyncio.run(main())
    audit = pm.audit_entries(paths)
    assert [(a["detail"].split()[0:2], a["decision"], a["by"]) for a in audit] == [
        (["rm", "-rf"], "deny", "policy"),
        (["echo", "allowed-run"], "allow", "policy"),
        (["echo", "after-approval"], "allow", "operator:test"),
    ]
