"""fleet/validate.py: every problem of a fleet on disk, collected, with file:line."""

from __future__ import annotations

from pathlib import Path

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.validate import Problem, has_errors, validate

FLEET = '[fleet]\nname = "demo"\n\n[hosts.vm]\nbackend = "ssh"\nhost = "me@10.0.0.5"\n'
ROUTES = """\
[[watch]]
name = "assigned"
kind = "issues"
repo = "acme/WMS"
filter = "--search assignee:@me --state open"

[[route]]
to = ["coder"]
[route.match]
watch = "assigned"
"""


def make(root: Path, routes: str = ROUTES, agents: dict[str, str] | None = None) -> FleetPaths:
    paths = FleetPaths(root)
    paths.fleet.mkdir(parents=True)
    paths.fleet_toml.write_text(FLEET)
    paths.routes_toml.write_text(routes)
    (paths.fleet / ".gitignore").write_text("state/\n")
    agents = {"coder": 'role = "coder"\nport = 8801\n'} if agents is None else agents
    for name, text in agents.items():
        paths.agent_dir(name).mkdir(parents=True)
        paths.agent_toml(name).write_text(text)
        paths.persona(name).write_text("# persona\n")
    return paths


def lines(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_a_clean_fleet_has_no_problems(tmp_path: Path) -> None:
    assert validate(make(tmp_path)) == []


def test_dangling_references_and_duplicates_are_all_reported(tmp_path: Path) -> None:
    routes = (
        ROUTES
        + """
[[watch]]
name = "assigned"
kind = "pulls"
repo = "acme/WMS"

[[route]]
to = ["ghost"]
[route.match]
watch = "nowhere"
"""
    )
    agents = {
        "coder": 'role = "coder"\nport = 8801\n',
        "twin": 'role = "reviewer"\nport = 8801\n[runtime]\nbackend = "ssh"\nhost = "nohost"\n',
    }
    got = lines(validate(make(tmp_path, routes, agents)))
    assert got == [
        ".fleet/routes.toml:13: error: watch[2].name: duplicate watch name 'assigned' "
        "(also watch[1])",
        ".fleet/routes.toml:18: error: route[2].to: no agent named 'ghost' (known: coder, twin)",
        ".fleet/routes.toml:20: error: route[2].match.watch: no watch named 'nowhere' "
        "(known: assigned)",
        ".fleet/agents/twin/agent.toml:2: error: port: port 8801 is also used by coder"
        " (.fleet/agents/coder/agent.toml)",
        ".fleet/agents/twin/agent.toml:5: error: runtime.host: no host named 'nohost' (known: vm)"
        " (add it with `gh fleet host add`)",
    ]


def test_bad_filter_names_the_flag(tmp_path: Path) -> None:
    routes = ROUTES.replace("--state open", "--colour blue")
    (p,) = validate(make(tmp_path, routes))
    assert p.level == "error" and p.line == 5 and "--colour" in p.message


def test_catch_all_and_unused_watch_are_warnings(tmp_path: Path) -> None:
    routes = ROUTES + '\n[[route]]\nto = ["coder"]\n'
    problems = validate(make(tmp_path, routes))
    assert lines(problems) == [
        ".fleet/routes.toml:12: warning: route[2]: catch-all route (empty match): every item of "
        "every watch goes to coder"
    ]
    assert not has_errors(problems)
    routes2 = ROUTES.replace('[[route]]\nto = ["coder"]\n[route.match]\nwatch = "assigned"\n', "")
    assert "no route delivers" in lines(validate(make(tmp_path / "b", routes2)))[0]


def test_missing_persona_and_name_mismatch(tmp_path: Path) -> None:
    paths = make(tmp_path, agents={"coder": 'name = "koder"\nrole = "coder"\nport = 8801\n'})
    paths.persona("coder").unlink()
    got = lines(validate(paths))
    assert got == [
        '.fleet/agents/coder/agent.toml:1: error: name: "koder" does not match its directory '
        "agents/coder/",
        ".fleet/agents/coder/CLAUDE.md: warning: no CLAUDE.md persona: the agent starts with "
        "no instructions",
    ]


def test_syntax_errors_do_not_stop_the_other_checks(tmp_path: Path) -> None:
    agents = {"coder": 'role = "coder"\nport = 8801\n', "bad": 'role = "coder"\nport = \n'}
    paths = make(tmp_path, ROUTES.replace('kind = "issues"', 'kind = "issue"'), agents)
    got = lines(validate(paths))
    assert got[0].startswith('.fleet/routes.toml:3: error: watch[1].kind: "issue" is not one of')
    assert got[1].startswith(".fleet/agents/bad/agent.toml:2: error: TOML syntax error")


def test_poll_sec_below_the_routers_floor_is_a_warning_with_the_real_period(
    tmp_path: Path,
) -> None:
    routes = ROUTES.replace('--state open"\n', '--state open"\npoll_sec = 1\n')
    problems = validate(make(tmp_path, routes))
    assert lines(problems) == [
        ".fleet/routes.toml:6: warning: watch[1].poll_sec: poll_sec = 1 is raised to 10 s, "
        "the router's minimum (`watch add` refuses it)"
    ]
    assert not has_errors(problems)
    fast = validate(make(tmp_path / "b", routes.replace("poll_sec = 1", "poll_sec = 30")))
    assert "30 s is very frequent" in lines(fast)[0]  # allowed by the router, but costly


def test_permission_policies_the_session_cannot_honour_are_warnings(tmp_path: Path) -> None:
    agents = {
        "coder": 'role = "coder"\nport = 8801\n[permissions]\nmode = "policy"\n'
        'allow = ["Read", "WebFetch"]\ndeny = ["WebFetch"]\n[claude]\nengine = "command"\n'
        'command = ["sh"]\n',
        "helper": 'role = "coder"\nport = 8802\n[permissions]\nallow = ["Read"]\n',
    }
    got = lines(validate(make(tmp_path, agents=agents)))
    assert any("permissions.mode" in g and "needs the claude engine" in g for g in got)
    assert any("'WebFetch' is also denied (deny wins)" in g for g in got)
    assert any("helper" in g and 'only enforced with mode = "policy"' in g for g in got)
    assert not has_errors(validate(make(tmp_path / "x", agents=agents)))
