"""Where a fleet lives on disk (ARCHITECTURE 3.2, 3.3, 3.6). Every path is built here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from relayfleet.core.errors import NotFound

FLEET_DIR = ".fleet"


def package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def project_dir() -> Path:
    """The relayfleet checkout (holds bundled `plugins/`, `Dockerfile`, `gh-fleet`)."""
    return package_dir().parent


def bundled_plugins_dir() -> Path:
    """`plugins/` of the checkout, or inside the package for a wheel install (setup.py)."""
    inside = package_dir() / "bundled_plugins"
    return inside if inside.is_dir() else project_dir() / "plugins"


def find_root(start: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`FLEET_ROOT` (or its alias `RELAYFLEET_ROOT`, the seed tool's name) wins; else walk up
    to the first directory holding `.fleet/fleet.toml`."""
    env = os.environ if env is None else env
    var = next((v for v in ("FLEET_ROOT", "RELAYFLEET_ROOT") if env.get(v)), None)
    if var:
        root = Path(env[var]).expanduser().resolve()
        if not (root / FLEET_DIR / "fleet.toml").is_file():
            raise NotFound(
                f"{var}={env[var]} has no {FLEET_DIR}/fleet.toml",
                hints=[f"run `gh fleet init` there, or unset {var}"],
            )
        return root
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / FLEET_DIR / "fleet.toml").is_file():
            return d
    raise NotFound(
        "no fleet here (no .fleet/fleet.toml in this directory or any parent)",
        hints=["run `gh fleet init` to create one, or set FLEET_ROOT"],
    )


@dataclass(frozen=True)
class FleetPaths:
    root: Path

    @property
    def fleet(self) -> Path:
        return self.root / FLEET_DIR

    @property
    def fleet_toml(self) -> Path:
        return self.fleet / "fleet.toml"

    @property
    def routes_toml(self) -> Path:
        return self.fleet / "routes.toml"

    @property
    def agents(self) -> Path:
        return self.fleet / "agents"

    @property
    def plugins(self) -> Path:
        return self.fleet / "plugins"

    def agent_dir(self, name: str) -> Path:
        return self.agents / name

    def agent_toml(self, name: str) -> Path:
        return self.agent_dir(name) / "agent.toml"

    def persona(self, name: str) -> Path:
        return self.agent_dir(name) / "CLAUDE.md"

    # -- runtime state (gitignored) --
    @property
    def state(self) -> Path:
        return self.fleet / "state"

    @property
    def router_state(self) -> Path:
        return self.state / "router"

    @property
    def cursor(self) -> Path:
        return self.router_state / "cursor.json"

    @property
    def http_cache(self) -> Path:
        return self.router_state / "http-cache.json"

    @property
    def router_pid(self) -> Path:
        return self.router_state / "router.pid"

    @property
    def router_log(self) -> Path:
        return self.router_state / "router.log"

    @property
    def router_status(self) -> Path:
        return self.router_state / "status.json"

    def agent_state(self, name: str) -> Path:
        return self.state / "agents" / name

    def inbox(self, name: str) -> Path:
        return self.agent_state(name) / "inbox.jsonl"

    def session_log(self, name: str) -> Path:
        return self.agent_state(name) / "session.log"

    def runner_pid(self, name: str) -> Path:
        return self.agent_state(name) / "runner.pid"

    def runner_log(self, name: str) -> Path:
        return self.agent_state(name) / "runner.log"

    def runner_status(self, name: str) -> Path:
        return self.agent_state(name) / "runner.json"

    def rel_fleet(self, path: Path) -> str:
        """A path relative to `.fleet/` (how config texts are keyed), '/'-separated."""
        return Path(path).resolve().relative_to(self.fleet.resolve()).as_posix()

    def rel(self, path: Path) -> str:
        """A path relative to the fleet root, for messages and git (always '/'-separated)."""
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
