"""`[workspace]` in agent.toml and `[github] clone_url`: parsed strictly, validated across agents,
and scaffolded per role by new-agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayfleet.core.errors import ConfigError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.load import load_fleet
from relayfleet.fleet.model import DEFAULT_CLONE_URL
from relayfleet.fleet.scaffold import init_fleet, new_agent
from relayfleet.fleet.schema import load_fleet_from_texts
from relayfleet.fleet.validate import check_fleet, validate

FLEET = '[fleet]\nname = "demo"\n'
CODER = 'name = "c1"\nrole = "coder"\nrepo = "acme/WMS"\nport = 8801\n'


def load(agent: str = CODER, fleet: str = FLEET, name: str = "c1"):  # type: ignore[no-untyped-def]
    return load_fleet_from_texts({"fleet.toml": fleet, f"agents/{name}/agent.toml": agent})


def test_absent_workspace_is_none_and_defaults_are_per_agent() -> None:
    fleet = load()
    a = fleet.agents["c1"]
    assert a.workspace.mode == "none" and a.workspace.fetch == "on-event"
    assert a.branch_prefix == "fleet/c1/" and a.workspace_repo == "acme/WMS"
    assert fleet.clone_url == DEFAULT_CLONE_URL


def test_a_full_workspace_table_and_a_clone_url() -> None:
    fleet = load(
        CODER + '[workspace]\nmode = "worktree"\nrepo = "acme/Other"\n'
        'branch_prefix = "bots/c1/"\nfetch = "never"\n',
        FLEET + '[github]\nclone_url = "file:///srv/git/{repo}.git"\n',
    )
    ws = fleet.agents["c1"].workspace
    assert (ws.mode, ws.repo, ws.branch_prefix, ws.fetch) == (
        "worktree",
        "acme/Other",
        "bots/c1/",
        "never",
    )
    assert fleet.agents["c1"].workspace_repo == "acme/Other"
    assert fleet.clone_url == "file:///srv/git/{repo}.git"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('mode = "copy"', 'workspace.mode: "copy" is not one of clone, worktree, none'),
        ('fetch = "always"', 'workspace.fetch: "always" is not one of on-event, on-start, never'),
        ('repo = "nope"', 'workspace.repo: "nope" is not owner/name'),
        ('branch_prefix = "a b/"', 'workspace.branch_prefix: "a b/" is not a branch prefix'),
        ('branch_prefix = "fleet/c1"', "is not a branch prefix"),  # must end in /
        ('branch_prefix = "x/../y/"', "is not a branch prefix"),
        ("colour = 1", "workspace.colour: unknown key"),
    ],
)
def test_bad_workspace_values_name_file_line_and_key(table: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(CODER + "[workspace]\n" + table + "\n")
    assert message in str(e.value)
    assert str(e.value).startswith(".fleet/agents/c1/agent.toml:6:")


def test_clone_needs_a_repo_and_clone_url_needs_the_placeholder() -> None:
    with pytest.raises(ConfigError, match=r'workspace\.repo: required when mode = "clone"'):
        load('name = "c1"\nrole = "coder"\nport = 8801\n[workspace]\nmode = "clone"\n')
    with pytest.raises(ConfigError, match=r"github.clone_url: .* has no \{repo\}"):
        load(fleet=FLEET + '[github]\nclone_url = "https://ghe.example.com/x.git"\n')


def test_two_agents_on_one_repo_never_share_a_branch_prefix() -> None:
    def agent(name: str, port: int, prefix: str) -> str:
        return (
            f'name = "{name}"\nrole = "coder"\nrepo = "acme/WMS"\nport = {port}\n'
            f'[workspace]\nmode = "clone"\nbranch_prefix = "{prefix}"\n'
        )

    texts = {
        "fleet.toml": FLEET,
        "agents/a1/agent.toml": agent("a1", 8801, "fleet/a/"),
        "agents/a2/agent.toml": agent("a2", 8802, "fleet/a/b/"),
    }
    problems = check_fleet(load_fleet_from_texts(texts), texts)
    assert [p.message for p in problems] == [
        "workspace.branch_prefix: 'fleet/a/b/' overlaps a1's 'fleet/a/' on the same repo"
        " (two agents never share a branch)"
    ]
    texts["agents/a2/agent.toml"] = agent("a2", 8802, "fleet/a2/")
    assert check_fleet(load_fleet_from_texts(texts), texts) == []
    # The default prefixes (fleet/<name>/) never overlap.
    texts["agents/a1/agent.toml"] = agent("a1", 8801, "").replace('branch_prefix = ""\n', "")
    texts["agents/a2/agent.toml"] = agent("a2", 8802, "").replace('branch_prefix = ""\n', "")
    assert check_fleet(load_fleet_from_texts(texts), texts) == []


def test_new_agent_scaffolds_clone_for_coder_and_reviewer_none_for_manager(
    git_repo: Path,
) -> None:
    paths = FleetPaths(init_fleet(git_repo, name="demo"))
    for name, role, repo in [
        ("c1", "coder", "acme/WMS"),
        ("r1", "reviewer", "acme/WMS"),
        ("m1", "manager", "acme/WMS"),
        ("o1", "orchestrator", None),
        ("c2", "coder", None),  # no repo yet: nothing to clone
    ]:
        new_agent(paths, name, role, repo=repo)
    fleet = load_fleet(paths)
    modes = {n: (a.workspace.mode, a.branch_prefix) for n, a in fleet.agents.items()}
    assert modes == {
        "c1": ("clone", "fleet/c1/"),
        "r1": ("clone", "fleet/r1/"),
        "m1": ("none", "fleet/m1/"),
        "o1": ("worktree", "fleet/o1/"),
        "c2": ("none", "fleet/c2/"),
    }
    assert validate(paths) == []
    # The personas say where the session works and how its branches are named.
    orch = " ".join(paths.persona("o1").read_text().split())
    assert "your own git worktree of the fleet's repository" in orch
    assert "git switch -c fleet/o1/<short-topic> origin/main" in orch
    assert "gh fleet validate" in orch and "gh fleet diff main" in orch and "gh pr create" in orch
    assert "starts with `fleet/c1/`" in " ".join(paths.persona("c1").read_text().split())


def test_a_worktree_of_the_fleets_own_repository_needs_a_local_agent() -> None:
    texts = {
        "fleet.toml": FLEET + '[hosts.vm]\nbackend = "ssh"\nhost = "u@h"\n',
        "agents/o1/agent.toml": 'name = "o1"\nrole = "orchestrator"\nport = 8801\n'
        '[runtime]\nbackend = "ssh"\nhost = "vm"\n[workspace]\nmode = "worktree"\n',
    }
    problems = check_fleet(load_fleet_from_texts(texts), texts)
    assert [p.message for p in problems] == [
        "workspace.mode: a worktree of the fleet's own repository needs a local agent (this one"
        ' runs on ssh): set [workspace] repo, or mode = "clone"'
    ]
    texts["agents/o1/agent.toml"] += 'repo = "acme/fleet"\n'
    assert check_fleet(load_fleet_from_texts(texts), texts) == []
