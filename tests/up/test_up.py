"""`gh fleet up` follows git: a real fleet repo, the fake GitHub streaming issues, and `up` as a
real process. Commits add, change and remove agents and routes while events flow; an invalid
commit is refused while the last good config keeps delivering; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from upkit import (
    REPO,
    TOKEN,
    Fleet,
    Streamer,
    Up,
    cli,
    env_for,
    git,
    origin_and_clone,
    pid_alive,
    route_toml,
    wait_until,
    watch_toml,
)

from relayfleet.core.atomic import write_json_atomic
from relayfleet.core.procs import process_start_time
from relayfleet.fakes.github import FakeGitHub
from relayfleet.up.supervisor import describe_drift, drift, up_state_path


def no_duplicates(events: list[dict]) -> None:
    ids = Counter(e["id"] for e in events)
    keys = Counter(e["metadata"]["dedup_key"] for e in events)
    assert [i for i, n in ids.items() if n > 1] == []
    assert [k for k, n in keys.items() if n > 1] == []


def contiguous(numbers: list[int]) -> bool:
    """Once an agent starts receiving a stream of new issues, it misses none of them."""
    return bool(numbers) and sorted(numbers) == list(range(min(numbers), max(numbers) + 1))


@pytest.fixture
def github():
    fake = FakeGitHub(token=TOKEN, login="fleet-bot", poll_interval=1)
    fake.start()
    fake.add_repo(REPO)
    yield fake
    fake.stop()


@pytest.mark.slow
def test_up_reconciles_the_fleet_to_each_commit(tmp_path: Path, github: FakeGitHub) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    fleet.write_routes(watch_toml("app") + route_toml(["coder"], watch="app"))
    first = fleet.commit("fleet: coder")
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(fleet.root, home, FLEET_GITHUB_API_URL=github.base_url, GH_TOKEN=TOKEN)
    up = Up(fleet, env)
    streamer = Streamer(github)
    sessions: set[int] = set()
    try:
        # Arrange: the router and the coder are up, and the router took its snapshot.
        wait_until(lambda: fleet.session_up("coder"), 30)
        wait_until(lambda: fleet.router().get("cycles", 0) >= 1, 30)
        router_pid = fleet.router_pid()
        coder_pid = fleet.runner_pid("coder")
        assert router_pid and coder_pid
        assert "running 1 agent, the router (1 watches, 1 routes)" in up.output
        assert drift(fleet.paths)["in_sync"] is True
        assert drift(fleet.paths)["live_commit"] == first
        rc, out, _ = cli(fleet.root, "status", "--json")
        status = json.loads(out)
        assert rc == 0 and status["up"]["in_sync"] is True
        assert status["router"]["running"] and status["router"]["pid"] == router_pid
        [coder] = status["agents"]
        assert coder["running"] and coder["pid"] == coder_pid and coder["delivery"] == "pty"
        streamer.start()
        wait_until(lambda: len(fleet.inbox_numbers("coder")) >= 2, 20)

        # A new agent (and a route to it) is one commit: it starts; nothing else restarts.
        fleet.write_agent("reviewer", 8802)
        fleet.write_routes(
            watch_toml("app") + route_toml(["coder"], watch="app") + route_toml(["reviewer"])
        )
        mark = len(up.output)
        fleet.commit("fleet: add reviewer")
        wait_until(lambda: fleet.session_up("reviewer"), 30)
        wait_until(lambda: up.said("+reviewer", mark), 10)
        wait_until(lambda: len(fleet.inbox_numbers("reviewer")) >= 3, 20)
        assert fleet.runner_pid("coder") == coder_pid
        assert fleet.router_pid() == router_pid  # routes are reloaded, not restarted
        reviewer_pid = fleet.runner_pid("reviewer")

        # A changed agent.toml restarts that agent only.
        fleet.write_agent("coder", 8801, ack_timeout_sec=300)
        mark = len(up.output)
        fleet.commit("fleet: coder acks slower")
        wait_until(lambda: up.said("~coder", mark), 20)
        wait_until(lambda: fleet.runner_pid("coder") not in (None, coder_pid), 30)
        assert fleet.runner_pid("reviewer") == reviewer_pid
        assert fleet.router_pid() == router_pid

        # An invalid commit is refused with a clear message; the last good config keeps going.
        good = git(fleet.root, "rev-parse", "HEAD").strip()
        # (A typo in a route's `to`: TOML-valid, so the router must refuse it as `up` does, or
        # the coder would silently stop receiving.)
        fleet.write_routes(
            watch_toml("app") + route_toml(["coderr"], watch="app") + route_toml(["reviewer"])
        )
        mark = len(up.output)
        fleet.commit("fleet: broken routes")
        wait_until(lambda: up.said("refused the change", mark), 20)
        assert ".fleet/routes.toml:" in up.output[mark:]
        assert "no agent named 'coderr'" in up.output[mark:]
        wait_until(lambda: up.said("config not reloaded", mark), 20)  # the router agrees
        assert f"still running {good[:7]}" in up.output[mark:]
        before = len(fleet.inbox_numbers("coder"))
        wait_until(lambda: len(fleet.inbox_numbers("coder")) >= before + 3, 20)
        d = drift(fleet.paths)
        assert d["running"] and not d["in_sync"] and d["live_commit"] == good
        assert "routes.toml" in d["refused"]
        assert "DRIFT" in describe_drift(d)
        assert fleet.router_pid() == router_pid
        assert fleet.runner_pid("reviewer") == reviewer_pid

        # Fixing it and removing the reviewer: it stops, its session with it.
        sessions = {fleet.runner(n)["session_pid"] for n in ("coder", "reviewer")}
        fleet.write_routes(watch_toml("app") + route_toml(["coder"], watch="app"))
        (fleet.paths.agent_dir("reviewer") / "agent.toml").unlink()
        (fleet.paths.agent_dir("reviewer") / "CLAUDE.md").unlink()
        mark = len(up.output)
        last = fleet.commit("fleet: remove reviewer")
        wait_until(lambda: up.said("-reviewer", mark), 20)
        wait_until(lambda: not pid_alive(reviewer_pid), 20)
        reviewer_session = fleet.runner("reviewer").get("session_pid")
        wait_until(lambda: not pid_alive(reviewer_session), 10)
        assert fleet.runner_pid("coder") is not None
        wait_until(lambda: drift(fleet.paths).get("in_sync"), 10)
        assert drift(fleet.paths)["live_commit"] == last
        after_removal = len(fleet.inbox_numbers("coder"))
        wait_until(lambda: len(fleet.inbox_numbers("coder")) >= after_removal + 2, 20)
    finally:
        streamer.stop()
        pids = [fleet.router_pid(), fleet.runner_pid("coder"), fleet.runner_pid("reviewer")]
        sessions |= {fleet.runner(n).get("session_pid") for n in ("coder", "reviewer")}
        rc = up.interrupt(30) if up.proc.poll() is None else up.proc.returncode
        up.kill()

    # Ctrl-C stopped everything: no router, runner or session survives (checked in /proc).
    assert rc == 130, up.output[-2000:]
    assert "stopped; nothing left running" in up.output
    for pid in [*pids, *sessions]:
        assert not pid_alive(pid), f"pid {pid} survived"
    assert not up_state_path(fleet.paths).exists()
    assert drift(fleet.paths) == {"running": False}

    # No delivery was lost or repeated across every reload, restart and refusal.
    coder = fleet.inbox_events("coder")
    no_duplicates(coder)
    assert contiguous(fleet.inbox_numbers("coder"))
    reviewer = fleet.inbox_events("reviewer")
    no_duplicates(reviewer)
    assert contiguous(fleet.inbox_numbers("reviewer"))
    # The reviewer got only what happened while it was routed: a subset of the coder's stream.
    assert set(fleet.inbox_numbers("reviewer")) < set(fleet.inbox_numbers("coder"))


@pytest.mark.slow
def test_pull_fast_forwards_and_a_pushed_agent_starts_by_itself(tmp_path: Path) -> None:
    other, fleet = origin_and_clone(tmp_path)  # other: where a pull request is merged
    home = tmp_path / "home"
    home.mkdir()
    up = Up(fleet, env_for(fleet.root, home), "--pull", "1s", "--no-router")
    try:
        wait_until(lambda: up.said("running 0 agents"), 30)
        # A second `up` for the same fleet is refused (it would start every agent twice).
        rc, _, err = cli(fleet.root, "up")
        assert rc == 1 and "already running" in err

        other.write_agent("ops", 8805)
        pushed = other.commit("fleet: add ops")
        git(other.root, "push", "-q", "origin", "main")

        wait_until(lambda: fleet.session_up("ops"), 30)
        assert git(fleet.root, "rev-parse", "HEAD").strip() == pushed
        assert "pulled" in up.output and "+ops" in up.output
        assert drift(fleet.paths)["live_commit"] == pushed
        # A runner that dies (kill -9) is restarted, and its orphaned session is reaped.
        ops_pid = fleet.runner_pid("ops")
        session = fleet.runner("ops")["session_pid"]
        os.kill(ops_pid, signal.SIGKILL)
        wait_until(lambda: up.said("restarting in 1s"), 10)
        wait_until(lambda: not pid_alive(session), 10)
        wait_until(lambda: fleet.runner_pid("ops") not in (None, ops_pid), 30)
        wait_until(lambda: fleet.session_up("ops"), 30)
        ops_pid, session = fleet.runner_pid("ops"), fleet.runner("ops")["session_pid"]

        up.proc.send_signal(signal.SIGTERM)
        rc = up.wait(30)
    finally:
        up.kill()
    assert rc == 143
    assert not pid_alive(ops_pid) and not pid_alive(session)


def test_up_refuses_to_start_an_invalid_fleet(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_routes('[[route]]\nto = ["ghost"]\n[route.match]\nwatch = "nope"\n')
    fleet.commit("fleet: broken")
    rc, out, err = cli(fleet.root, "up")
    assert rc == 1
    assert "gh fleet: the fleet's config is invalid, nothing was started" in err
    assert "routes.toml" in err
    assert "started" not in out


def test_up_names_unknown_agents_and_bad_intervals(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    fleet.commit("fleet: coder")
    rc, _, err = cli(fleet.root, "up", "ghost")
    assert rc == 1 and "no agent named 'ghost'" in err and "coder" in err
    rc, _, err = cli(fleet.root, "up", "--pull", "soon")
    assert rc == 2 and "not an interval" in err


def test_drift_compares_what_runs_with_head(tmp_path: Path) -> None:
    fleet = Fleet.create(tmp_path / "repo")
    fleet.write_agent("coder", 8801)
    head = fleet.commit("fleet: coder")
    assert drift(fleet.paths) == {"running": False}
    from relayfleet.up.supervisor import fleet_digest

    state = {
        "pid": os.getpid(),
        "pid_start": process_start_time(os.getpid()),
        "live_commit": head,
        "fleet_digest": fleet_digest(fleet.paths),
        "uncommitted": [],
        "agents": {"coder": "x"},
        "refused": None,
    }
    write_json_atomic(up_state_path(fleet.paths), state)
    d = drift(fleet.paths)
    assert d["in_sync"] and d["live_commit"] == head == d["head_commit"]
    assert describe_drift(d).endswith("= HEAD (in sync)")
    rc, out, _ = cli(fleet.root, "status")
    assert rc == 0 and f"live {head[:7]} = HEAD (in sync)" in out

    # HEAD moves on (a commit `up` has not applied): drift, naming the new HEAD.
    fleet.write_agent("reviewer", 8802)
    new = fleet.commit("fleet: reviewer")
    d = drift(fleet.paths)
    assert not d["in_sync"] and d["head_commit"] == new and d["pending_change"]
    assert f"HEAD is {new[:7]}" in describe_drift(d)

    # A pid that is not running any more: `up` is not running.
    write_json_atomic(up_state_path(fleet.paths), {**state, "pid_start": "0"})
    assert drift(fleet.paths) == {"running": False}
