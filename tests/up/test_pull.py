"""`up --pull`: no upstream is refused up front; a failing pull is said once, with git's whole
reason and a hint, again only when the reason changes, and shows in `status` and `--json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from upkit import Fleet, Up, cli, env_for, git, origin_and_clone, wait_until

from relayfleet.core.errors import FleetError
from relayfleet.up.pull import Puller, upstream_of


def push_routes(laptop: Fleet, text: str) -> str:
    laptop.write_routes(text)
    sha = laptop.commit("fleet: routes")
    git(laptop.root, "push", "-q", "origin", "main")
    return sha


def test_no_upstream_is_refused_before_anything_starts(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_routes("")
    fleet.commit("fleet: empty")
    with pytest.raises(FleetError, match="branch 'main' has no upstream") as info:
        upstream_of(fleet.root)
    assert any("--set-upstream-to origin/main" in h for h in info.value.hints)
    rc, _, err = cli(fleet.root, "up", "--pull", "1s", "--no-router")
    assert rc == 1 and "has no upstream" in err and "hint: set one" in err
    assert not (fleet.paths.state / "up.json").exists()


def test_a_failing_pull_keeps_the_whole_reason_and_reports_it_once(tmp_path: Path) -> None:
    laptop, server = origin_and_clone(tmp_path)
    assert upstream_of(server.root) == "origin/main"
    puller = Puller(server.root, "origin/main")

    # Local edits to a file the upstream changes: git's reason names the file.
    push_routes(laptop, "# from the laptop\n")
    server.write_routes("# edited on the server\n")
    first = puller.pull()
    assert first.error is not None and first.news
    assert first.error.step == "merge"
    assert ".fleet/routes.toml" in first.error.reason
    assert "overwritten" in first.error.reason and "Aborting" in first.error.reason
    assert "commit or stash" in first.error.hint
    again = puller.pull()
    assert again.error == first.error and not again.news  # same reason: not repeated

    # Committing the edit makes the branch diverge: a new reason, reported once more.
    server.commit("fleet: local routes")
    diverged = puller.pull()
    assert diverged.error is not None and diverged.news
    assert "Not possible to fast-forward" in diverged.error.reason
    assert "git pull --rebase" in diverged.error.hint
    assert diverged.error.since >= first.error.since

    # Fixed by hand: the next pull works and says so once.
    git(server.root, "reset", "-q", "--hard", "origin/main")
    pushed = push_routes(laptop, "# newer\n")
    ok = puller.pull()
    assert ok.error is None and ok.news and ok.moved and ok.after == pushed
    assert puller.pull().news is False


@pytest.mark.slow
def test_up_says_a_failing_pull_once_and_status_shows_it(tmp_path: Path) -> None:
    laptop, server = origin_and_clone(tmp_path)
    server.write_routes("# edited on the server\n")  # uncommitted: blocks the fast-forward
    home = tmp_path / "home"
    home.mkdir()
    up = Up(server, env_for(server.root, home), "--pull", "1s", "--no-router")
    try:
        wait_until(lambda: up.said("running 0 agents"), 30)
        push_routes(laptop, "# from the laptop\n")
        wait_until(lambda: up.said("pull: git merge failed"), 30)
        assert up.said(".fleet/routes.toml") and up.said("pull: hint: commit or stash")

        _, out, _ = cli(server.root, "status", "--json")
        err = json.loads(out)["up"]["pull_error"]
        assert err["step"] == "merge" and "overwritten" in err["reason"]
        _, out, _ = cli(server.root, "status")
        assert f"pull failing since {err['since']}: " in out and "(in sync)" not in out

        # A new reason (the edit committed: diverged) is said; the old one was said once.
        server.commit("fleet: local routes")
        wait_until(lambda: up.said("Not possible to fast-forward"), 30)
        assert up.output.count("would be overwritten") == 1
    finally:
        up.kill()
