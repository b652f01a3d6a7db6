"""A change that a reconciliation poll brings while its repo's webhooks are healthy is one the
webhooks missed: a delivery GitHub failed to make, or an event the hook is not subscribed to. It
is delivered all the same, and counted per repo for the router log and `status`."""

from __future__ import annotations

import logging

import pytest

from relayfleet.fakes.github import FakeGitHub, ManualClock
from relayfleet.fakes.github_hooks import hook_payload
from relayfleet.router.daemon import _webhooks
from relayfleet.router.pipeline import RouterConfig
from relayfleet.router.poller import Poller
from relayfleet.router.webhook import parse_event
from tests.router.helpers import Rig, config, route, watch

REPO = "acme/wms"


def cfg() -> RouterConfig:
    return config([watch("wms", "issues", REPO, "--state open")], [route(1, "coder")], ["coder"])


def healthy(p: Poller) -> Poller:
    p.reconcile_sec, p.reconcile_repos = 600, {REPO}
    return p


def by_webhook(p: Poller, fake: FakeGitHub, n: int, action: str) -> None:
    got = parse_event("issues", hook_payload(fake, "issues", REPO, n, action))
    p.intake(got.items, got.comments, cfg(), partial=got.partial)


def titles(rig: Rig) -> list[str]:
    return [str(e["body"]).split("] ", 1)[1].split(" — ")[0] for e in rig.inbox("coder")]


def test_a_change_only_a_reconciliation_poll_found_is_delivered_and_counted(
    fake: FakeGitHub, clock: ManualClock, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_repo(REPO)
    p = healthy(rig.poller())
    p.run_once(cfg(), force=True)  # the snapshot
    a = fake.open_issue(REPO, "Came by webhook", author="alice")
    by_webhook(p, fake, a, "opened")
    b = fake.open_issue(REPO, "Its delivery failed", author="alice")  # GitHub never sent it
    clock.advance(600 * 1.1)  # the reconciliation period, jitter included
    caplog.set_level(logging.WARNING, logger="relayfleet")
    p.run_once(cfg())  # the reconciliation poll

    assert titles(rig) == ["Came by webhook", "Its delivery failed"]
    misses = p.status()["webhook_misses"]
    assert misses == {REPO: {"count": 1, "last": f"{REPO}#{b} (opened)", "at": misses[REPO]["at"]}}
    assert f"{REPO}#{b} (opened) came by a reconciliation poll, not by webhook" in caplog.text
    # `status` and `webhook status` say so, and a restarted router still knows
    p.write_status()
    again = rig.poller()
    assert again.hook_misses == misses
    shown = _webhooks({"last_delivery": clock(), "reconcile_sec": 600}, clock(), running=True,
                      misses=again.status()["webhook_misses"])  # fmt: skip
    assert shown is not None and shown["missed"] == 1
    assert shown["summary"].endswith(
        f"; 1 change(s) came only by reconciliation (last: {REPO}#{b} (opened))"
    )


def test_a_change_whose_webhook_may_be_in_flight_is_not_counted(
    fake: FakeGitHub, clock: ManualClock, rig: Rig
) -> None:
    fake.add_repo(REPO)
    p = healthy(rig.poller())
    p.run_once(cfg(), force=True)
    fake.open_issue(REPO, "Just now", author="alice")
    clock.advance(5)
    p.run_once(cfg(), force=True)  # a poll 5 s after the change: its delivery may be on its way
    assert titles(rig) == ["Just now"]
    assert p.status()["webhook_misses"] == {}


def test_what_changed_while_the_router_was_down_is_not_counted(
    fake: FakeGitHub, clock: ManualClock, rig: Rig
) -> None:
    fake.add_repo(REPO)
    rig.poller().run_once(cfg(), force=True)  # the snapshot, then the router stops
    fake.open_issue(REPO, "While it was down", author="alice")
    clock.advance(3600)
    p = healthy(rig.poller())  # restarted; a delivery has arrived since
    p.run_once(cfg(), force=True)
    assert titles(rig) == ["While it was down"]
    assert p.status()["webhook_misses"] == {}


def test_without_healthy_webhooks_polling_is_not_a_miss(
    fake: FakeGitHub, clock: ManualClock, rig: Rig
) -> None:
    fake.add_repo(REPO)
    p = rig.poller()
    p.run_once(cfg(), force=True)
    fake.open_issue(REPO, "Polled", author="alice")
    clock.advance(601)
    p.run_once(cfg(), force=True)
    assert titles(rig) == ["Polled"]
    assert p.status()["webhook_misses"] == {}
