"""The semantic diff reads like a reviewer's summary of a fleet change."""

from __future__ import annotations

import dataclasses

from relayfleet.fleet.model import Agent, Fleet, Host, Route, Runtime, Watch
from relayfleet.fleet.semantic import describe_route, diff_fleets


def base() -> Fleet:
    return Fleet(
        name="demo",
        agents={
            "wms-coder": Agent(name="wms-coder", role="coder", port=8801),
            "wms-reviewer": Agent(name="wms-reviewer", role="reviewer", port=8802),
        },
        watches=(Watch("wms-assigned", "issues", "acme/WMS", "--search assignee:@me"),),
        routes=(
            Route(1, {"watch": ("wms-assigned",)}, ("wms-coder",)),
            Route(2, {"label": ("needs-human",)}, ("wms-reviewer",)),
        ),
    )


def test_no_change_is_empty() -> None:
    assert diff_fleets(base(), base()) == []


def test_new_fleet_lists_everything_as_added() -> None:
    lines = diff_fleets(None, base())
    assert lines[0] == "+fleet demo"
    assert "+agent wms-coder (coder)" in lines
    assert "+watch wms-assigned (issues acme/WMS)" in lines
    assert "+route #1 (watch=wms-assigned → wms-coder)" in lines


def test_agents_added_removed_and_changed() -> None:
    old = base()
    agents = dict(old.agents)
    del agents["wms-reviewer"]
    agents["wms-coder"] = dataclasses.replace(
        agents["wms-coder"], model="opus", runtime=Runtime(backend="ssh", host="vm1")
    )
    agents["manager"] = Agent(name="manager", role="manager", port=8803)
    new = dataclasses.replace(old, agents=agents)

    lines = diff_fleets(old, new)

    assert "+agent manager (manager)" in lines
    assert "-agent wms-reviewer" in lines
    assert (
        '~agent wms-coder: model sonnet→opus, runtime.backend local→ssh, runtime.host ""→vm1'
        in lines
    )


def test_route_recipient_added_reads_as_a_route_change() -> None:
    old = base()
    routes = (old.routes[0], Route(2, {"label": ("needs-human",)}, ("wms-reviewer", "manager")))
    assert diff_fleets(old, dataclasses.replace(old, routes=routes)) == ["~route #2 to: +manager"]


def test_route_inserted_in_the_middle_is_one_addition() -> None:
    old = base()
    new_route = Route(2, {"kind": ("pulls",)}, ("wms-reviewer",))
    moved = dataclasses.replace(old.routes[1], index=3)
    lines = diff_fleets(old, dataclasses.replace(old, routes=(old.routes[0], new_route, moved)))
    assert lines == ["+route #2 (kind=pulls → wms-reviewer)"]


def test_route_removed_and_match_changed() -> None:
    old = base()
    assert diff_fleets(old, dataclasses.replace(old, routes=old.routes[:1])) == [
        "-route #2 (label=needs-human → wms-reviewer)"
    ]
    changed = Route(2, {"label": ("bug",), "kind": ("issues",)}, ("wms-reviewer",))
    assert diff_fleets(old, dataclasses.replace(old, routes=(old.routes[0], changed))) == [
        "~route #2 match: label needs-human→bug, +kind=issues"
    ]


def test_watches_hosts_and_fleet_settings() -> None:
    old = base()
    new = dataclasses.replace(
        old,
        name="prod",
        watches=(
            Watch("wms-assigned", "issues", "acme/WMS", "--search assignee:@me", poll_sec=60),
            Watch("wms-prs", "pulls", "acme/WMS"),
        ),
        hosts={"vm1": Host("vm1", "ssh", "you@10.0.0.5")},
    )
    lines = diff_fleets(old, new)
    assert "~fleet: name demo→prod" in lines
    assert "+watch wms-prs (pulls acme/WMS)" in lines
    assert "~watch wms-assigned: poll_sec 240→60" in lines
    assert "+host vm1 (ssh you@10.0.0.5)" in lines
    assert "-watch wms-prs" in diff_fleets(new, old)
    assert "-host vm1" in diff_fleets(new, old)


def test_describe_route_catch_all() -> None:
    assert describe_route(Route(1, {}, ("a", "b"))) == "(catch-all) → a, b"
    assert describe_route(Route(1, {"label": ("x", "y")}, ("a",))) == "label=x,y → a"


def test_partial_fleets_have_no_settings_to_show() -> None:
    """A tree with agent files but no fleet.toml: its (default) name and settings are not real."""
    partial = dataclasses.replace(base(), name="", default_model="sonnet")
    assert diff_fleets(None, partial, new_partial=True) == [
        "+agent wms-coder (coder)",
        "+agent wms-reviewer (reviewer)",
        "+watch wms-assigned (issues acme/WMS)",
        "+route #1 (watch=wms-assigned → wms-coder)",
        "+route #2 (label=needs-human → wms-reviewer)",
    ]
    full = dataclasses.replace(base(), default_model="opus")
    assert diff_fleets(partial, full, old_partial=True) == [
        "+fleet demo",
        "~fleet: default_model sonnet→opus",
    ]
    assert diff_fleets(full, partial, new_partial=True) == ["-fleet demo (fleet.toml removed)"]
    assert diff_fleets(partial, partial, old_partial=True, new_partial=True) == []


def test_a_route_that_starts_holding_reads_as_a_route_change() -> None:
    old = base()
    gated = {"label": ("needs-human",), "association": ("OWNER",)}
    routes = (old.routes[0], Route(2, gated, ("wms-reviewer",), untrusted="hold"))
    assert diff_fleets(old, dataclasses.replace(old, routes=routes)) == [
        "~route #2 match: +association=OWNER; untrusted drop→hold"
    ]
    assert describe_route(routes[1]).endswith("→ wms-reviewer (untrusted: hold)")
