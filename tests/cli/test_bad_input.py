"""Black-box: every command meets bad input with ONE line `gh fleet: …` (plus hints) on stderr,
exit 1 (usage errors 2), no traceback, and the fleet's files, git and state left as they were."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, git
from tests.ports import free_port

Cli = Callable[..., CliResult]


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("  hint:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("gh fleet: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def fingerprint(root: Path) -> dict[str, object]:
    """Everything a failed command must leave alone: every file under .fleet/ (state too),
    the branch tip and `git status`."""
    files = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / ".fleet").rglob("*"))
        if p.is_file()
    }
    return {
        "files": files,
        "head": git(root, "rev-parse", "HEAD"),
        "status": git(root, "status", "--porcelain", "--untracked-files=all"),
    }


@pytest.fixture
def fleet(git_repo: Path, cli: Cli) -> Path:
    """A committed fleet: agents coder and rev (each with a starter watch and route), host vm."""
    for argv in (
        ("init", "--name", "f"),
        ("new-agent", "coder", "--role", "coder", "--repo", "acme/w"),
        ("new-agent", "rev", "--role", "reviewer", "--repo", "acme/w"),
        ("host", "add", "vm", "--backend", "ssh", "--host", "me@10.0.0.5"),
    ):
        rc, _, err = cli(*argv, cwd=git_repo)
        assert rc == 0, err
    return git_repo


# -- outside a fleet ----------------------------------------------------------------------------

NEEDS_A_FLEET = [
    ("list",),
    ("route", "--json"),
    ("status", "--json"),
    ("inbox", "coder"),
    ("tell", "coder", "hi"),
    ("logs", "coder"),
    ("history",),
    ("validate",),
    ("host", "list", "--json"),
    ("gateway", "routes", "--json"),
    ("new-agent", "a", "--role", "coder"),
    ("router", "run", "--once"),
]


@pytest.mark.parametrize("argv", NEEDS_A_FLEET, ids=" ".join)
def test_outside_a_fleet_every_command_says_so(git_repo: Path, cli: Cli, argv: tuple) -> None:
    rc, out, err = cli(*argv, cwd=git_repo)
    assert rc == 1 and out == ""
    assert "no fleet here" in one_error_line(err) and "gh fleet init" in err
    assert not (git_repo / ".fleet").exists()


@pytest.mark.parametrize("where", ["/nonexistent/nowhere", "{tmp}"])
def test_fleet_root_pointing_nowhere(git_repo: Path, cli: Cli, tmp_path: Path, where: str) -> None:
    rc, _, err = cli("list", cwd=git_repo, env={"FLEET_ROOT": where.format(tmp=tmp_path)})
    assert rc == 1 and "FLEET_ROOT=" in one_error_line(err)


# -- unknown names, malformed flags -------------------------------------------------------------

NOT_FOUND = [
    (("inbox", "nope"), "no agent named 'nope'"),
    (("tell", "nope", "hi"), "no agent named 'nope'"),
    (("logs", "nope"), "no agent named 'nope'"),
    (("attach", "nope"), "no agent named 'nope'"),
    (("login", "nope"), "no agent named 'nope'"),
    (("start", "nope"), "no agent named 'nope'"),
    (("stop", "nope"), "no agent named 'nope'"),
    (("restart", "nope"), "no agent named 'nope'"),
    (("remove-agent", "nope"), "no agent named 'nope'"),
    (("up", "nope"), "no agent named 'nope'"),
    (("route", "add", "--to", "nope"), "no agent named 'nope'"),
    (("watch", "remove", "nope"), "no watch named 'nope'"),
    (("route", "remove", "99"), "no route #99"),
    (("host", "remove", "nope"), "no host named 'nope'"),
    (("host", "check", "nope"), "no host named 'nope'"),
    (("tunnel", "open", "nope"), "no host named 'nope'"),
    (("tunnel", "close", "nope"), "no host named 'nope'"),
    (("diff", "no-such-ref"), "unknown git revision"),
    (("new-agent", "coder", "--role", "coder"), "already exists"),
    (("new-agent", "Bad_Name!", "--role", "coder"), "invalid agent name"),
    (("new-agent", "x", "--role", "nosuchrole"), "unknown role"),
    (("new-agent", "x", "--role", "coder", "--repo", "notarepo"), "invalid repo"),
    (("new-agent", "x", "--role", "coder", "--backend", "ssh", "--host", "no"), "unknown host"),
    (("new-agent", "x", "--role", "coder", "--endpoint", "custom"), "--endpoint-url"),
    (("watch", "add", "w", "--kind", "issues", "--repo", "a/b", "--poll-sec", "-5"), "poll-sec"),
    (("host", "add", "h", "--backend", "ssh"), "--host"),
    (("route", "test", "--item", "/nonexistent.json"), "no such file"),
]


@pytest.mark.parametrize("argv,says", NOT_FOUND, ids=[" ".join(a) for a, _ in NOT_FOUND])
def test_unknown_names_fail_cleanly_and_change_nothing(
    fleet: Path, cli: Cli, argv: tuple, says: str
) -> None:
    before = fingerprint(fleet)
    rc, out, err = cli(*argv, cwd=fleet)
    assert rc == 1, (out, err)
    assert says in one_error_line(err)
    assert fingerprint(fleet) == before


USAGE = [
    (("tell", "coder"), "required"),
    (("tell", "coder", ""), "empty"),
    (("tell", "coder", "  "), "empty"),
    (("logs", "coder", "-n", "x"), "gh fleet logs --help"),
    (("logs", "coder", "-n", "0"), "at least 1"),
    (("logs", "coder", "-n", "-3"), "at least 1"),
    (("history", "-n", "0"), "at least 1"),
    (("route", "remove", "x"), "invalid int"),
    (("watch", "add", "w", "--kind", "bogus"), "invalid choice"),
    (("demo", "--bogus"), "gh fleet demo --help"),  # the subcommand's help, not the top's
    (("route", "test", "--zz"), "gh fleet route test --help"),
    (("tunnel", "status", "extra"), "gh fleet tunnel status --help"),
    (("up", "--pull", "x"), "not an interval"),
    (("bogus",), "invalid choice"),
]


@pytest.mark.parametrize("argv,says", USAGE, ids=[" ".join(a) or "''" for a, _ in USAGE])
def test_usage_errors_exit_2(fleet: Path, cli: Cli, argv: tuple, says: str) -> None:
    before = fingerprint(fleet)
    rc, out, err = cli(*argv, cwd=fleet)
    assert rc == 2, (out, err)
    assert says in one_error_line(err)
    assert fingerprint(fleet) == before


def test_debug_is_accepted_after_the_command(fleet: Path, cli: Cli) -> None:
    rc, out, err = cli("list", "--json", "--debug", cwd=fleet)
    assert rc == 0, err
    assert [a["name"] for a in json.loads(out)] == ["coder", "rev"]


# -- hand-edited config -------------------------------------------------------------------------

BROKEN = [
    ("fleet.toml", lambda t: t + '\nname = "x\n', "fleet.toml:"),
    ("agents/coder/agent.toml", lambda t: t.replace("port = 8801", 'port = "80"'), "port"),
    ("agents/coder/agent.toml", lambda t: t + "\nbogus_key = 1\n", "unknown key"),
    (
        "routes.toml",
        lambda t: re.sub("(?m)^poll_sec = 240", 'poll_sec = "x"', t, count=1),
        "poll_sec",
    ),
]


@pytest.mark.parametrize("rel,edit,says", BROKEN, ids=["syntax", "type", "unknown-key", "routes"])
@pytest.mark.parametrize(
    "argv",
    [
        ("new-agent", "zz", "--role", "coder"),
        ("watch", "add", "w", "--kind", "issues", "--repo", "a/b"),
    ],
    ids=" ".join,
)
def test_a_broken_file_is_named_with_its_line_and_nothing_is_written(
    fleet: Path, cli: Cli, rel: str, edit: Callable[[str], str], says: str, argv: tuple
) -> None:
    path = fleet / ".fleet" / rel
    path.write_text(edit(path.read_text()))
    before = fingerprint(fleet)
    rc, _, err = cli(*argv, cwd=fleet)
    line = one_error_line(err)
    assert rc == 1 and says in line and ".fleet/" in line
    assert fingerprint(fleet) == before


@pytest.mark.parametrize("rel,edit,says", BROKEN, ids=["syntax", "type", "unknown-key", "routes"])
@pytest.mark.parametrize(
    "argv",
    [("list",), ("status",), ("route",), ("route", "test", "--repo", "a/b"), ("inbox", "rev"),
     ("logs", "rev"), ("diff",), ("history",), ("tell", "rev", "hi")],
    ids=" ".join,
)  # fmt: skip
def test_read_only_commands_fall_back_to_the_last_committed_fleet(
    fleet: Path, cli: Cli, rel: str, edit: Callable[[str], str], says: str, argv: tuple
) -> None:
    """What `up` still runs stays visible: one warning naming file:line, then HEAD's fleet."""
    path = fleet / ".fleet" / rel
    path.write_text(edit(path.read_text()))
    before = fingerprint(fleet)
    rc, out, err = cli(*argv, cwd=fleet)
    assert rc == 0, err
    assert "Traceback" not in err
    if argv[0] != "history":  # history reads commits only: the working tree does not matter
        warning = err.splitlines()[0]
        assert warning.startswith("gh fleet: warning: .fleet/") and says in warning
        assert f"using the last committed config ({before['head'][:7]})" in warning  # type: ignore[index]
    if argv[0] == "list":
        assert "coder" in out and "rev" in out
    if argv[0] != "tell":  # tell appends to the agent's inbox (state/), nothing else
        assert fingerprint(fleet) == before


