"""The last committed fleet that loads, for read-only commands when the working tree is broken.

A typo in `routes.toml` must not blind the operator: `gh fleet up` keeps running the last good
config, and `status`, `logs`, `tell`, `inbox`, … must keep showing it. Mutating commands never
use this: they refuse to write over a broken file.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayfleet.core.errors import ConfigError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Fleet

SEARCH_COMMITS = 20  # how far back through the fleet's history to look for one that loads


@dataclass(frozen=True)
class Fallback:
    fleet: Fleet
    commit: str  # short sha of the commit it was loaded from
    problem: ConfigError  # why the working tree was not used
    texts: dict[str, str]  # its config files, keyed relative to `.fleet/` (for line numbers)

    @property
    def warning(self) -> str:
        return (
            f"gh fleet: warning: {self.problem}; using the last committed config "
            f"({self.commit}) instead"
        )


def committed_fleet(paths: FleetPaths, problem: ConfigError) -> Fallback | None:
    """The newest of the fleet's last commits whose `.fleet/` loads, or None."""
    from relayfleet.core.errors import FleetError
    from relayfleet.fleet.gitops import fleet_log, fleet_texts_at
    from relayfleet.fleet.schema import load_fleet_from_texts

    try:
        commits = fleet_log(paths.root, n=SEARCH_COMMITS)
    except FleetError:
        return None  # not a git repository, or no commits: nothing to fall back to
    for c in commits:
        try:
            texts = fleet_texts_at(paths.root, c.sha)
            if "fleet.toml" in texts:
                return Fallback(load_fleet_from_texts(texts), c.short, problem, texts)
        except ConfigError:
            continue
    return None
