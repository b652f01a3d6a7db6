"""`gh fleet import <seed-dir>`: a fleet written the way the seed tool's README shows becomes a
valid `.fleet/` in one commit, and whatever has no place here is reported, never dropped quietly.
`RELAYFLEET_ROOT` (the seed's variable) finds the fleet like `FLEET_ROOT`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from tests.conftest import RunCli, git

# From the seed README: the routes.json example verbatim, plus one route on a key we lack.
ROUTES = {
    "watches": [
        {"name": "wms-assigned", "kind": "issues", "repo": "acme/WMS",
         "filter": "--search assignee:@me --state open", "poll_sec": 240},
        {"name": "wms-prs", "kind": "pulls", "repo": "acme/WMS",
         "filter": "--state open", "poll_sec": 240},
    ],
    "routes": [
        {"match": {"watch": "wms-assigned"}, "to": ["wms-coder"]},
        {"match": {"watch": "wms-prs"}, "to": ["wms-reviewer"]},
        {"match": {"repo": "acme/WMS", "kind": "pulls", "label": "needs-human"},
         "to": ["manager"]},
        {"match": {"repo": "acme/WMS", "milestone": "v2"}, "to": ["manager"]},
    ],
}  # fmt: skip
FLEET = {
    "name": "my-fleet",
    "gateway": {"enabled": True, "url": "http://127.0.0.1:8799",
                "secret_env": "RELAYFLEET_GATEWAY_SECRET"},
    "hosts": {"test-vm": {"backend": "ssh", "host": "you@10.0.0.5", "workdir": "/srv/fleet",
                          "os": "linux"}},
    "poll_jitter": 5,
}  # fmt: skip
CREDENTIALS = {  # the seed README's credentials example
    "gh": {"from_command": ["gh", "auth", "token"], "as_env": "GH_TOKEN"},
    "openai": {"from_env": "OPENAI_API_KEY"},
    "sshkey": {"from_file": "~/.ssh/id_ed25519", "as_file": "~/.ssh/id_ed25519", "mode": "0600"},
}
AGENTS: dict[str, dict[str, Any]] = {
    "wms-coder": {"name": "wms-coder", "role": "coder", "repo": "acme/WMS", "model": "sonnet",
                  "port": 8801, "plugins": ["inbox"], "credentials": CREDENTIALS},
    "wms-reviewer": {"name": "wms-reviewer", "role": "reviewer", "repo": "acme/WMS",
                     "port": 8802, "runtime": {"backend": "docker"}},
    "manager": {"name": "manager", "role": "manager", "repo": "acme/CustomerSupport",
                "port": 8802,
                "claude": {"endpoint": {"mode": "custom", "url": "http://127.0.0.1:11434"}}},
    "vm-coder": {"name": "vm-coder", "role": "coder", "repo": "acme/X", "port": 8804,
                 "runtime": {"backend": "ssh", "host": "test-vm", "inbox_transport": "ssh"},
                 "session_log_max": 1000},
}  # fmt: skip


def write_seed(seed: Path) -> None:
    (seed / "fleet.json").parent.mkdir(parents=True)
    (seed / "fleet.json").write_text(json.dumps(FLEET, indent=2))
    (seed / "routes.json").write_text(json.dumps(ROUTES, indent=2))
    for name, cfg in AGENTS.items():
        d = seed / "agents" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(cfg, indent=2))
        if name != "vm-coder":
            (d / "CLAUDE.md").write_text(f"# {name}\n\nYou are {name}, from the seed.\n")
    (seed / "agents" / "wms-coder" / "state").mkdir()
    (seed / "agents" / "wms-coder" / "state" / "inbox.jsonl").write_text('{"id": "e1"}\n')
    for plugin in ("inbox", "notes"):
        d = seed / "plugins" / plugin
        d.mkdir(parents=True)
        (d / "plugin.json").write_text(json.dumps({"name": plugin, "entry": "plugin.py"}))
        (d / "plugin.py").write_text("async def setup(api):\n    pass\n")


def toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def test_a_seed_fleet_imports_in_one_commit_and_reports_what_it_could_not_carry(
    tmp_path: Path, git_repo: Path, run_cli: RunCli
) -> None:
    seed = tmp_path / "seed"
    write_seed(seed)
    (git_repo / "README.md").write_text("mine\n")
    git(git_repo, "add", "README.md")
    git(git_repo, "commit", "-q", "-m", "initial")
    (git_repo / "notes.txt").write_text("unstaged, not part of the import\n")

    proc = run_cli("import", str(seed), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "fleet my-fleet: 4 agent(s)" in out and "2 watch(es), 3 route(s)" in out
    # Reported, one line each: unknown keys, the route left out whole, state, plugins, ports.
    for expected in (
        "fleet.json: `poll_jitter` has no counterpart here",
        "routes.json routes[3]: match key `milestone` is not known here; the route was LEFT OUT",
        "agents/vm-coder/config.json: `session_log_max` has no counterpart here",
        "agents/vm-coder: no CLAUDE.md; its role's persona was written",
        "agents/wms-coder/state/: its inbox and logs are not imported",
        "agents/wms-reviewer: port 8802 is taken; a new one is allocated",
        "plugins/notes: copied to .fleet/plugins/notes/",
    ):
        assert expected in out, out
    assert "plugins/inbox" not in out

    # One commit, only .fleet/ paths; the user's own files untouched.
    assert git(git_repo, "rev-list", "--count", "HEAD").strip() == "2"
    changed = git(git_repo, "show", "--name-only", "--format=", "HEAD").split()
    assert changed and all(p.startswith(".fleet/") for p in changed)
    assert ".fleet/plugins/notes/plugin.py" in changed
    head = git(git_repo, "rev-parse", "--short=7", "HEAD").strip()
    assert f"Committed {head}: fleet: import seed fleet my-fleet" in out
    assert "notes.txt" in git(git_repo, "status", "--porcelain")

    fleet = git_repo / ".fleet"
    ft = toml(fleet / "fleet.toml")
    assert ft["gateway"]["listen"] == "127.0.0.1:8799" and ft["gateway"]["enabled"] is True
    assert ft["hosts"]["test-vm"]["host"] == "you@10.0.0.5"
    coder = toml(fleet / "agents" / "wms-coder" / "agent.toml")
    assert coder["credentials"]["openai"] == {"from_env": "OPENAI_API_KEY",
                                              "as_env": "OPENAI_API_KEY"}  # fmt: skip
    assert coder["credentials"]["sshkey"]["as_file"] == "~/.ssh/id_ed25519"
    assert "from the seed" in (fleet / "agents" / "wms-coder" / "CLAUDE.md").read_text()
    manager = toml(fleet / "agents" / "manager" / "agent.toml")
    assert manager["claude"]["endpoint"]["url"] == "http://127.0.0.1:11434"
    vm = toml(fleet / "agents" / "vm-coder" / "agent.toml")
    assert vm["runtime"] == {"backend": "ssh", "host": "test-vm", "inbox_transport": "ssh"}
    assert not (fleet / "agents" / "wms-coder" / "state").exists()

    # The result is a fleet this tool accepts as it is.
    assert run_cli("validate", cwd=git_repo).returncode == 0
    listing = json.loads(run_cli("list", "--json", cwd=git_repo).stdout)
    ports = {a["name"]: a["port"] for a in listing}
    assert ports["wms-coder"] == 8801 and ports["manager"] == 8802
    assert len(set(ports.values())) == 4
    gate = json.loads(run_cli("route", "--json", cwd=git_repo).stdout)
    assert [r["to"] for r in gate["routes"]] == [["wms-coder"], ["wms-reviewer"], ["manager"]]
    assert gate["routes"][2]["match"]["label"] == ["needs-human"]

    # RELAYFLEET_ROOT finds it from anywhere, like FLEET_ROOT.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("list", "--json", cwd=elsewhere, env={"RELAYFLEET_ROOT": str(git_repo)})
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 4

    # A second import into the same repository is refused, nothing changed.
    again = run_cli("import", str(seed), cwd=git_repo)
    assert again.returncode == 1 and "a fleet already exists" in again.stderr
    assert git(git_repo, "rev-list", "--count", "HEAD").strip() == "2"


def test_a_seed_that_would_be_invalid_is_refused_before_anything_is_written(
    tmp_path: Path, git_repo: Path, run_cli: RunCli
) -> None:
    seed = tmp_path / "seed"
    (seed / "agents" / "a").mkdir(parents=True)
    (seed / "fleet.json").write_text('{"name": "x"}')
    (seed / "routes.json").write_text('{"routes": [{"match": {}, "to": ["ghost"]}]}')
    (seed / "agents" / "a" / "config.json").write_text('{"role": "coder", "port": 8801}')
    proc = run_cli("import", str(seed), cwd=git_repo)
    assert proc.returncode == 1 and "would not be valid" in proc.stderr and "ghost" in proc.stderr
    assert not (git_repo / ".fleet").exists()

    proc = run_cli("import", str(tmp_path / "nope"), cwd=git_repo)
    assert proc.returncode == 1 and "not a directory" in proc.stderr
