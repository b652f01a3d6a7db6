"""Black-box: the real `gh-fleet` executable on temp git repos (init, new-agent, list, validate,
remove-agent), and the one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git


@pytest.fixture
def fleet_repo(git_repo: Path, run_cli) -> Path:  # type: ignore[no-untyped-def]
    p = run_cli("init", "--name", "demo", cwd=git_repo)
    assert p.returncode == 0, p.stderr
    return git_repo


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if not line.startswith("  hint:")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gh fleet: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_init_new_agent_for_each_role_list_and_validate(fleet_repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    for name, role in [("wms-coder", "coder"), ("wms-rev", "reviewer"), ("boss", "manager")]:
        p = run_cli("new-agent", name, "--role", role, "--repo", "acme/WMS", cwd=fleet_repo)
        assert p.returncode == 0, p.stderr
        assert f"Created agent {name} ({role})" in p.stdout
    p = run_cli("new-agent", "orch", "--role", "orchestrator", "--model", "opus", cwd=fleet_repo)
    assert p.returncode == 0, p.stderr
    p = run_cli("new-agent", "helper", "--role", "base", "--no-commit", cwd=fleet_repo)
    assert p.returncode == 0, p.stderr

    p = run_cli("list", "--json", cwd=fleet_repo)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [r["name"] for r in rows] == ["boss", "helper", "orch", "wms-coder", "wms-rev"]
    assert all(set(r) == {"name", "role", "port", "model", "repo", "backend", "host"} for r in rows)
    assert rows[2] == {
        "name": "orch", "role": "orchestrator", "port": 8804, "model": "opus", "repo": "",
        "backend": "local", "host": "",
    }  # fmt: skip
    table = run_cli("list", cwd=fleet_repo).stdout.splitlines()
    assert table[0].split() == ["NAME", "ROLE", "PORT", "MODEL", "REPO", "BACKEND", "HOST"]

    p = run_cli("validate", cwd=fleet_repo)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "is valid" in p.stdout
    subjects = git(fleet_repo, "log", "--format=%s").splitlines()
    assert subjects == [
        "fleet: +agent orch (orchestrator)",
        "fleet: +agent boss (manager)",
        "fleet: +agent wms-rev (reviewer)",
        "fleet: +agent wms-coder (coder)",
        "fleet: init demo",
    ]
    # --no-commit left helper's files uncommitted, and nothing else
    status = git(fleet_repo, "status", "--porcelain").splitlines()
    assert status == ["?? .fleet/agents/helper/"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-agent", "../x", "--role", "coder"], "invalid agent name '../x'"),
        (["new-agent", "A B", "--role", "coder"], "invalid agent name 'A B'"),
        (["new-agent", "x", "--role", "wizard"], "unknown role 'wizard'"),
        (["new-agent", "x", "--role", "coder", "--repo", "nope"], "invalid repo 'nope'"),
        (["new-agent", "x", "--role", "coder", "--host", "vm"], "unknown host 'vm'"),
        (["new-agent", "dup", "--role", "coder"], "agent 'dup' already exists"),
        (["remove-agent", "ghost"], "no agent named 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    fleet_repo: Path,
    run_cli,
    args: list[str],
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    assert run_cli("new-agent", "dup", "--role", "coder", cwd=fleet_repo).returncode == 0
    before = git(fleet_repo, "rev-parse", "HEAD")
    p = run_cli(*args, cwd=fleet_repo)
    assert p.returncode == 1
    assert message in one_error_line(p.stderr)
    assert git(fleet_repo, "rev-parse", "HEAD") == before
    assert git(fleet_repo, "status", "--porcelain") == ""


def test_a_syntax_error_is_reported_with_file_and_line_and_never_overwritten(
    fleet_repo: Path,
    run_cli,  # type: ignore[no-untyped-def]
) -> None:
    routes = fleet_repo / ".fleet" / "routes.toml"
    text = routes.read_text() + '\n[[watch]]\nname = "x"\nkind = = "issues"\n'
    routes.write_text(text)
    n = len(text.splitlines())
    p = run_cli("new-agent", "x", "--role", "coder", "--repo", "acme/x", cwd=fleet_repo)
    assert p.returncode == 1
    assert one_error_line(p.stderr).startswith(f"gh fleet: .fleet/routes.toml:{n}: ")
    assert routes.read_text() == text
    # A read-only command shows the last committed fleet instead, saying why in one line.
    p = run_cli("list", cwd=fleet_repo)
    assert p.returncode == 0
    warning = p.stderr.strip()
    assert warning.startswith(f"gh fleet: warning: .fleet/routes.toml:{n}: TOML syntax error")
    assert "using the last committed config" in warning and "\n" not in warning
    p = run_cli("validate", cwd=fleet_repo)
    assert p.returncode == 1
    assert p.stdout.startswith(f".fleet/routes.toml:{n}: error: TOML syntax error")
    assert not (fleet_repo / ".fleet" / "agents" / "x").exists()


def test_validate_json_and_remove_agent_with_prune(fleet_repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    run_cli("new-agent", "c", "--role", "coder", "--repo", "acme/x", cwd=fleet_repo)
    p = run_cli("remove-agent", "c", cwd=fleet_repo)
    assert p.returncode == 1 and "--prune-routes" in p.stderr
    p = run_cli("remove-agent", "c", "--prune-routes", cwd=fleet_repo)
    assert p.returncode == 0, p.stderr
    assert not (fleet_repo / ".fleet" / "agents" / "c").exists()
    assert git(fleet_repo, "log", "-1", "--format=%s").strip() == "fleet: -agent c (coder)"
    head = git(fleet_repo, "rev-parse", "--short=7", "HEAD").strip()
    assert f"Committed {head}: fleet: -agent c (coder)" in p.stdout
    p = run_cli("validate", "--json", cwd=fleet_repo)
    assert json.loads(p.stdout) == {"ok": True, "problems": []}


def test_init_and_new_agent_name_the_commit_they_made(git_repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    p = run_cli("init", "--name", "demo", cwd=git_repo)
    head = git(git_repo, "rev-parse", "--short=7", "HEAD").strip()
    assert f"Committed {head}: fleet: init demo" in p.stdout
    p = run_cli("new-agent", "c", "--role", "coder", "--repo", "acme/x", cwd=git_repo)
    head = git(git_repo, "rev-parse", "--short=7", "HEAD").strip()
    assert f"Committed {head}: fleet: +agent c (coder)" in p.stdout
    p = run_cli("new-agent", "d", "--role", "base", "--no-commit", cwd=git_repo)
    assert "Committed" not in p.stdout


def test_init_refuses_to_clobber_without_force(fleet_repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    p = run_cli("init", cwd=fleet_repo)
    assert p.returncode == 1 and "already exists" in one_error_line(p.stderr)
    assert run_cli("init", "--force", "--name", "x", cwd=fleet_repo).returncode == 0


def test_in_process_cli_matches(fleet_repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = cli("new-agent", "z", "--role", "reviewer", "--repo", "acme/z", cwd=fleet_repo)
    assert rc == 0, err
    rc, out, err = cli("list", "--json", cwd=fleet_repo)
    assert json.loads(out)[0]["name"] == "z"
    rc, out, err = cli("new-agent", "Z", "--role", "coder", cwd=fleet_repo)
    assert (rc, err.splitlines()[0][:34]) == (1, "gh fleet: invalid agent name 'Z': ")