def test_validate_lists_every_error_with_file_and_line(fleet: Path, cli: Cli) -> None:
    toml = fleet / ".fleet/routes.toml"
    toml.write_text(re.sub("(?m)^poll_sec = 240", 'poll_sec = "x"', toml.read_text()))
    rc, out, err = cli("validate", cwd=fleet)
    assert rc == 1 and out.count(".fleet/routes.toml:") == 2
    assert "2 error(s)" in one_error_line(err)


def test_a_missing_agent_dir_is_a_warning_not_a_crash(fleet: Path, cli: Cli) -> None:
    (fleet / ".fleet/agents/rev/agent.toml").unlink()
    rc, out, _ = cli("list", "--json", cwd=fleet)
    assert rc == 0 and [a["name"] for a in json.loads(out)] == ["coder"]
    rc, out, _ = cli("validate", cwd=fleet)
    assert rc == 1 and "no agent named 'rev'" in out and "without an agent.toml" in out


# -- git in the way -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("new-agent", "zz", "--role", "coder", "--repo", "a/b"),
        ("remove-agent", "rev", "--prune-routes"),
        ("watch", "add", "w", "--kind", "issues", "--repo", "a/b"),
        ("route", "remove", "1"),
        ("host", "add", "h2", "--backend", "ssh", "--host", "a@b"),
        ("host", "remove", "vm"),
        ("init", "--force"),
    ],
    ids=" ".join,
)
def test_a_held_index_lock_refuses_before_writing(fleet: Path, cli: Cli, argv: tuple) -> None:
    (fleet / ".git/index.lock").write_text("")
    before = fingerprint(fleet)
    rc, _, err = cli(*argv, cwd=fleet)
    assert rc == 1 and "index is locked" in one_error_line(err)
    assert "index.lock" in err  # the hint names the file
    assert fingerprint(fleet) == before


