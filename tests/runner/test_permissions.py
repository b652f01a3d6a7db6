"""Permission policy: the rules, the hook against the runner's loopback endpoint, the queue."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sessionkit import wait_until

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Permissions
from relayfleet.runner import permissions as pm

POLICY = Permissions(
    mode="policy",
    allow=("Read", "Grep", "Bash(git status:*)", "Bash(pytest:*)"),
    deny=("Bash(rm -rf:*)", "WebFetch"),
    ask=("Bash(git push:*)",),
    ask_timeout_min=30,
)


@pytest.mark.parametrize(
    ("tool", "tool_input", "decision"),
    [
        ("Read", {"file_path": "/etc/hosts"}, "allow"),
        ("Bash", {"command": "git status"}, "allow"),
        ("Bash", {"command": "git status --short"}, "allow"),
        ("Bash", {"command": "git statusx"}, "ask"),  # a prefix is a whole word
        ("Bash", {"command": "pytest -q tests"}, "allow"),
        ("Bash", {"command": "rm -rf /"}, "deny"),
        ("WebFetch", {"url": "https://example.com"}, "deny"),
        ("Bash", {"command": "git push origin main"}, "ask"),
        ("Write", {"file_path": "x.py"}, "ask"),  # everything else: ask
        ("mcp__relay__ack_event", {"event_id": "e1"}, "allow"),  # the runner's own tools
    ],
)
def test_the_policy_decides_deny_first_then_allow_then_ask(
    tool: str, tool_input: dict[str, Any], decision: str
) -> None:
    assert pm.Policy(POLICY).decide(tool, tool_input)[0] == decision


def test_the_settings_carry_the_rules_and_the_hook() -> None:
    doc = pm.Policy(POLICY).settings(["python3", "-S", "/x/hook.py", "/s/permission-hook.json"])
    assert doc["permissions"]["deny"] == ["Bash(rm -rf:*)", "WebFetch"]
    assert doc["permissions"]["allow"][0] == "mcp__relay__*"
    (entry,) = doc["hooks"]["PreToolUse"]
    assert entry["matcher"] == "*"
    assert entry["hooks"][0]["command"] == "python3 -S /x/hook.py /s/permission-hook.json"
    assert entry["hooks"][0]["timeout"] > 30 * 60


def run_hook(cfg: Path, tool: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    from relayfleet.runner import permission_hook

    proc = subprocess.run(
        [sys.executable, "-S", permission_hook.__file__, str(cfg)],
        input=json.dumps(
            {"hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": tool_input}
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out: dict[str, Any] = json.loads(proc.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    return out


def test_the_hook_asks_the_runner_and_the_operator_answers(tmp_path: Path, cli: Any) -> None:
    (tmp_path / ".fleet").mkdir()
    (tmp_path / ".fleet" / "fleet.toml").write_text('[fleet]\nname = "t"\n')
    paths = FleetPaths(tmp_path)
    env = {"FLEET_ROOT": str(tmp_path)}

    async def main() -> list[dict[str, Any]]:
        server = pm.PermissionServer(
            paths, "coder", POLICY, logging.getLogger("t"), lambda: "evt_7"
        )
        server.poll = 0.05
        settings = await server.start()
        assert json.loads(settings.read_text())["hooks"]["PreToolUse"]
        assert server.hook_config.stat().st_mode & 0o777 == 0o600
        cfg = server.hook_config
        out = []
        out.append(await asyncio.to_thread(run_hook, cfg, "Bash", {"command": "rm -rf /tmp/x"}))
        out.append(await asyncio.to_thread(run_hook, cfg, "Read", {"file_path": "a.py"}))
        # An ask waits in the fleet's queue until an operator answers.
        push = asyncio.create_task(
            asyncio.to_thread(run_hook, cfg, "Bash", {"command": "git push origin main"})
        )
        await wait_until(lambda: pm.waiting(paths))
        rc, listed, _ = cli("approvals", "--json", cwd=tmp_path, env=env)
        (req,) = json.loads(listed)
        assert (req["agent"], req["tool"], req["detail"], req["event"]) == (
            "coder", "Bash", "git push origin main", "evt_7"
        )  # fmt: skip
        rc, shown, _ = cli("status", cwd=tmp_path, env=env)
        assert "approvals: 1 tool call(s) waiting" in shown
        assert not push.done()
        rc, said, _ = cli("approve", req["id"], cwd=tmp_path, env=env)
        assert rc == 0 and said.startswith(f"approved {req['id']}: coder Bash git push")
        out.append(await push)
        # A second ask, denied with a reason.
        write = asyncio.create_task(asyncio.to_thread(run_hook, cfg, "Write", {"file_path": "x"}))
        await wait_until(lambda: pm.waiting(paths))
        (req2,) = pm.waiting(paths)
        rc, _, _ = cli("deny", req2["id"], "--reason", "not today", cwd=tmp_path, env=env)
        out.append(await write)
        # Unanswered: denied at the timeout.
        server.ask_timeout = 0.3
        out.append(await asyncio.to_thread(run_hook, cfg, "Edit", {"file_path": "y"}))
        # Not the runner's token: denied.
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**json.loads(cfg.read_text()), "token": "guess"}))
        out.append(await asyncio.to_thread(run_hook, bad, "Read", {"file_path": "a.py"}))
        await server.stop()
        # No runner at all: the hook fails closed.
        out.append(await asyncio.to_thread(run_hook, cfg, "Read", {"file_path": "a.py"}))
        return out

    out = asyncio.run(main())
    assert [o["permissionDecision"] for o in out] == [
        "deny", "allow", "allow", "deny", "deny", "deny", "deny"
    ]  # fmt: skip
    assert "deny rule Bash(rm -rf:*)" in out[0]["permissionDecisionReason"]
    assert "not today" in out[3]["permissionDecisionReason"]
    assert "no operator answer within 30 min" in out[4]["permissionDecisionReason"]
    assert "not the runner's hook" in out[5]["permissionDecisionReason"]
    assert "runner unreachable" in out[6]["permissionDecisionReason"]
    audit = pm.audit_entries(paths)
    assert [(a["tool"], a["decision"], a["by"].split(":")[0]) for a in audit] == [
        ("Bash", "deny", "policy"),
        ("Read", "allow", "policy"),
        ("Bash", "allow", "operator"),
        ("Write", "deny", "operator"),
        ("Edit", "deny", "timeout"),
    ]
    assert pm.waiting(paths) == []


def test_approving_an_unknown_id_is_one_clear_error(tmp_path: Path, cli: Any) -> None:
    (tmp_path / ".fleet").mkdir()
    (tmp_path / ".fleet" / "fleet.toml").write_text('[fleet]\nname = "t"\n')
    rc, _, err = cli("approve", "ap-nope", cwd=tmp_path, env={"FLEET_ROOT": str(tmp_path)})
    assert rc == 1 and err.startswith("gh fleet: no approval request 'ap-nope'")
