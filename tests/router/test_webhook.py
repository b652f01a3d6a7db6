"""The webhook receiver on loopback, and one pipeline with the poller against the fake GitHub."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub
from relayfleet.fakes.github_hooks import hook_payload, post_hook
from relayfleet.fleet.model import SecretRef, WebhookConfig
from relayfleet.router.spool import Spool
from relayfleet.router.webhook import MAX_BODY, Intake
from relayfleet.router.webhook_loop import WebhookIntake, health_line
from tests.router.helpers import Rig, config, route, watch

REPO = "acme/wms"
SECRET = b"s3cret-for-tests"

# On the real time: nothing here steps a clock.
pytestmark = pytest.mark.fake_github(repos=[REPO], wall_clock=True)


@pytest.fixture
def hooks(rig: Rig) -> Iterator[WebhookIntake]:
    cfg = WebhookConfig(enabled=True, listen="127.0.0.1:0", secret=SecretRef(from_env="X"))
    h = WebhookIntake(rig.paths.router_state, cfg, SECRET)
    h.start()
    yield h
    h.stop()


def url(h: WebhookIntake) -> str:
    assert h.address is not None
    return f"http://127.0.0.1:{h.address[1]}/"


def cfg():
    return config(
        [watch("wms", "issues", REPO, "--state open"), watch("prs", "pulls", REPO)],
        [route(1, "coder", watch="wms"), route(2, "reviewer", watch="prs")],
        ["coder", "reviewer"],
    )


def drain(h: WebhookIntake, rig: Rig, poller, config=None) -> int:  # type: ignore[no-untyped-def]
    c = config or cfg()

    def deliver(i: Intake) -> None:
        poller.intake(i.items, i.comments, c, partial=i.partial)

    return h.drain(deliver)


# -- the receiver ------------------------------------------------------------------------------
def test_a_missing_or_wrong_signature_is_401_and_logged_without_the_body(
    hooks: WebhookIntake, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    fake.open_issue(REPO, "CANARY-title-never-logged", author="alice")
    body = hook_payload(fake, "issues", REPO, 1, "opened")
    caplog.set_level(logging.INFO, logger="relayfleet")
    assert post_hook(url(hooks), None, "issues", body)[0] == 401
    assert post_hook(url(hooks), b"not-the-secret", "issues", body)[0] == 401
    assert hooks.spool.pending() == []
    text = caplog.text
    assert "missing X-Hub-Signature-256" in text and "wrong X-Hub-Signature-256" in text
    assert "CANARY" not in text and SECRET.decode() not in text
    assert hooks.receiver.health.rejected == 2


def test_a_redelivery_is_a_no_op_even_after_a_restart(
    hooks: WebhookIntake, fake: FakeGitHub, rig: Rig
) -> None:
    fake.open_issue(REPO, "Crash", author="alice")
    body = hook_payload(fake, "issues", REPO, 1, "opened")
    assert post_hook(url(hooks), SECRET, "issues", body, delivery="d-1")[0] == 200
    status, text = post_hook(url(hooks), SECRET, "issues", body, delivery="d-1")
    assert status == 200 and "duplicate" in text
    assert [e.delivery for e in hooks.spool.pending()] == ["d-1"]
    again = Spool(hooks.spool.dir)  # a new router process reads the same spool
    assert again.seen("d-1") and not again.add("d-1", "issues", b"{}", 0.0)


def test_other_events_get_202_and_are_not_kept(hooks: WebhookIntake) -> None:
    status, _ = post_hook(url(hooks), SECRET, "star", {"action": "created"})
    assert status == 202
    assert hooks.spool.pending() == [] and hooks.receiver.health.ignored == 1


def test_a_body_over_25_mb_is_413_without_being_read(hooks: WebhookIntake) -> None:
    assert hooks.address is not None
    with socket.create_connection(("127.0.0.1", hooks.address[1]), timeout=10) as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\nX-GitHub-Delivery: big\r\n"
            + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
        )
        head = s.recv(200).decode()
    assert head.startswith("HTTP/1.1 413")
    assert hooks.spool.pending() == []


def test_it_listens_on_loopback_by_default() -> None:
    assert WebhookConfig().listen.startswith("127.0.0.1:")
    assert not WebhookConfig().enabled


def test_a_ping_makes_webhooks_healthy_and_polling_reconciles(
    hooks: WebhookIntake, fake: FakeGitHub, rig: Rig
) -> None:
    p = rig.poller()
    p.reconcile_sec = 600
    assert hooks.healthy([REPO]) == set()
    assert post_hook(url(hooks), SECRET, "ping", hook_payload(fake, "ping", REPO))[0] == 200
    p.reconcile_repos = hooks.healthy([REPO])
    assert p.reconcile_repos == {REPO}
    from relayfleet.router.plan import plan

    stream = plan(cfg().watches)[0]
    assert p.period(stream) == 600
    p.reconcile_repos = set()  # quiet: the watch's own cadence is back
    assert p.period(stream) == 30
    st = hooks.status()["webhook"]
    assert health_line(st, st["last_delivery"] + 12).startswith("healthy, last delivery 12 s ago")
    assert health_line(st, st["last_delivery"] + 601).startswith("quiet since ")


# -- one pipeline ------------------------------------------------------------------------------
def test_an_item_seen_by_webhook_then_by_poll_is_delivered_once(
    hooks: WebhookIntake, fake: FakeGitHub, rig: Rig
) -> None:
    p = rig.poller()
    p.run_once(cfg(), force=True)  # the watches' snapshots
    n = fake.open_issue(REPO, "Scanner crash", author="alice", association="MEMBER")
    fake.label(REPO, n, "bug")
    body = hook_payload(fake, "issues", REPO, n, "labeled", label="bug")
    assert post_hook(url(hooks), SECRET, "issues", body)[0] == 200
    assert drain(hooks, rig, p) == 1
    inbox = rig.inbox("coder")
    assert len(inbox) == 1
    assert inbox[0]["body"].startswith(f"[FROM github | issues {REPO}#{n} labeled bug]")
    # the poll sees the same version: nothing new, in this process or after a restart
    p.run_once(cfg(), force=True)
    rig.poller().run_once(cfg(), force=True)
    assert len(rig.inbox("coder")) == 1
    # a later change is news again, by either path
    fake.comment(REPO, n, "bob")
    rig.poller().run_once(cfg(), force=True)
    assert [e["body"].split("]")[0] for e in rig.inbox("coder")][1:] == [
        f"[FROM github | issues {REPO}#{n} new comment"
    ]
    assert rig.inbox("reviewer") == []


def test_pr_payloads_that_lack_fields_share_the_polls_dedup_key(
    hooks: WebhookIntake, fake: FakeGitHub, rig: Rig
) -> None:
    p = rig.poller()
    n = fake.open_pr(REPO, "Add scanner", author="alice")
    fake.comment(REPO, n, "bob")
    p.run_once(cfg(), force=True)  # snapshot: the PR with its comment count
    fake.label(REPO, n, "ready")  # (a review moves updated_at; the fake needs a real change)
    # The review event's PR object has no `comments` (as on GitHub); the count is kept.
    body = hook_payload(fake, "pull_request_review", REPO, n, "submitted")
    body["review"] = {"state": "approved"}
    assert post_hook(url(hooks), SECRET, "pull_request_review", body)[0] == 200
    drain(hooks, rig, p)
    assert [e["body"].split("]")[0] for e in rig.inbox("reviewer")] == [
        f"[FROM github | pulls {REPO}#{n} review approved"
    ]
    p.run_once(cfg(), force=True)
    assert len(rig.inbox("reviewer")) == 1


def test_a_webhook_for_a_watch_before_its_snapshot_delivers_nothing(
    hooks: WebhookIntake, fake: FakeGitHub, rig: Rig
) -> None:
    p = rig.poller()
    fake.open_issue(REPO, "Old", author="alice")
    post_hook(url(hooks), SECRET, "issues", hook_payload(fake, "issues", REPO, 1, "opened"))
    drain(hooks, rig, p)
    assert rig.inbox("coder") == []
    assert hooks.spool.pending() == []  # drained all the same


def test_what_was_spooled_but_not_drained_is_delivered_by_the_next_router(
    hooks: WebhookIntake, fake: FakeGitHub, rig: Rig
) -> None:
    rig.poller().run_once(cfg(), force=True)
    n = fake.open_issue(REPO, "Crash", author="alice")
    assert (
        post_hook(url(hooks), SECRET, "issues", hook_payload(fake, "issues", REPO, n, "opened"))[0]
        == 200
    )
    hooks.stop()  # the 200 was sent; the router dies before draining
    cfgw = WebhookConfig(enabled=True, listen="127.0.0.1:0", secret=SecretRef(from_env="X"))
    fresh = WebhookIntake(rig.paths.router_state, cfgw, SECRET)
    assert drain(fresh, rig, rig.poller()) == 1
    assert len(rig.inbox("coder")) == 1
    assert drain(fresh, rig, rig.poller()) == 0


def test_a_drained_spool_is_compacted_and_still_knows_its_deliveries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relayfleet.router import spool as spool_mod

    monkeypatch.setattr(spool_mod, "COMPACT_AT", 10)  # any drained file is "big"
    s = Spool(tmp_path / "w")
    assert s.add("d-1", "issues", b'{"a": 1}', 1.0) and s.add("d-2", "issues", b"{}", 2.0)
    pending = s.pending()
    s.drained(pending[-1].end)
    assert s.path.stat().st_size == 0 and s.pending() == []
    again = Spool(tmp_path / "w")
    assert again.seen("d-1") and not again.add("d-2", "issues", b"{}", 3.0)
    assert again.add("d-3", "issues", b"{}", 4.0)
    assert [e.delivery for e in again.pending()] == ["d-3"]


def test_a_torn_last_line_is_not_a_delivery_and_is_repaired(tmp_path: Path) -> None:
    s = Spool(tmp_path / "w")
    s.add("d-1", "issues", b"{}", 1.0)
    with s.path.open("ab") as f:
        f.write(b'{"d": "d-2", "e": "iss')  # a crash mid-append, never answered 200
    assert [e.delivery for e in Spool(tmp_path / "w").pending()] == ["d-1"]
    again = Spool(tmp_path / "w")
    assert again.add("d-2", "issues", b"{}", 2.0)
    assert [e.delivery for e in again.pending()] == ["d-1", "d-2"]


def test_validate_warns_when_the_receiver_listens_beyond_loopback() -> None:
    from relayfleet.fleet.schema import load_fleet_from_texts
    from relayfleet.fleet.validate import check_fleet

    text = (
        '[fleet]\nname = "x"\n[webhook]\nenabled = true\nlisten = "{}"\n'
        'secret = {{ from_env = "S" }}\n'
    )
    open_ = check_fleet(load_fleet_from_texts({"fleet.toml": text.format("0.0.0.0:8790")}))
    assert any("webhook.listen" in str(p) and p.level == "warning" for p in open_)
    assert check_fleet(load_fleet_from_texts({"fleet.toml": text.format("127.0.0.1:8790")})) == []
    assert check_fleet(load_fleet_from_texts({"fleet.toml": text.format("127.0.0.2:8790")})) == []
    assert check_fleet(load_fleet_from_texts({"fleet.toml": text.format("[::1]:8790")})) == []
    # an address that is not one at all is an error of its own, not also "reachable"
    errors: list[object] = []
    fleet = load_fleet_from_texts({"fleet.toml": text.format("nonsense")}, errors)  # type: ignore[arg-type]
    assert ["host:port" in str(e) for e in errors] == [True]
    assert check_fleet(fleet) == []


def test_webhook_settings_are_validated_and_the_secret_is_only_a_reference() -> None:
    from relayfleet.fleet.schema import load_fleet_from_texts

    def problems(body: str) -> list[str]:
        out: list[object] = []
        load_fleet_from_texts({"fleet.toml": '[fleet]\nname = "x"\n[webhook]\n' + body}, out)  # type: ignore[arg-type]
        return [str(p) for p in out]

    assert problems('enabled = true\nsecret = { from_env = "S" }\nreconcile_sec = 600\n') == []
    [literal] = problems('enabled = true\nsecret = "hunter2-the-value"\n')  # one problem, said once
    assert "never the secret itself" in literal and "hunter2" not in literal
    assert any("needs a secret" in p for p in problems("enabled = true\n"))
    assert any(
        "exactly one of" in p for p in problems('secret = { from_env = "A", from_file = "b" }\n')
    )
    assert any("reconcile_sec" in p for p in problems("reconcile_sec = 1\n"))
    assert any("host:port" in p for p in problems('listen = "8790"\n'))
    assert problems("enabled = false\n") == []  # off needs nothing else


def test_a_delivery_that_cannot_be_stored_is_503_not_200(
    hooks: WebhookIntake, fake: FakeGitHub
) -> None:
    hooks.spool.path.unlink(missing_ok=True)
    hooks.spool.path.mkdir()  # the spool cannot be appended to
    fake.open_issue(REPO, "Crash", author="alice")
    body = hook_payload(fake, "issues", REPO, 1, "opened")
    assert post_hook(url(hooks), SECRET, "issues", body, delivery="d-9")[0] == 503
    assert not hooks.spool.seen("d-9")  # a redelivery will be taken
