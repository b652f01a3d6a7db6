"""Engine registry: `agent.claude.engine` -> the SessionEngine that runs the agent's session."""

from __future__ import annotations

from relayfleet.core.errors import ConfigError
from relayfleet.runner.engine import Channel, EngineFactory, EngineSpec, SessionEngine


def _command(spec: EngineSpec, channel: Channel) -> SessionEngine:
    from relayfleet.runner.engine_command import CommandEngine

    return CommandEngine(spec, channel)


def _claude(spec: EngineSpec, channel: Channel) -> SessionEngine:
    from relayfleet.runner.engine_claude import ClaudeEngine

    return ClaudeEngine(spec, channel)


ENGINES: dict[str, EngineFactory] = {"command": _command, "claude": _claude}


def make_engine(spec: EngineSpec, channel: Channel) -> SessionEngine:
    name = spec.agent.claude.engine
    try:
        factory = ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(
            f"agent {spec.agent.name}: unknown session engine {name!r} (known: {known})"
        ) from None
    return factory(spec, channel)
