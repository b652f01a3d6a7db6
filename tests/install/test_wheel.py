"""A wheel (not an editable install) works on its own: built from a copy of the source, installed
into a fresh venv, then `init`, `new-agent` and a runner that loads the bundled `inbox` plugin,
all from that install and from a directory far from the checkout.

Offline: the build uses the dev venv's setuptools (no build isolation), and the fresh venv
reaches the pinned dependencies through a path entry to the dev venv's site-packages (a plain
path, so the dev venv's editable-install hook is never loaded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import PROJECT, git_env
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "relayfleet", "plugins")


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_a_wheel_install_scaffolds_and_runs_an_agent_with_the_bundled_inbox_plugin(
    tmp_path: Path, home: Path
) -> None:
    env = git_env(home)
    env.pop("PYTHONPATH", None)
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        p = PROJECT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(src)], tmp_path, env)  # fmt: skip
    (wheel,) = dist.glob("relayfleet-*.whl")
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True
    ).stdout
    assert "relayfleet/bundled_plugins/inbox/plugin.py" in names
    assert "relayfleet/templates/agent.toml" in names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    site = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               tmp_path, env).strip()  # fmt: skip
    (Path(site) / "dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        tmp_path, env)  # fmt: skip
    probe = "import relayfleet.core.paths as p; print(p.package_dir(), p.bundled_plugins_dir())"
    where = run([str(py), "-c", probe], tmp_path, env)
    package, plugins = where.split()
    assert package.startswith(str(venv)) and plugins.startswith(str(venv)), where

    gh_fleet = str(venv / "bin" / "gh-fleet")
    repo = tmp_path / "work"
    repo.mkdir()
    run([gh_fleet, "init", "--name", "wheel"], repo, env)
    out = run([gh_fleet, "new-agent", "coder", "--role", "coder", "--repo", "acme/app"], repo, env)
    assert "Committed " in out
    # The session: a tiny program in place of `claude`; the credential: from the environment.
    toml = repo / ".fleet" / "agents" / "coder" / "agent.toml"
    session = tmp_path / "session.py"
    session.write_text("import sys\nfor line in sys.stdin:\n    print(line, flush=True)\n")
    text = toml.read_text().replace('command = ["claude"]', f'command = ["{py}", "{session}"]')
    text = text.replace('engine = "claude"', 'engine = "command"')
    text = text.replace('from_command = ["gh", "auth", "token"]', 'from_env = "WHEEL_TOKEN"')
    # Offline: nothing to clone (the scaffold gives a coder a clone of its repo).
    assert 'mode = "clone"' in text
    text = text.replace('mode = "clone"', 'mode = "none"')
    assert 'plugins = ["inbox"]' in text
    toml.write_text(text)
    env["WHEEL_TOKEN"] = "not-a-secret"
    try:
        run([gh_fleet, "start", "coder"], repo, env, timeout=120)
        status = json.loads(run([gh_fleet, "status", "--json"], repo, env))
        (coder,) = status["agents"]
        assert coder["running"] and coder["plugins"] == ["inbox"], coder
        assert coder["plugin_errors"] == []
        run([gh_fleet, "tell", "coder", "hello from a wheel"], repo, env)
        log = repo / ".fleet" / "state" / "agents" / "coder" / "session.log"
        wait_until(lambda: log.exists() and "hello from a wheel" in log.read_text(), 30)
    finally:
        subprocess.run([gh_fleet, "stop", "coder"], cwd=repo, env=env, capture_output=True,
                       timeout=60)  # fmt: skip
    assert os.path.isdir(plugins)
