"""Which repositories are public: `state/router/repos.json`, written by the router, read by
`validate` and `route` (a file contract, so those commands never touch the network).

The router learns a repository's `private` flag from `GET /repos/{owner}/{name}` (conditional,
at most once a day per repository) and records it here:
`{"repos": {"acme/wms": {"private": false, "checked_at": 1767225600.0}}}`. Only repositories
that feed a route without an association gate are looked up. One the router has not looked at
(or could not) is simply unknown: no warning is made up for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_state_dict, write_json_atomic
from relayfleet.core.paths import FleetPaths

RECHECK_S = 86_400  # a repository's visibility is looked up again after a day


def visibility_path(paths: FleetPaths) -> Path:
    return paths.router_state / "repos.json"


def read_visibility(path: Path) -> dict[str, dict[str, Any]]:
    repos = read_state_dict(path).get("repos")
    if not isinstance(repos, dict):
        return {}
    return {str(k).lower(): v for k, v in repos.items() if isinstance(v, dict)}


def public_repos(paths: FleetPaths) -> frozenset[str]:
    """Repositories (owner/name, lower case) the router has seen to be public."""
    repos = read_visibility(visibility_path(paths))
    return frozenset(name for name, v in repos.items() if v.get("private") is False)


def record_visibility(path: Path, repo: str, private: bool | None, checked_at: float) -> None:
    """`private` None: the lookup failed; it is not repeated before RECHECK_S."""
    repos = read_visibility(path)
    repos[repo.lower()] = {"private": private, "checked_at": checked_at}
    write_json_atomic(path, {"repos": repos})
