"""`load_fleet(paths) -> Fleet`: the one reader of `.fleet/*.toml` for the model.

Light on purpose (tomllib, no tomlkit/pygit2): `gh fleet list --json` must start fast.
"""

from __future__ import annotations

from pathlib import Path

from relayfleet.core.errors import ConfigError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Fleet
from relayfleet.fleet.schema import load_fleet_from_texts


def read_texts(paths: FleetPaths) -> dict[str, str]:
    """Every config file under `.fleet/`, keyed by its path relative to `.fleet/`."""
    files = [paths.fleet_toml, paths.routes_toml]
    if paths.agents.is_dir():
        files += sorted(
            d / "agent.toml" for d in paths.agents.iterdir() if (d / "agent.toml").is_file()
        )
    texts: dict[str, str] = {}
    for f in files:
        rel = f.relative_to(paths.fleet).as_posix()
        try:
            texts[rel] = Path(f).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue  # routes.toml is optional; a missing fleet.toml is reported by the schema
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text ({exc.reason})", file=f".fleet/{rel}") from exc
    return texts


def load_fleet(paths: FleetPaths) -> Fleet:
    """The fleet on disk, strictly: the first problem raises ConfigError with file:line."""
    return load_fleet_from_texts(read_texts(paths))
