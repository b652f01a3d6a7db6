"""`load_fleet(paths) -> Fleet`: the one reader of `.fleet/*.toml` for the model.

Light on purpose (tomllib, no tomlkit/pygit2): `gh fleet list --json` must start fast.
"""

from __future__ import annotations

from pathlib import Path

from relayfleet.core.errors import ConfigError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Fleet
from relayfleet.fleet.schema import load_fleet_from_texts


def refuse_outside_links(paths: FleetPaths) -> None:
    """An agent's folder, agent.toml and CLAUDE.md must live inside `.fleet/`.

    A pull request could otherwise add `agents/x/CLAUDE.md -> ~/.ssh/id_ed25519`: the runner
    hands the persona file to the session, which would read the key as its instructions.
    """
    top = paths.fleet.resolve()
    for d in sorted(paths.agents.iterdir()):
        for p in (d, d / "agent.toml", d / "CLAUDE.md"):
            if p.is_symlink() and not p.resolve().is_relative_to(top):
                rel = p.relative_to(paths.fleet).as_posix()
                raise ConfigError(
                    f"{rel} is a symlink out of .fleet/ (to {p.resolve()}); "
                    "an agent's files must live inside the fleet",
                    file=f".fleet/{rel}",
                )


def read_texts(paths: FleetPaths) -> dict[str, str]:
    """Every config file under `.fleet/`, keyed by its path relative to `.fleet/`."""
    files = [paths.fleet_toml, paths.routes_toml]
    if paths.agents.is_dir():
        refuse_outside_links(paths)
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
