"""fleet/schema.py: TOML dicts -> the frozen model, strictly, with file:line in every error."""

from __future__ import annotations

import pytest

from relayfleet.core.errors import ConfigError
from relayfleet.fleet.model import Route, Watch
from relayfleet.fleet.schema import load_fleet_from_texts

FLEET = '[fleet]\nname = "demo"\n\n[defaults]\nmodel = "opus"\n'
AGENT = 'name = "wms-coder"\nrole = "coder"\nrepo = "acme/WMS"\nport = 8801\n'
ROUTES = """\
[[watch]]
name = "wms-assigned"
kind = "issues"
repo = "acme/WMS"
filter = "--search assignee:@me --state open"

[[route]]
to = "wms-coder"
[route.match]
watch = "wms-assigned"
label = ["bug", "urgent"]
"""


def texts(**over: str) -> dict[str, str]:
    t = {"fleet.toml": FLEET, "routes.toml": ROUTES, "agents/wms-coder/agent.toml": AGENT}
    t.update(over)
    return t


def error_of(t: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as e:
        load_fleet_from_texts(t)
    return str(e.value)


def test_a_valid_fleet_builds_the_model_with_defaults_and_tuples() -> None:
    fleet = load_fleet_from_texts(texts())
    assert fleet.name == "demo"
    coder = fleet.agents["wms-coder"]
    assert (coder.role, coder.port, coder.model) == ("coder", 8801, "opus")  # fleet default
    assert coder.runtime.backend == "local" and coder.claude.engine == "claude"
    assert fleet.watches == (
        Watch("wms-assigned", "issues", "acme/WMS", "--search assignee:@me --state open", 240),
    )
    assert fleet.routes == (
        Route(index=1, match={"watch": ("wms-assigned",), "label": ("bug", "urgent")},
              to=("wms-coder",)),
    )  # fmt: skip


def test_bad_enum_in_a_route_names_file_line_and_path() -> None:
    msg = error_of(
        texts(**{"routes.toml": ROUTES + '\n[[route]]\nto = ["x"]\n[route.match]\nkind = "pull"\n'})
    )
    assert msg == (
        '.fleet/routes.toml:16: route[2].match.kind: "pull" is not one of '
        "issues, pulls, runs, notifications"
    )


def test_unknown_keys_are_errors_with_the_expected_ones_listed() -> None:
    msg = error_of(texts(**{"agents/wms-coder/agent.toml": AGENT + "colour = 'red'\n"}))
    assert msg.startswith(".fleet/agents/wms-coder/agent.toml:5: colour: unknown key")
    msg = error_of(texts(**{"routes.toml": ROUTES.replace("label = [", "lable = [")}))
    assert msg.startswith(".fleet/routes.toml:11: route[1].match.lable: unknown key")


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ('port = "8801"', 'port: must be an integer from 1 to 65535, not "8801"'),
        ("port = 0", "port: must be an integer from 1 to 65535, not 0"),
        ('role = "wizard"', 'role: "wizard" is not one of coder, reviewer'),
        ('repo = "nope"', 'repo: "nope" is not owner/name'),
        ('name = "other"', 'name: "other" does not match its directory agents/wms-coder/'),
    ],
)
def test_agent_type_errors(agent: str, expected: str) -> None:
    key = agent.split(" = ")[0]
    body = "\n".join(line for line in AGENT.splitlines() if not line.startswith(key + " "))
    msg = error_of(texts(**{"agents/wms-coder/agent.toml": body + "\n" + agent + "\n"}))
    assert expected in msg


def test_nested_tables_are_checked() -> None:
    agent = AGENT + '[runtime]\nbackend = "cloud"\n[claude.endpoint]\nmode = "custom"\n'
    problems: list[ConfigError] = []
    load_fleet_from_texts(texts(**{"agents/wms-coder/agent.toml": agent}), problems)
    got = [str(p) for p in problems]
    assert got == [
        '.fleet/agents/wms-coder/agent.toml:6: runtime.backend: "cloud" is not one of '
        "local, docker, ssh",
        '.fleet/agents/wms-coder/agent.toml:7: claude.endpoint.url: required when mode = "custom"',
    ]


def test_match_values_may_be_a_string_or_a_list_but_not_empty() -> None:
    msg = error_of(
        texts(**{"routes.toml": ROUTES.replace('label = ["bug", "urgent"]', "label = []")})
    )
    assert "route[1].match.label: must not be empty" in msg
    msg = error_of(
        texts(**{"routes.toml": ROUTES.replace('label = ["bug", "urgent"]', "label = 3")})
    )
    assert "must be a string or a list of strings, not 3" in msg


def test_syntax_error_is_reported_with_its_line() -> None:
    msg = error_of(texts(**{"routes.toml": "[[watch]]\nname = \n"}))
    assert msg.startswith(".fleet/routes.toml:2: TOML syntax error")


