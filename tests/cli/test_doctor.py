"""`gh fleet doctor`: one line per check, ✓/✗, exit 1 on any ✗."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_samples import agent_toml, write_fleet

from relayfleet.fakes.github import FakeGitHub
from relayfleet.fleet.gitops import commit_fleet
from tests.conftest import RunCli

TOKEN = "ghp_doctorTestToken"


def fake_tool(bin_dir: Path, name: str, version: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(0o755)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_repo("acme/WMS")
        yield fake


@pytest.fixture
def tools(tmp_path: Path, github: FakeGitHub) -> dict[str, str]:
    """PATH with fake `claude` and `gh` that print a version, plus the system's basics; a token
    for the fake GitHub."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "claude", "2.1.0 (Claude Code)")
    fake_tool(bin_dir, "gh", "gh version 2.99.0 (test)")
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GH_TOKEN": TOKEN,
        "FLEET_GITHUB_API_URL": github.base_url,
    }


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit_fleet(git_repo, [write_fleet(git_repo)], "fleet: init")
    return git_repo


def test_healthy_fleet_passes_every_check(
    repo: Path, run_cli: RunCli, tools: dict[str, str]
) -> None:
    proc = run_cli("doctor", cwd=repo, env=tools)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("✓ claude: 2.1.0 (Claude Code)") for line in lines)
    assert any(line.startswith("✓ gh: gh version 2.99.0 (test)") for line in lines)
    assert any(line.startswith("✓ git: ") and "branch main" in line for line in lines)
    assert any(line.startswith("✓ config: ") for line in lines)
    for name in ("ports", "routes", "hosts"):
        assert any(line.startswith(f"✓ {name}: ") for line in lines), proc.stdout
    assert any(
        line.startswith("✓ github token: valid at http://127.0.0.1:")
        and "scopes: notifications, repo" in line
        and "5000 of 5000 requests left" in line
        for line in lines
    ), proc.stdout
    assert "✓ github repo: acme/WMS: reachable with this token" in lines
    assert not any(line.startswith("✗") for line in lines)


def test_missing_tools_and_broken_topology_fail(
    repo: Path, run_cli: RunCli, tools: dict[str, str]
) -> None:
    os.unlink(tools["PATH"].split(":")[0] + "/claude")
    fleet = repo / ".fleet"
    (fleet / "agents" / "wms-reviewer" / "agent.toml").write_text(
        agent_toml("wms-reviewer", "reviewer", 8801, backend="ssh", host="vm9")
    )
    routes = fleet / "routes.toml"
    routes.write_text(
        routes.read_text() + '\n[[route]]\nto = ["ghost"]\n[route.match]\nkind = "issues"\n'
    )

    proc = run_cli("doctor", cwd=repo, env=tools)

    assert proc.returncode == 1
    out = proc.stdout
    assert "✗ claude: not on PATH" in out
    assert "✓ gh: " in out
    assert "✗ ports: agents share a port (8801: wms-coder, wms-reviewer)" in out
    assert "✗ routes: " in out and "'ghost'" in out
    assert "✗ hosts: agent on an unknown host: wms-reviewer → 'vm9'" in out
    assert "! git .fleet/: 2 uncommitted change(s)" in out
    assert "Traceback" not in proc.stderr


def test_agents_running_another_program_do_not_need_claude_code(
    repo: Path, run_cli: RunCli, tools: dict[str, str]
) -> None:
    bin_dir = Path(tools["PATH"].split(":")[0])
    os.unlink(bin_dir / "claude")
    fake_tool(bin_dir, "my-claude", "0.1")
    for name in ("wms-coder", "wms-reviewer"):
        toml = repo / ".fleet" / "agents" / name / "agent.toml"
        toml.write_text(toml.read_text() + '\n[claude]\ncommand = ["my-claude", "--x"]\n')

    out = run_cli("doctor", cwd=repo, env=tools).stdout

    assert f"✓ claude: wms-coder, wms-reviewer run {bin_dir}/my-claude ([claude] command)" in out
    (repo / ".fleet" / "agents" / "wms-coder" / "agent.toml").write_text(
        agent_toml("wms-coder", "coder", 8801) + '\n[claude]\ncommand = ["nope-claude"]\n'
    )
    out = run_cli("doctor", cwd=repo, env=tools).stdout
    assert "✗ claude: wms-coder: 'nope-claude' not found" in out


def test_doctor_outside_a_fleet(tmp_path: Path, run_cli: RunCli, tools: dict[str, str]) -> None:
    proc = run_cli("doctor", "--json", cwd=tmp_path, env=tools)
    assert proc.returncode == 1
    results = json.loads(proc.stdout)
    config = next(r for r in results if r["name"] == "config")
    assert config["status"] == "fail" and "no fleet here" in config["detail"]
    assert {r["name"] for r in results} >= {"claude", "gh", "config"}


def test_a_crashing_tool_is_not_reported_healthy(
    repo: Path, run_cli: RunCli, tools: dict[str, str]
) -> None:
    claude = Path(tools["PATH"].split(":")[0]) / "claude"
    claude.write_text(
        "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
        "echo 'ModuleNotFoundError: No module named x' >&2\nexit 1\n"
    )
    proc = run_cli("doctor", cwd=repo, env=tools)
    assert proc.returncode == 1
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith(("✓ claude", "✗ claude"))]
    assert line.startswith("✗ claude: `--version` exited 1: ModuleNotFoundError"), line


def test_a_bad_token_and_an_unreachable_repo_fail(
    repo: Path, run_cli: RunCli, tools: dict[str, str], github: FakeGitHub
) -> None:
    proc = run_cli("doctor", cwd=repo, env={**tools, "GH_TOKEN": "bad"})
    assert proc.returncode == 1
    assert f"✗ github token: rejected by {github.base_url}: 401 Bad credentials" in proc.stdout
    assert "ghp_" not in proc.stdout + proc.stderr

    github.not_found_repo("acme/WMS")
    github.add_token("ghp_lowBudget", scopes="")
    github.set_rate_limit(remaining=3)
    proc = run_cli("doctor", cwd=repo, env={**tools, "GH_TOKEN": "ghp_lowBudget"})
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any(x.startswith("! github token: valid") and "scopes: none" in x for x in lines)
    assert "✗ github repo: acme/WMS: not reachable (404 Not Found)" in lines
    # The only requests doctor made: the free /rate_limit and one per repo.
    paths = {r.path for r in github.requests}
    assert paths == {"/rate_limit", "/repos/acme/WMS"}


def test_no_token_at_all_fails_with_a_hint(
    repo: Path, run_cli: RunCli, tools: dict[str, str]
) -> None:
    env = {**tools, "GH_TOKEN": "", "GH_PATH": str(repo / "no-such-gh")}
    proc = run_cli("doctor", cwd=repo, env=env)
    assert proc.returncode == 1
    assert "✗ github token: no GitHub token" in proc.stdout
    assert "hint: run `gh auth login" in proc.stdout


def test_each_route_warning_is_its_own_line(
    repo: Path, run_cli: RunCli, tools: dict[str, str]
) -> None:
    routes = repo / ".fleet" / "routes.toml"
    extra = "".join(
        f'\n[[watch]]\nname = "orphan{i}"\nkind = "issues"\nrepo = "acme/WMS"\n' for i in range(3)
    )
    routes.write_text(routes.read_text() + extra)
    proc = run_cli("doctor", cwd=repo, env=tools)
    warn_lines = [x for x in proc.stdout.splitlines() if x.startswith("! routes: ")]
    assert len(warn_lines) == 3, proc.stdout
    assert all(len(x) < 200 for x in warn_lines)
