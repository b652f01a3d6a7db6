"""Which Backend runs an agent: `runtime.backend` -> local | docker | ssh.

docker and ssh live in their own modules (they pull in the docker SDK / asyncssh), imported only
when an agent uses them. A backend module exposes `make_backend() -> Backend`, or a class named
`<Name>Backend` constructible without arguments.
"""

from __future__ import annotations

import importlib

from relayfleet.backends.base import Backend, RunnerStatus
from relayfleet.core.errors import BackendError, FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet

MODULES = {
    "local": "relayfleet.backends.local",
    "docker": "relayfleet.backends.docker",
    "ssh": "relayfleet.backends.ssh",
}


def backend_named(name: str) -> Backend:
    module_name = MODULES.get(name)
    if module_name is None:
        raise BackendError(f"unknown backend {name!r}", hints=[f"use one of: {', '.join(MODULES)}"])
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(
            f"the {name} backend is not available: {exc}",
            hints=["reinstall relayfleet (./gh-fleet bootstraps its venv) or use backend local"],
        ) from exc
    factory = getattr(module, "make_backend", None) or getattr(
        module, f"{name.capitalize()}Backend", None
    )
    if factory is None:
        raise BackendError(f"the {name} backend module {module_name} defines no backend")
    backend: Backend = factory()
    return backend


def backend_for(agent: Agent, fleet: Fleet) -> Backend:
    """The backend that runs `agent`; a docker/ssh agent may name its host in `runtime.host`."""
    name = agent.runtime.backend or fleet.default_backend or "local"
    if agent.runtime.host and agent.runtime.host in fleet.hosts and name == "local":
        name = fleet.hosts[agent.runtime.host].backend
    return backend_named(name)


def status_all(paths: FleetPaths, fleet: Fleet, agents: list[Agent]) -> dict[str, RunnerStatus]:
    """Statuses a backend can batch (`status_many`: ssh asks each host once, not per agent).

    Agents missing from the result (no batching, or the batch failed) are asked one by one by
    the caller, which then reports that agent's own error.
    """
    groups: dict[str, tuple[Backend, list[Agent]]] = {}
    for a in agents:
        try:
            b = backend_for(a, fleet)
        except FleetError:
            continue
        groups.setdefault(b.name, (b, []))[1].append(a)
    out: dict[str, RunnerStatus] = {}
    for backend, group in groups.values():
        many = getattr(backend, "status_many", None)
        if many is None or len(group) < 2:
            continue
        try:
            out.update(many(paths, fleet, group))
        except FleetError:
            continue
    return out