def test_collect_mode_reports_every_problem_and_still_returns_a_fleet() -> None:
    problems: list[ConfigError] = []
    fleet = load_fleet_from_texts(
        texts(**{
            "fleet.toml": "[fleet]\nname = 3\n",
            "routes.toml": "[[watch]\nbroken",
            "agents/x/agent.toml": 'role = "coder"\nport = 8802\nplugins = "inbox"\n',
        }),
        problems,
    )  # fmt: skip
    msgs = [str(p) for p in problems]
    assert any(m.startswith(".fleet/fleet.toml:2: fleet.name: must be a string") for m in msgs)
    assert any(m.startswith(".fleet/routes.toml:1: TOML syntax error") for m in msgs)
    assert any("agents/x/agent.toml:3: plugins: must be a list of strings" in m for m in msgs)
    assert set(fleet.agents) == {"wms-coder", "x"}


def test_missing_fleet_toml_is_an_error() -> None:
    assert error_of({"routes.toml": ""}).startswith(".fleet/fleet.toml: missing")


def test_notifications_watch_needs_no_repo_but_others_do() -> None:
    ok = '[[watch]]\nname = "m"\nkind = "notifications"\nfilter = "--reason mention"\n'
    assert load_fleet_from_texts(texts(**{"routes.toml": ok})).watches[0].repo == ""
    msg = error_of(texts(**{"routes.toml": ok.replace("notifications", "issues")}))
    assert "watch[1].repo: missing" in msg


def test_untrusted_and_commands_allow() -> None:
    fleet = load_fleet_from_texts(texts())
    assert fleet.routes[0].untrusted == "drop"  # today's behaviour by default
    assert fleet.commands.allow == ("OWNER", "MEMBER", "COLLABORATOR")
    held = ROUTES.replace('to = "wms-coder"\n', 'to = "wms-coder"\nuntrusted = "hold"\n')
    allow = FLEET + '\n[commands]\nallow = ["OWNER"]\n'
    fleet = load_fleet_from_texts(texts(**{"routes.toml": held, "fleet.toml": allow}))
    assert fleet.routes[0].untrusted == "hold" and fleet.commands.allow == ("OWNER",)
    bad = ROUTES.replace('to = "wms-coder"\n', 'to = "wms-coder"\nuntrusted = "keep"\n')
    assert 'route[1].untrusted: "keep" is not one of drop, hold' in error_of(
        texts(**{"routes.toml": bad})
    )
    wrong = FLEET + '\n[commands]\nallow = ["ADMIN"]\n'
    assert 'commands.allow: "ADMIN" is not one of OWNER' in error_of(texts(**{"fleet.toml": wrong}))


def test_budgets_and_session_runtime_keys() -> None:
    fleet = load_fleet_from_texts(
        texts(**{
            "fleet.toml": FLEET + "[budget]\ntokens_per_day = 5_000_000\n"
            "[budget.prices]\ninput = 3.0\noutput = 15\n",
            "agents/wms-coder/agent.toml": AGENT + "[budget]\ntokens_per_day = 2_000_000\n"
            "[runtime]\ncoalesce_max = 5\nidle_stop_min = 30\n",
        })
    )  # fmt: skip
    coder = fleet.agents["wms-coder"]
    assert fleet.budget.tokens_per_day == 5_000_000
    assert fleet.budget.prices == {"input": 3.0, "output": 15.0}
    assert coder.budget.tokens_per_day == 2_000_000
    assert (coder.runtime.coalesce_max, coder.runtime.idle_stop_min) == (5, 30)
    assert load_fleet_from_texts(texts()).agents["wms-coder"].runtime.coalesce_max == 20
    msg = error_of(texts(**{"agents/wms-coder/agent.toml": AGENT + "[budget]\nprices = {}\n"}))
    assert "budget.prices" in msg
    msg = error_of(
        texts(**{"agents/wms-coder/agent.toml": AGENT + "[runtime]\ncoalesce_max = 0\n"})
    )
    assert "runtime.coalesce_max" in msg and "from 1 to 200" in msg
    msg = error_of(texts(**{"fleet.toml": FLEET + "[budget.prices]\nfuel = 1\n"}))
    assert "budget.prices.fuel" in msg


def test_a_permission_policy() -> None:
    agent = AGENT + (
        '[permissions]\nmode = "policy"\nallow = ["Read", "Bash(git status:*)"]\n'
        'deny = ["WebFetch"]\nask = ["Bash(git push:*)"]\nask_timeout_min = 10\n'
    )
    p = load_fleet_from_texts(texts(**{"agents/wms-coder/agent.toml": agent}))
    perms = p.agents["wms-coder"].permissions
    assert (perms.mode, perms.allow, perms.ask_timeout_min) == (
        "policy", ("Read", "Bash(git status:*)"), 10
    )  # fmt: skip
    assert load_fleet_from_texts(texts()).agents["wms-coder"].permissions.mode == "default"
    bad = AGENT + '[permissions]\nmode = "yolo"\n'
    assert "permissions.mode" in error_of(texts(**{"agents/wms-coder/agent.toml": bad}))
    bad = AGENT + '[permissions]\nallow = ["Bash(unclosed"]\n'
    msg = error_of(texts(**{"agents/wms-coder/agent.toml": bad}))
    assert 'permissions.allow: "Bash(unclosed" is not a rule' in msg
