"""Permission policy: every tool call of a `policy` session is answered by the runner.

With `[permissions] mode = "policy"` the session is launched with `--settings <state>/
settings.json`, which holds

- the policy's `allow` / `deny` lists as Claude Code permission rules (not `ask`: the client
  would prompt where nobody looks), and
- a `PreToolUse` hook: a small stdlib script (runner/permission_hook.py) that sends the call to
  this runner over loopback, with a token from a 0600 file, and prints the decision in the
  hook's JSON shape (`hookSpecificOutput.permissionDecision` allow | deny).

The runner decides (`Policy.decide`, pure): a `deny` rule wins, then `allow`, and everything else
(`ask` rules and unlisted calls) goes to the operator's queue, one for the whole fleet
(`state/approvals/<id>.json`); `gh fleet approve <id>` / `deny <id>` writes the answer next to it
(`<id>.answer.json`). Unanswered after `ask_timeout_min`, it is denied. The hook never answers
`ask`: an unattended session must not stop at a prompt nobody sees. Every decision, by the policy,
an operator or the timeout, is appended to `state/audit.jsonl`; past `AUDIT_MAX_BYTES` it rotates
to `audit.jsonl.1` .. `.{AUDIT_KEEP}` (core/rotating.py), and `audit_entries` reads them all.

The runner's own channel tools (`mcp__relay__*`) are always allowed.

Rules: `Tool` matches every call of that tool; `Bash(git status:*)` a command that starts with
`git status`; `Bash(pytest)` exactly that command; for other tools the specifier is a glob over the
call's main argument (file path, path, URL, pattern): `Read(src/**)`, `WebFetch(https://x/*)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.paths import FleetPaths
from relayfleet.core.rotating import append_json_rotating, read_jsonl_rotating
from relayfleet.fleet.model import Permissions

OWN_TOOLS = "mcp__relay__"
_RULE = re.compile(r"^([^()]+)(?:\((.*)\))?$")
MAIN_ARG = ("command", "file_path", "path", "notebook_path", "url", "pattern", "query")
AUDIT_MAX_BYTES = 5 << 20  # audit.jsonl rotates to audit.jsonl.1 once it reaches this
AUDIT_KEEP = 2  # rotated generations kept (.1 newest, .2); older ones are dropped


def detail(tool_input: dict[str, Any]) -> str:
    """The exact command, path or URL of a call (what the operator decides on)."""
    for key in MAIN_ARG:
        v = tool_input.get(key)
        if isinstance(v, str) and v:
            return v
    return json.dumps(tool_input, sort_keys=True)[:500]


def rule_matches(rule: str, tool: str, tool_input: dict[str, Any]) -> bool:
    m = _RULE.match(rule.strip())
    if m is None:
        return False
    name, spec = m.group(1).strip(), m.group(2)
    if not fnmatch.fnmatchcase(tool, name):
        return False
    if spec is None or spec in ("", "*"):
        return True
    arg = detail(tool_input)
    if tool == "Bash":
        if spec.endswith(":*"):
            prefix = spec[:-2]
            return arg == prefix or arg.startswith(prefix + " ")
        return arg.strip() == spec.strip()
    return fnmatch.fnmatchcase(arg, spec)


@dataclass(frozen=True)
class Policy:
    perms: Permissions

    @property
    def active(self) -> bool:
        return self.perms.mode == "policy"

    def decide(self, tool: str, tool_input: dict[str, Any]) -> tuple[str, str]:
        """(`allow` | `deny` | `ask`, the rule or reason)."""
        if tool.startswith(OWN_TOOLS):
            return "allow", "the runner's own tool"
        for rule in self.perms.deny:
            if rule_matches(rule, tool, tool_input):
                return "deny", f"deny rule {rule}"
        for rule in self.perms.allow:
            if rule_matches(rule, tool, tool_input):
                return "allow", f"allow rule {rule}"
        for rule in self.perms.ask:
            if rule_matches(rule, tool, tool_input):
                return "ask", f"ask rule {rule}"
        return "ask", "no rule allows or denies it"

    def settings(self, hook_command: list[str]) -> dict[str, Any]:
        """The `--settings` document: the rules, and the hook that asks the runner."""
        import shlex

        return {
            "permissions": {
                "allow": [f"{OWN_TOOLS}*", *self.perms.allow],
                "deny": list(self.perms.deny),
                # No `ask` rules: the client would prompt in a terminal nobody watches. The hook
                # takes asks to the operator's queue instead.
            },
            "hooks": {
                "PreToolUse": [
                    {
                        "matcher": "*",
                        "hooks": [
                            {
                                "type": "command",
                                "command": shlex.join(hook_command),
                                # The hook waits for the operator; the client must wait too.
                                "timeout": self.perms.ask_timeout_min * 60 + 60,
                            }
                        ],
                    }
                ]
            },
        }


# -- the fleet's queue and audit log (files; `gh fleet approvals` reads the same) ---------------


def approvals_dir(paths: FleetPaths) -> Path:
    return paths.state / "approvals"


def audit_log(paths: FleetPaths) -> Path:
    return paths.state / "audit.jsonl"


def waiting(paths: FleetPaths, agent: str | None = None) -> list[dict[str, Any]]:
    """Requests waiting for an operator, oldest first (optionally one agent's)."""
    out = []
    d = approvals_dir(paths)
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        if f.name.endswith(".answer.json"):
            continue
        req = read_json(f, None)
        if not isinstance(req, dict) or agent not in (None, req.get("agent")):
            continue
        if not (d / f"{req.get('id')}.answer.json").exists():
            out.append(req)
    return sorted(out, key=lambda r: r.get("asked_at", 0))


def answer(
    paths: FleetPaths, request_id: str, decision: str, reason: str, by: str
) -> dict[str, Any]:
    """Record an operator's answer (`allow` | `deny`); the runner that asked picks it up."""
    from relayfleet.core.errors import NotFound

    d = approvals_dir(paths)
    req = read_json(d / f"{request_id}.json", None) if re.fullmatch(r"[\w-]+", request_id) else None
    if not isinstance(req, dict):
        known = ", ".join(r["id"] for r in waiting(paths)) or "none waiting"
        raise NotFound(f"no approval request {request_id!r} ({known})")
    doc = {"decision": decision, "reason": reason, "by": by, "at": time.time()}
    write_json_atomic(d / f"{request_id}.answer.json", doc)
    return req


def audit(
    paths: FleetPaths,
    entry: dict[str, Any],
    *,
    max_bytes: int = AUDIT_MAX_BYTES,
    keep: int = AUDIT_KEEP,
) -> None:
    """Append one decision; every runner of the fleet appends here (one flock, see rotating)."""
    doc = {"ts": time.time(), **entry}
    append_json_rotating(audit_log(paths), doc, max_bytes=max_bytes, keep=keep)


def audit_entries(paths: FleetPaths) -> list[dict[str, Any]]:
    """Every decision still kept, oldest first: the rotated generations, then the live file."""
    return read_jsonl_rotating(audit_log(paths))


# -- the runner's end: the hook's loopback endpoint ---------------------------------------------


class PermissionServer:
    """Loopback TCP, one JSON line each way: `{"token", "tool_name", "tool_input"}` in,
    `{"decision", "reason"}` out. The hook is given the address and token in a 0600 file."""

    poll = 0.25  # how often a waiting ask looks for the operator's answer

    def __init__(
        self,
        paths: FleetPaths,
        agent: str,
        perms: Permissions,
        log: logging.Logger,
        last_event: Callable[[], str | None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.paths, self.agent, self.log = paths, agent, log
        self.policy = Policy(perms)
        self.last_event = last_event
        self.on_change = on_change
        self.token = secrets.token_urlsafe(24)
        self.ask_timeout = perms.ask_timeout_min * 60.0
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def state_dir(self) -> Path:
        return self.paths.agent_state(self.agent)

    @property
    def hook_config(self) -> Path:
        return self.state_dir / "permission-hook.json"

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "settings.json"

    def hook_command(self) -> list[str]:
        from relayfleet.runner import permission_hook

        return [sys.executable, "-S", str(Path(permission_hook.__file__)), str(self.hook_config)]

    async def start(self) -> Path:
        """Listen, write the hook's 0600 config and the `--settings` file; the settings path."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cfg = {"host": "127.0.0.1", "port": self.port, "token": self.token}
        write_json_atomic(self.hook_config, cfg, mode=0o600)
        write_json_atomic(self.settings_file, self.policy.settings(self.hook_command()))
        return self.settings_file

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            req = json.loads(line or b"{}")
            if not isinstance(req, dict) or not secrets.compare_digest(
                str(req.get("token", "")), self.token
            ):
                out = {"decision": "deny", "reason": "not the runner's hook"}
            else:
                tool = str(req.get("tool_name") or "")
                tool_input = req.get("tool_input")
                tool_input = tool_input if isinstance(tool_input, dict) else {}
                decision, reason = await self.decide(tool, tool_input)
                out = {"decision": decision, "reason": reason}
            writer.write((json.dumps(out) + "\n").encode())
            await writer.drain()
        except Exception as exc:  # a broken request is denied by the hook (it fails closed)
            self.log.warning("permission request failed: %s: %s", type(exc).__name__, exc)
        finally:
            writer.close()

    async def decide(self, tool: str, tool_input: dict[str, Any]) -> tuple[str, str]:
        decision, reason = self.policy.decide(tool, tool_input)
        entry = {"agent": self.agent, "tool": tool, "detail": detail(tool_input)}
        if decision != "ask":
            audit(self.paths, {**entry, "decision": decision, "by": "policy", "reason": reason})
            return decision, reason
        return await self._ask(entry, reason)

    async def _ask(self, entry: dict[str, Any], why: str) -> tuple[str, str]:
        rid = f"ap-{uuid.uuid4().hex[:10]}"
        d = approvals_dir(self.paths)
        d.mkdir(parents=True, exist_ok=True)
        req = {"id": rid, **entry, "event": self.last_event(), "why": why, "asked_at": time.time()}
        write_json_atomic(d / f"{rid}.json", req)
        self.log.info("approval %s: %s %s (waiting for an operator)", rid, entry["tool"], why)
        self.on_change()
        deadline = time.monotonic() + self.ask_timeout
        ans: Any = None
        try:
            while time.monotonic() < deadline:
                ans = read_json(d / f"{rid}.answer.json", None)
                if isinstance(ans, dict):
                    break
                await asyncio.sleep(self.poll)
        finally:
            for f in (d / f"{rid}.json", d / f"{rid}.answer.json"):
                with contextlib.suppress(OSError):
                    os.unlink(f)
            self.on_change()
        if isinstance(ans, dict) and ans.get("decision") in ("allow", "deny"):
            decision = str(ans["decision"])
            reason = str(ans.get("reason") or f"{decision} by the operator")
            by = str(ans.get("by") or "operator")
        else:
            mins = self.policy.perms.ask_timeout_min
            decision, reason, by = "deny", f"no operator answer within {mins} min", "timeout"
        audit(self.paths, {**entry, "id": rid, "decision": decision, "by": by, "reason": reason})
        self.log.info("approval %s: %s (%s)", rid, decision, by)
        return decision, reason
