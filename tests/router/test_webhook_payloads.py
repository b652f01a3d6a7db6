"""Every recorded example (npm `@octokit/webhooks-examples`) of the events the receiver accepts
parses into the item the poller would make: repo, kind, number, author, association, labels,
state."""

from __future__ import annotations

from typing import Any

import pytest

from relayfleet.router.webhook import ACCEPTED, parse_event
from tests.webhook_examples import examples, why_unavailable

EXAMPLES = examples()
pytestmark = pytest.mark.skipif(EXAMPLES is None, reason=why_unavailable())


def cases() -> list[Any]:
    if EXAMPLES is None:
        return []
    return [
        pytest.param(name, i, id=f"{name}-{i}-{ex.get('action', '')}")
        for name in ACCEPTED
        for i, ex in enumerate(EXAMPLES.get(name, []))
    ]


def _login(obj: Any) -> str:
    return obj.get("login", "") if isinstance(obj, dict) else ""


def expected(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """What the example itself says, read straight from its JSON."""
    if name == "workflow_run":
        run = p["workflow_run"]
        return {
            "kind": "runs",
            "number": run["id"],
            "author": _login(run.get("triggering_actor")) or _login(run.get("actor")),
            "association": "",
            "labels": (),
            "state": run["status"],
        }
    obj = p["issue"] if name in ("issues", "issue_comment") else p["pull_request"]
    is_pr = name.startswith("pull_request") or "pull_request" in obj
    return {
        "kind": "pulls" if is_pr else "issues",
        "number": obj["number"],
        "author": obj["user"]["login"],
        "association": obj["author_association"],
        "labels": tuple(lbl["name"] for lbl in obj.get("labels") or ()),
        "state": obj.get("state", ""),  # (a pinned issue's payload has none)
    }


def test_every_accepted_event_has_examples() -> None:
    assert EXAMPLES is not None
    assert all(EXAMPLES.get(name) for name in ACCEPTED), [
        n for n in ACCEPTED if not EXAMPLES.get(n)
    ]


@pytest.mark.parametrize("name,i", cases())
def test_an_example_parses_into_the_polls_item(name: str, i: int) -> None:
    assert EXAMPLES is not None
    payload = EXAMPLES[name][i]
    intake = parse_event(name, payload)
    if name == "ping":
        repo = payload.get("repository") or {}
        org = payload.get("organization") or {}
        assert intake.repo == (repo.get("full_name") or f"{org.get('login')}/*")
        assert intake.items == ()
        return
    [item] = intake.items
    assert item.repo == payload["repository"]["full_name"]
    want = expected(name, payload)
    got = {k: getattr(item, k) for k in want}
    assert got == want
    assert item.updated_at and item.url.startswith("https://github.com/")
    if name == "issue_comment" and payload["action"] == "created":
        [c] = intake.comments
        assert (c.author, c.number, c.repo) == (
            payload["comment"]["user"]["login"],
            item.number,
            item.repo,
        )
    else:
        assert intake.comments == ()


def test_webhook_test_guesses_the_event_of_every_example() -> None:
    from relayfleet.cli.commands.webhook import guess_event

    assert EXAMPLES is not None
    wrong = [
        (name, i, guess_event(ex))
        for name in ACCEPTED
        for i, ex in enumerate(EXAMPLES[name])
        if guess_event(ex) != name
    ]
    assert wrong == []