def test_an_unborn_repo_has_an_empty_history(git_repo: Path, cli: Cli) -> None:
    rc, _, err = cli("init", "--name", "u", "--no-commit", cwd=git_repo)
    assert rc == 0, err
    rc, out, _ = cli("history", cwd=git_repo)
    assert rc == 0 and "No commits touch .fleet/ yet" in out
    rc, out, _ = cli("history", "--json", cwd=git_repo)
    assert rc == 0 and json.loads(out) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_a_read_only_fleet_dir_fails_in_one_line(fleet: Path, cli: Cli) -> None:
    for p in [fleet / ".fleet", *(fleet / ".fleet").rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        rc, _, err = cli("watch", "add", "w", "--kind", "issues", "--repo", "a/b", cwd=fleet)
        assert rc == 1 and one_error_line(err)
    finally:
        for p in [fleet / ".fleet", *(fleet / ".fleet").rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


# -- state: empty, torn, corrupt ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,says",
    [
        (("logs", "coder"), "no session log for coder yet"),
        (("logs", "coder", "--runner"), "no runner log for coder yet"),
        (("logs", "coder", "--replies"), "no replies from coder yet"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_logs_of_an_agent_that_never_ran_says_so(
    fleet: Path, cli: Cli, argv: tuple, says: str
) -> None:
    rc, out, err = cli(*argv, cwd=fleet)
    assert rc == 0 and out == "" and says in err


CORRUPT = [
    ("router/status.json", '{"last_cycle": '),
    ("router/status.json", "[1, 2]"),
    ("router/status.json", '{"last_cycle_ts": "x", "rate_limit": 5, "streams": 3}'),
    ("router/status.json", '{"rate_limit": {"buckets": [["a", 1, 2]]}, "streams": {"a": 1}}'),
    ("router/cursor.json", '{"saved_at": '),
    ("agents/coder/runner.json", '{"pid": '),
    ("agents/coder/runner.json", "[]"),
]


@pytest.mark.parametrize("rel,text", CORRUPT, ids=[f"{r}:{t}" for r, t in CORRUPT])
@pytest.mark.parametrize("argv", [("status",), ("status", "--json"), ("router", "status")])
def test_status_survives_corrupt_state(
    fleet: Path, cli: Cli, rel: str, text: str, argv: tuple
) -> None:
    path = fleet / ".fleet/state" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    rc, out, err = cli(*argv, cwd=fleet)
    assert rc == 0 and "Traceback" not in err and "internal error" not in err, err
    if "--json" in argv:
        st = json.loads(out)
        assert st["router"]["running"] is False
        assert [a["name"] for a in st["agents"]] == ["coder", "rev"]
    assert path.read_text() == text  # a reader never rewrites state


def test_inbox_skips_a_torn_last_line_and_tell_still_appends_whole_lines(
    fleet: Path, cli: Cli
) -> None:
    assert cli("tell", "coder", "first", cwd=fleet).rc == 0
    inbox = fleet / ".fleet/state/agents/coder/inbox.jsonl"
    with inbox.open("a") as f:
        f.write('[1]\n{"id": "evt_torn", "ts": "20')  # a foreign line, then a torn tail
    rc, out, err = cli("inbox", "coder", "--json", cwd=fleet)
    assert rc == 0, err
    assert [e["body"] for e in json.loads(out)] == ["[FROM operator] first"]
    assert cli("tell", "coder", "second", cwd=fleet).rc == 0
    rc, out, _ = cli("inbox", "coder", cwd=fleet)
    assert rc == 0 and "first" in out and "second" in out and "evt_torn" not in out


def test_inbox_of_an_agent_with_no_events(fleet: Path, cli: Cli) -> None:
    assert cli("inbox", "rev", "--json", cwd=fleet) == (0, "[]\n", "")
    rc, out, _ = cli("inbox", "rev", cwd=fleet)
    assert rc == 0 and "inbox is empty" in out


# -- the router with no way to GitHub -----------------------------------------------------------


def test_router_once_without_a_token(fleet: Path, cli: Cli, tmp_path: Path) -> None:
    # An empty PATH dir: no `gh` to ask for a token either.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {"PATH": f"{empty}:/usr/bin:/bin", "FLEET_GITHUB_API_URL": "http://127.0.0.1:9"}
    rc, _, err = cli("router", "run", "--once", cwd=fleet, env=env)
    assert rc == 1 and "token" in one_error_line(err).lower()


def test_router_once_with_github_unreachable(fleet: Path, cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    rc, out, err = cli(
        "router", "run", "--once", cwd=fleet, env={"GH_TOKEN": "t0k", "FLEET_GITHUB_API_URL": url}
    )
    assert rc == 1 and "polled 0 stream(s)" in out
    line = one_error_line(err)
    assert "cannot reach GitHub" in line and url in line and "t0k" not in err


# -- the real executable ------------------------------------------------------------------------


def test_the_executable_outside_a_fleet_and_with_a_broken_file(git_repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    p = run_cli("status", cwd=git_repo)
    assert p.returncode == 1 and p.stdout == ""
    assert "no fleet here" in one_error_line(p.stderr)
    assert run_cli("init", "--name", "x", cwd=git_repo).returncode == 0
    toml = git_repo / ".fleet/fleet.toml"
    toml.write_text(toml.read_text() + "\n[oops\n")
    p = run_cli("host", "add", "h", "--backend", "docker", "--debug", cwd=git_repo)
    assert p.returncode == 1 and ".fleet/fleet.toml:" in p.stderr  # --debug after the command
    p = run_cli("host", "add", "h", "--backend", "docker", cwd=git_repo)
    assert p.returncode == 1 and ".fleet/fleet.toml:" in one_error_line(p.stderr)
    p = run_cli("list", cwd=git_repo)  # read-only: the committed fleet, with one warning
    assert p.returncode == 0 and ".fleet/fleet.toml:" in one_error_line(p.stderr)


def test_the_executable_logs_of_a_fresh_agent(git_repo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("init", "--name", "x", cwd=git_repo).returncode == 0
    assert run_cli("new-agent", "a", "--role", "base", cwd=git_repo).returncode == 0
    p = run_cli("logs", "a", cwd=git_repo)
    assert p.returncode == 0 and p.stdout == "" and "no session log for a yet" in p.stderr


# -- --help -------------------------------------------------------------------------------------


def test_every_command_and_argument_has_help() -> None:
    import argparse

    from relayfleet.cli.main import build_parser

    missing: list[str] = []

    def walk(p: argparse.ArgumentParser, path: list[str]) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in a._choices_actions}
                for name, child in a.choices.items():
                    if not helps.get(name) or not child.description:
                        missing.append(" ".join([*path, name]))
                    walk(child, [*path, name])
            elif a.help is None:
                missing.append(f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}")

    walk(build_parser(), [])
    assert missing == []
