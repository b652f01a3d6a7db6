"""What `gh fleet status` says about one agent's runner (backend status + runner.json facts)."""

from __future__ import annotations

import time
from typing import Any

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet


def select_agents(fleet: Fleet, names: list[str], all_: bool) -> list[Agent]:
    from relayfleet.core.errors import UsageError

    if all_ and names:
        raise UsageError("name agents or pass --all, not both")
    if all_:
        return [fleet.agents[n] for n in sorted(fleet.agents)]
    if not names:
        raise UsageError("name at least one agent, or pass --all")
    return [fleet.agent(n) for n in dict.fromkeys(names)]


def runner_facts(
    paths: FleetPaths, fleet: Fleet, agent: Agent, prefetched: Any = None
) -> dict[str, Any]:
    """One `status --json` agent entry: running, pid, backend, host, delivery, pending, …

    `prefetched`: the agent's RunnerStatus when a batched query already has it."""
    from relayfleet.backends.registry import backend_for
    from relayfleet.core.errors import FleetError

    backend_name = agent.runtime.backend
    try:
        st = prefetched or backend_for(agent, fleet).status(paths, fleet, agent)
    except FleetError as exc:
        return {
            "name": agent.name,
            "running": False,
            "pid": None,
            "backend": backend_name,
            "host": agent.runtime.host,
            "delivery": None,
            "pending": None,
            "error": str(exc),
        }
    x = dict(st.extra)
    pending = x.get("pending") if st.running else None
    undelivered = None
    if not st.running:
        # No runner to ask: read what it left behind (inbox past the ledger's offset, and what
        # it delivered that was never acknowledged), so a stopped agent's backlog shows.
        backlog = stopped_backlog(paths, agent.name)
        if backlog is not None:
            undelivered, unacked = backlog
            pending = undelivered + unacked
    engine_raw = x.get("engine")
    engine: dict[str, Any] = engine_raw if st.running and isinstance(engine_raw, dict) else {}
    now = time.time()
    started = x.get("started_at") or st.started_at
    errors = x.get("plugin_errors") or []
    return {
        "name": agent.name,
        "running": st.running,
        "pid": st.pid,
        "backend": st.backend,
        "host": st.host or agent.runtime.host,
        "delivery": x.get("delivery") if st.running else None,
        "pending": pending,
        "undelivered": undelivered,
        "session": x.get("session") if st.running else "stopped",
        "session_id": x.get("session_id"),
        "uptime_s": round(now - started, 1) if st.running and started else None,
        "last_delivered": x.get("last_delivered"),
        "last_delivered_at": x.get("last_delivered_at"),
        "restarts": x.get("restarts", 0) if st.running else None,
        "attached": x.get("attached", 0) if st.running else 0,
        "plugins": x.get("plugins", []),
        "plugin_errors": errors,
        "detail": st.detail,
        # What the session engine says about itself (runner.json "engine"): the delivery path
        # and why (a channel notice), whether the session's MCP client is connected, …
        "session_pid": x.get("session_pid") if st.running else None,
        "channel_connected": engine.get("channel_connected"),
        "channel_notice": engine.get("channel_notice"),
        "engine": engine,
        "delivered": x.get("delivered"),
        "last_exit": x.get("last_exit"),
        "credentials": [c.name for c in agent.credentials],
        # The port agent.toml allocates is where the MCP channel listens; when it was taken the
        # runner fell back to another and says so here.
        "port": agent.port,
        "channel_port": x.get("channel_port") if st.running else None,
        "port_notice": x.get("port_notice") if st.running else None,
        "error": x.get("error") or None,
        "workspace": workspace_facts(paths, fleet, agent, x.get("workspace")),
        # Today's token budget (runner/budget.py): state ok|warn|over, used, limit, until.
        "budget": x.get("budget") if st.running else None,
    }


def workspace_facts(paths: FleetPaths, fleet: Fleet, agent: Agent, reported: Any) -> dict[str, Any]:
    from relayfleet.runner import workspace

    p = workspace.plan(paths, fleet, agent)
    local = agent.runtime.backend == "local"
    if not isinstance(reported, dict) and agent.runtime.backend == "docker":
        # A container's runner.json is on this machine (its state is bind-mounted).
        from relayfleet.core.atomic import read_json

        reported = (read_json(paths.runner_status(agent.name), {}) or {}).get("workspace")
    return workspace.facts(p, reported if isinstance(reported, dict) else None, local)


def stopped_backlog(paths: FleetPaths, name: str) -> tuple[int, int] | None:
    """(events in the inbox not yet delivered, delivered ones not acknowledged) for an agent
    whose runner is not running; None when its inbox is not on this machine."""
    from relayfleet.runner.ledger import Ledger
    from relayfleet.runner.supervisor import runner_state_file

    inbox = paths.inbox(name)
    ledger_file = runner_state_file(paths, name)
    if not inbox.exists() and not ledger_file.exists():
        return None
    ledger = Ledger.load(ledger_file)
    undelivered = 0
    try:
        with open(inbox, "rb") as f:
            f.seek(ledger.offset)
            undelivered = sum(1 for line in f if line.endswith(b"\n") and line.strip())
    except FileNotFoundError:
        pass
    return undelivered, len(ledger.pending)


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def table_row(f: dict[str, Any]) -> list[str]:
    """NAME RUNNING PID BACKEND UPTIME DELIVERY PENDING LAST-EVENT RESTARTS PLUGIN-ERRORS"""
    last = f.get("last_delivered") or "-"
    if f.get("last_delivered_at"):
        last += f" ({human_age(time.time() - f['last_delivered_at'])} ago)"
    errs = f.get("plugin_errors") or []
    where = f["backend"] + (f"@{f['host']}" if f.get("host") else "")
    return [
        f["name"],
        "yes" if f["running"] else "no",
        str(f["pid"] or "-"),
        where,
        human_age(f.get("uptime_s")),
        (f.get("delivery") or "-") + (" (attached)" if f.get("attached") else ""),
        "-" if f.get("pending") is None else str(f["pending"]),
        last,
        "-" if f.get("restarts") is None else str(f["restarts"]),
        ", ".join(sorted({e.get("plugin", "?") for e in errs})) or "-",
    ]


TABLE_HEADERS = (
    "name",
    "running",
    "pid",
    "backend",
    "uptime",
    "delivery",
    "pending",
    "last event",
    "restarts",
    "plugin errors",
)
