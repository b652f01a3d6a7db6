"""What `gh fleet status` shows, gathered once: the router, every agent (what its backend and
its runner report), `up`'s drift and the approvals waiting. `status --json` prints it as it is;
`status` and `status --watch` render it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.fleet.model import Fleet


def _line_count(path: Any) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.endswith(b"\n") and line.strip())
    except FileNotFoundError:
        return 0


def agent_rows(ctx: Context, fleet: Fleet) -> list[dict[str, Any]]:
    """One row per agent: what its backend and its runner (runner.json) report.

    `delivery` is the path into the session in use (`channel` or `pty`); `pending` is what was
    delivered and not yet acknowledged; `inbox_events` counts the inbox's lines.
    """
    from relayfleet.backends.registry import backend_for, status_all
    from relayfleet.cli.agent_facts import runner_facts
    from relayfleet.core.errors import FleetError

    paths = ctx.paths
    # One remote command per ssh host for the whole table, not one per agent.
    batched = status_all(paths, fleet, [fleet.agents[n] for n in sorted(fleet.agents)])
    rows = []
    for name in sorted(fleet.agents):
        a = fleet.agents[name]
        st = batched.get(name)
        if st is None:
            try:
                st = backend_for(a, fleet).status(paths, fleet, a)
            except FleetError:
                st = None  # runner_facts asks again and reports the agent's own error
        row = runner_facts(paths, fleet, a, st)
        row["inbox_transport"] = a.runtime.inbox_transport
        # Where the inbox is: an ssh host's count comes with its batched status.
        remote = st.extra.get("inbox_events") if st is not None else None
        row["inbox_events"] = remote if isinstance(remote, int) else _line_count(paths.inbox(name))
        rows.append(row)
    return rows


def snapshot(ctx: Context, fleet: Fleet) -> dict[str, Any]:
    """What `status --json` prints and `status --watch` redraws: router, agents, up (drift)."""
    from relayfleet.router import daemon
    from relayfleet.runner.permissions import waiting
    from relayfleet.up.drift import drift

    agents = agent_rows(ctx, fleet)
    queue = waiting(ctx.paths)
    for row in agents:
        row["approvals_waiting"] = sum(1 for q in queue if q.get("agent") == row["name"])
    return {
        "router": daemon.status(ctx.paths),
        "agents": agents,
        "up": drift(ctx.paths),
        "approvals_waiting": len(queue),
    }
