"""The PreToolUse hook a `policy` session runs before every tool call (runner/permissions.py).

Run by Claude Code as `python -S permission_hook.py <permission-hook.json>`: stdlib only, so it
starts fast and needs nothing installed. It reads the hook input (JSON on stdin: `tool_name`,
`tool_input`, …), asks the runner over loopback with the token from the 0600 config file, and
prints the decision in the hook's output shape:

    {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                            "permissionDecision": "allow" | "deny",
                            "permissionDecisionReason": "…"}}

It fails closed: no runner, a bad config or a broken answer is a `deny` that says why.
"""

import json
import socket
import sys


def output(decision: str, reason: str) -> str:
    return json.dumps(
        {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": decision,
                "permissionDecisionReason": reason,
            }
        }
    )


def ask_runner(config_path: str, hook_input: dict) -> tuple:  # type: ignore[type-arg]
    with open(config_path) as fh:
        cfg = json.load(fh)
    request = {
        "token": cfg["token"],
        "tool_name": hook_input.get("tool_name", ""),
        "tool_input": hook_input.get("tool_input") or {},
        "session_id": hook_input.get("session_id", ""),
    }
    with socket.create_connection((cfg["host"], int(cfg["port"])), timeout=10) as sock:
        sock.settimeout(None)  # an `ask` waits for the operator (the client bounds the hook)
        sock.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data or b"{}")
    decision = answer.get("decision")
    if decision not in ("allow", "deny"):
        return "deny", "the runner gave no decision"
    return decision, str(answer.get("reason") or decision)


def main(argv: list) -> int:  # type: ignore[type-arg]
    try:
        hook_input = json.loads(sys.stdin.read() or "{}")
        decision, reason = ask_runner(argv[1], hook_input)
    except Exception as exc:  # fail closed, and say why
        decision, reason = "deny", f"runner unreachable ({type(exc).__name__})"
    sys.stdout.write(output(decision, f"relayfleet policy: {reason}") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
