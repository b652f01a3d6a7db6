"""`up`'s plan: the running set converges on the desired set, touching only what changed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relayfleet.fleet.model import Agent, ClaudeConfig
from relayfleet.up.reconcile import fingerprint, plan

names = st.sampled_from(["coder", "reviewer", "manager", "ops", "docs"])
fps = st.sampled_from(["a", "b", "c"])
fleets = st.dictionaries(names, fps, max_size=5)


def apply(running: dict[str, str], desired: dict[str, str]) -> dict[str, str]:
    p = plan(desired, running)
    after = {n: fp for n, fp in running.items() if n not in p.stop}
    for n in (*p.restart, *p.start):
        after[n] = desired[n]
    return after


@given(fleets, fleets)
def test_applying_the_plan_reaches_the_desired_fleet(running, desired):
    assert apply(running, desired) == desired


@given(fleets, fleets)
def test_unchanged_agents_are_never_touched(running, desired):
    p = plan(desired, running)
    touched = set(p.start) | set(p.stop) | set(p.restart)
    for n in set(running) & set(desired):
        assert (n in touched) == (running[n] != desired[n])


@given(fleets)
def test_a_converged_fleet_plans_nothing(desired):
    assert plan(desired, dict(desired)).empty


def test_fingerprint_changes_with_config_and_persona_only():
    a = Agent(name="coder", role="coder", repo="acme/x")
    assert fingerprint(a, b"p") == fingerprint(
        Agent(name="coder", role="coder", repo="acme/x"), b"p"
    )
    assert fingerprint(a, b"p") != fingerprint(a, b"q")
    changed = Agent(
        name="coder", role="coder", repo="acme/x", claude=ClaudeConfig(engine="command")
    )
    assert fingerprint(a, b"p") != fingerprint(changed, b"p")
