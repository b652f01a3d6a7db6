"""`gh fleet doctor`: one line per check, ✓/✗, exit 1 on any ✗."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fleet_samples import agent_toml, write_fleet

from relayfleet.fleet.gitops import commit_fleet
from tests.conftest import RunCli


def fake_tool(bin_dir: Path, name: str, version: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(0o755)


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, str]:
    """PATH with fake `claude` and `gh` that print a version, plus the system's basics."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "claude", "2.1.0 (Claude Code)")
    fake_tool(bin_dir, "gh", "gh version 2.99.0 (test)")
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


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
    assert "✗ hosts: agents on unknown hosts: wms-reviewer → 'vm9'" in out
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
