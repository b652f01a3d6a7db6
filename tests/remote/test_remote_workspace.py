"""An ssh agent's workspace is made on its host, the same way: a clone on its own branch, from
`[github] clone_url` (a local bare repository standing in for GitHub), pushed to with the agent's
declared credential only, and `gh fleet` on the session's PATH there."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import remote_support as rs

from tests.workspace.gitkit import IDENTITY, make_origin, sh

pytestmark = pytest.mark.slow

AGENT_TOKEN = "agent-token-declared-0000"
OPERATOR_TOKEN = "operator-token-must-stay-home-0000"
WORK = """\
git switch -q -c fleet/coder/fix-12 &&
echo fixed > fix.txt && git add fix.txt &&
git -c user.name=T -c user.email=t@example.com commit -q -m 'fix #12' &&
git push -q -u origin HEAD &&
echo "token=$GH_TOKEN" && gh fleet --version && echo wip > wip.txt
"""


def shells(path: Path) -> list[dict]:  # type: ignore[type-arg]
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [r for r in map(json.loads, lines) if r.get("type") == "shell"]


def test_an_ssh_agent_works_and_pushes_in_a_clone_on_its_host(
    sshd: rs.Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in IDENTITY.items():
        monkeypatch.setenv(k, v)
    origin = tmp_path / "gh"
    bare = make_origin(origin, "acme/WMS")
    root, workdir = tmp_path / "op", tmp_path / "w"
    transcript = tmp_path / "t.jsonl"
    spec = rs.fake_claude_agent(transcript, "ssh", "vm", "ssh", 8841)
    spec["claude"]["args"] += ["--fake-turn-shell", WORK]  # type: ignore[index]
    spec["repo"] = "acme/WMS"
    spec["workspace"] = {"mode": "clone"}
    spec["credentials"] = {"gh": {"from_env": "RF_AGENT_GH", "as_env": "GH_TOKEN"}}
    name = f"ws{os.getpid() % 10000}"
    rs.ssh_fleet(root, sshd, workdir, name=name, agents={"coder": spec})
    with (root / ".fleet" / "fleet.toml").open("a") as f:
        f.write(f'\n[github]\nclone_url = "{origin}/{{repo}}.git"\n')
    sh(root, "init", "-q", "-b", "main")  # the fleet is code: remove-agent commits
    sh(root, "add", ".fleet")
    sh(root, "commit", "-q", "-m", "fleet")
    monkeypatch.setenv("RF_AGENT_GH", AGENT_TOKEN)
    monkeypatch.setenv("GH_TOKEN", OPERATOR_TOKEN)  # the operator's own: never the agent's

    rc, out, err = rs.cli(root, "start", "coder")
    assert rc == 0, err
    try:
        rs.wait_until(lambda: rs.transcript_ready(transcript), 60)
        rc, out, err = rs.cli(root, "tell", "coder", "please", "fix-12")
        assert rc == 0, err
        rs.wait_until(lambda: shells(transcript), 60)
        (shell,) = shells(transcript)
        here = rs.remote_state(workdir, root, name) / "workspace"
        assert shell["cwd"] == str(here), shell
        assert shell["rc"] == 0, shell["output"]
        assert f"token={AGENT_TOKEN}" in shell["output"]
        assert OPERATOR_TOKEN not in shell["output"]
        assert "0." in shell["output"].splitlines()[-1]  # `gh fleet --version` on the host
        assert sh(bare, "log", "--format=%s", "fleet/coder/fix-12").splitlines() == [
            "fix #12",
            "first",
        ]
        rc, out, _ = rs.cli(root, "status", "--json")
        (row,) = json.loads(out)["agents"]
        w = row["workspace"]
        assert (w["mode"], w["path"], w["branch"]) == ("clone", str(here), "fleet/coder/work")
        assert w["dirty"] is False
    finally:
        rs.cli(root, "stop", "coder")
    # remove-agent asks the host: the uncommitted file there makes it refuse; --force removes.
    rc, out, err = rs.cli(root, "remove-agent", "coder")
    assert rc == 1
    assert "workspace on host 'vm' holds work that is not pushed: uncommitted wip.txt" in err
    assert here.is_dir() and (root / ".fleet/agents/coder").is_dir()
    rc, out, err = rs.cli(root, "remove-agent", "coder", "--force")
    assert rc == 0, err
    assert not here.exists() and "its workspace on host 'vm' is removed" in out


def test_a_docker_agent_works_and_pushes_in_a_clone_in_its_container(
    dockerd: rs.Dockerd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in IDENTITY.items():
        monkeypatch.setenv(k, v)
    origin = tmp_path / "gh"
    bare = make_origin(origin, "acme/WMS")
    root = tmp_path / "op"
    transcript = root / ".fleet/state/agents/coder/transcript.jsonl"  # bind-mounted
    spec = rs.fake_claude_agent(
        transcript, "docker", "engine", "file", 8842, image=rs.SKELETON_IMAGE
    )
    spec["claude"]["args"] += ["--fake-turn-shell", WORK]  # type: ignore[index]
    spec["repo"] = "acme/WMS"
    spec["workspace"] = {"mode": "clone"}
    spec["credentials"] = {"gh": {"from_env": "RF_AGENT_GH", "as_env": "GH_TOKEN"}}
    rs.write_fleet(
        root,
        name=f"wd{os.getpid() % 10000}",
        hosts={"engine": {"backend": "docker", "host": dockerd.base_url}},
        agents={"coder": spec},
    )
    with (root / ".fleet" / "fleet.toml").open("a") as f:
        f.write(f'\n[github]\nclone_url = "{origin}/{{repo}}.git"\n')
    # The skeleton image borrows this machine's /usr (git included) and venv; the stand-in
    # GitHub is mounted where the clone URL says.
    mounts = [*rs.runner_mounts(), f"{origin}:{origin}"]
    monkeypatch.setenv("FLEET_DOCKER_MOUNTS", ",".join(mounts))
    monkeypatch.setenv("RF_AGENT_GH", AGENT_TOKEN)
    monkeypatch.setenv("GH_TOKEN", OPERATOR_TOKEN)

    rc, out, err = rs.cli(root, "start", "coder")
    assert rc == 0, err
    try:
        rs.wait_until(lambda: rs.transcript_ready(transcript), 180)
        rc, out, err = rs.cli(root, "tell", "coder", "please", "fix-12")
        assert rc == 0, err
        rs.wait_until(lambda: shells(transcript), 90)
        (shell,) = shells(transcript)
        here = root / ".fleet/state/agents/coder/workspace"
        assert shell["cwd"] == str(here), shell
        assert shell["rc"] == 0, shell["output"]
        assert f"token={AGENT_TOKEN}" in shell["output"]
        assert OPERATOR_TOKEN not in shell["output"]
        assert sh(bare, "log", "--format=%s", "fleet/coder/fix-12").splitlines() == [
            "fix #12",
            "first",
        ]
        rc, out, _ = rs.cli(root, "status", "--json")
        (row,) = json.loads(out)["agents"]
        assert row["workspace"]["branch"] == "fleet/coder/work"
    finally:
        rs.cli(root, "stop", "coder")
