"""Route, watch and host edits keep the user's comments and make one commit each."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_samples import ROUTES_TOML, write_fleet

from relayfleet.core.errors import ConfigError, FleetError, NotFound
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet import edit
from relayfleet.fleet.gitops import commit_fleet
from relayfleet.fleet.load import load_fleet
from tests.conftest import git


@pytest.fixture
def paths(git_repo: Path) -> FleetPaths:
    fleet = write_fleet(git_repo)
    commit_fleet(git_repo, [fleet], "fleet: init")
    return FleetPaths(git_repo)


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "#" in line]


def last_commit_files(repo: Path) -> list[str]:
    return sorted(filter(None, git(repo, "show", "--name-only", "--format=", "HEAD").split("\n")))


def test_add_watch_and_route_keep_every_comment(paths: FleetPaths) -> None:
    before = comments(paths.routes_toml.read_text())

    w = edit.add_watch(paths, "wms-bugs", kind="issues", repo="acme/WMS", filter="--label bug")
    r = edit.add_route(paths, to=["wms-coder"], match={"watch": ["wms-bugs"], "label": "p1,p2"})

    text = paths.routes_toml.read_text()
    assert comments(text) == before
    # The watch joined the other watches, above the routes' section comment; the route is last.
    new_watch = (
        '[[watch]]\nname = "wms-bugs"\nkind = "issues"\nrepo = "acme/WMS"\nfilter = "--label bug"\n'
    )
    assert text.index(new_watch) < text.index("# --- routes ---")
    assert text.replace(new_watch + "\n", "").startswith(ROUTES_TOML)
    fleet = load_fleet(paths)
    assert fleet.watch("wms-bugs") is not None
    assert fleet.routes[-1].match == {"watch": ("wms-bugs",), "label": ("p1", "p2")}
    assert w.message == "fleet: add watch wms-bugs (issues acme/WMS)"
    assert r.message == "fleet: add route #3 (watch=wms-bugs label=p1,p2 → wms-coder)"
    assert git(paths.root, "log", "-2", "--format=%s").splitlines() == [r.message, w.message]
    assert last_commit_files(paths.root) == [".fleet/routes.toml"]


def test_remove_route_keeps_the_comments_of_the_others(paths: FleetPaths) -> None:
    result = edit.remove_route(paths, 1)
    text = paths.routes_toml.read_text()
    assert "# the coder gets its assigned issues" not in text  # went with its route
    assert "# the reviewer gets open PRs" in text
    assert "# --- routes ---" in text and "# --- watches ---" in text
    assert [r.to for r in load_fleet(paths).routes] == [("wms-reviewer",)]
    assert result.message == "fleet: remove route #1 (watch=wms-assigned → wms-coder)"


def test_remove_route_out_of_range(paths: FleetPaths) -> None:
    with pytest.raises(NotFound, match=r"no route #7 \(there are 2"):
        edit.remove_route(paths, 7)


def test_remove_watch_refuses_while_routed_unless_pruned(paths: FleetPaths) -> None:
    original = paths.routes_toml.read_text()
    with pytest.raises(ConfigError, match="used by route #2"):
        edit.remove_watch(paths, "wms-prs")
    assert paths.routes_toml.read_text() == original

    result = edit.remove_watch(paths, "wms-prs", prune_routes=True)

    fleet = load_fleet(paths)
    assert fleet.watch("wms-prs") is None
    assert [r.to for r in fleet.routes] == [("wms-coder",)]
    assert result.message == "fleet: remove watch wms-prs and route #2"
    assert "# the coder gets its assigned issues" in paths.routes_toml.read_text()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "x", "kind": "bogus", "repo": "a/b"}, "invalid kind"),
        ({"name": "x", "kind": "issues", "repo": "nope"}, "expected owner/name"),
        ({"name": "../x", "kind": "issues", "repo": "a/b"}, "invalid watch name"),
        ({"name": "wms-prs", "kind": "issues", "repo": "a/b"}, "already exists"),
        ({"name": "x", "kind": "issues", "repo": "a/b", "filter": "--bogus 1"}, "--bogus"),
    ],
)
def test_bad_watches_are_refused_and_nothing_changes(
    paths: FleetPaths, kwargs: dict[str, str], error: str
) -> None:
    head = git(paths.root, "rev-parse", "HEAD")
    name = kwargs.pop("name")
    with pytest.raises(FleetError, match=error):
        edit.add_watch(paths, name, **kwargs)
    assert paths.routes_toml.read_text() == ROUTES_TOML
    assert git(paths.root, "rev-parse", "HEAD") == head


def test_bad_routes_are_refused(paths: FleetPaths) -> None:
    with pytest.raises(NotFound, match="no agent named 'ghost'"):
        edit.add_route(paths, to=["ghost"], match={"watch": ["wms-prs"]})
    with pytest.raises(NotFound, match="no watch named 'nope'"):
        edit.add_route(paths, to=["wms-coder"], match={"watch": ["nope"]})
    with pytest.raises(FleetError, match="invalid association 'BOSS'"):
        edit.add_route(paths, to=["wms-coder"], match={"association": ["boss"]})
    with pytest.raises(ConfigError, match="route #1 already does that"):
        edit.add_route(paths, to=["wms-coder"], match={"watch": ["wms-assigned"]})
    assert paths.routes_toml.read_text() == ROUTES_TOML


def test_catch_all_route_is_allowed_with_a_warning(paths: FleetPaths) -> None:
    result = edit.add_route(paths, to=["wms-reviewer"], match={}, commit=False)
    assert result.commit is None and "catch-all" in result.warnings[0]
    assert load_fleet(paths).routes[-1].catch_all
    assert git(paths.root, "status", "--porcelain").strip() == "M .fleet/routes.toml"


def test_broken_routes_file_is_never_overwritten(paths: FleetPaths) -> None:
    broken = ROUTES_TOML + "\n[[route]\nto = \n"
    paths.routes_toml.write_text(broken)
    with pytest.raises(ConfigError, match=r"\.fleet/routes\.toml:\d+"):
        edit.add_watch(paths, "x", kind="issues", repo="a/b")
    assert paths.routes_toml.read_text() == broken


def test_hosts_add_and_remove(paths: FleetPaths) -> None:
    before = paths.fleet_toml.read_text()
    result = edit.add_host(
        paths, "vm1", backend="ssh", host="you@10.0.0.5", workdir="/srv/fleet", port=2222
    )
    text = paths.fleet_toml.read_text()
    assert text.startswith(before)  # comments and order kept; the host appended
    host = load_fleet(paths).hosts["vm1"]
    assert (host.backend, host.host, host.port, host.workdir) == (
        "ssh",
        "you@10.0.0.5",
        2222,
        "/srv/fleet",
    )
    assert result.message == "fleet: add host vm1 (ssh you@10.0.0.5)"
    assert last_commit_files(paths.root) == [".fleet/fleet.toml"]

    with pytest.raises(ConfigError, match="already exists"):
        edit.add_host(paths, "vm1", backend="ssh", host="a@b")
    with pytest.raises(FleetError, match="user@address"):
        edit.add_host(paths, "vm2", backend="ssh", host="")
    with pytest.raises(FleetError, match="never the key itself"):
        edit.add_host(paths, "vm2", backend="ssh", host="a@b", key="-----BEGIN OPENSSH")

    edit.remove_host(paths, "vm1")
    assert paths.fleet_toml.read_text() == before
    with pytest.raises(NotFound, match="no host named 'vm1'"):
        edit.remove_host(paths, "vm1")


def test_host_remove_refuses_while_agents_use_it(paths: FleetPaths) -> None:
    edit.add_host(paths, "vm1", backend="ssh", host="you@10.0.0.5")
    agent = paths.agent_toml("wms-coder")
    agent.write_text(agent.read_text() + '\n[runtime]\nbackend = "ssh"\nhost = "vm1"\n')
    with pytest.raises(ConfigError, match="used by agent wms-coder"):
        edit.remove_host(paths, "vm1")
    assert "vm1" in load_fleet(paths).hosts
