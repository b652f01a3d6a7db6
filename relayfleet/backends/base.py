"""The seam between the CLI and where a runner lives (local process, docker container, ssh host)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet


@dataclass
class RunnerStatus:
    name: str
    running: bool
    backend: str
    pid: int | None = None
    host: str = ""
    started_at: float | None = None
    detail: str = ""  # e.g. "[docker] 3f2a9c1b healthy", "[ssh@vm]"
    extra: dict[str, object] = field(default_factory=dict)


class Backend(Protocol):
    name: str  # "local" | "docker" | "ssh"

    def start(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus: ...

    def stop(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> bool: ...

    def status(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus: ...

    def logs(self, paths: FleetPaths, fleet: Fleet, agent: Agent, lines: int) -> str: ...
