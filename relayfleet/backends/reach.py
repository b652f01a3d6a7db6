"""A runner's reach into the rest of the fleet (`runner.tools.Reach`), wired in by the runner's
entry point: hand-offs through the inbox API, other agents' states through their backends.

Where the runner runs decides what it can see. On the operator's machine it sees everything
(the same backends `gh fleet status` asks). On an ssh host it sees its neighbours (agents of the
same fleet on the same host, whose runner.json and pids are right there); in a container only
itself. Others are reported as not visible from there rather than guessed at.
"""

from __future__ import annotations

from typing import Any

from relayfleet.backends.transports import runs_here, transport_from
from relayfleet.core.atomic import read_json
from relayfleet.core.errors import FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import PidRecord
from relayfleet.fleet.model import Agent, Fleet


class BackendReach:
    def __init__(self, paths: FleetPaths, fleet: Fleet, agent: str) -> None:
        self.paths = paths
        self.fleet = fleet
        self.agent = agent

    def deliver(self, target: str, event: dict[str, Any]) -> object:
        return transport_from(self.paths, self.fleet, self.agent, target).append(target, event)

    def statuses(self) -> dict[str, dict[str, Any]]:
        me = self.fleet.agent(self.agent)
        agents = [self.fleet.agents[n] for n in sorted(self.fleet.agents)]
        if runs_here(me):
            return self._from_backends(agents)
        out: dict[str, dict[str, Any]] = {}
        for a in agents:
            near = a.name == me.name or (
                me.runtime.backend == "ssh"
                and a.runtime.backend == "ssh"
                and a.runtime.host == me.runtime.host
            )
            out[a.name] = (
                self._from_files(a, itself=a.name == me.name)
                if near
                else {"running": None, "note": f"not visible from {me.runtime.backend}"}
            )
        return out

    def _from_backends(self, agents: list[Agent]) -> dict[str, dict[str, Any]]:
        from relayfleet.backends.registry import backend_for, status_all

        batched = status_all(self.paths, self.fleet, agents)
        out: dict[str, dict[str, Any]] = {}
        for a in agents:
            try:
                st = batched.get(a.name) or backend_for(a, self.fleet).status(
                    self.paths, self.fleet, a
                )
            except FleetError as exc:
                out[a.name] = {"running": None, "note": str(exc)}
                continue
            out[a.name] = {
                "running": st.running,
                "pending": st.extra.get("pending") if st.running else None,
                "delivery": st.extra.get("delivery") if st.running else None,
            }
        return out

    def _from_files(self, a: Agent, *, itself: bool) -> dict[str, Any]:
        facts = read_json(self.paths.runner_status(a.name), {}) or {}
        pid = facts.get("pid")
        running = itself or (isinstance(pid, int) and PidRecord(pid, None, 0).alive())
        return {
            "running": running,
            "pending": facts.get("pending") if running else None,
            "delivery": facts.get("delivery") if running else None,
        }
