"""GitHub REST JSON -> `Item`, the one shape the router filters, matches and delivers (pure).

Sources: `GET /repos/{o}/{r}/issues` (issues AND pull requests: a PR carries a `pull_request`
key), `GET /repos/{o}/{r}/pulls` objects, `GET /repos/{o}/{r}/actions/runs` (`workflow_runs`),
and `GET /notifications` threads. `describe_change` says what changed between two sightings of
the same item, so an inbox line reads "labeled needs-human" rather than just "updated".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from relayfleet.router import hygiene

KINDS = ("issues", "pulls", "runs", "notifications")
EXCERPT = 280  # enough for `@login` mentions and free-word filters; the url has the rest


@dataclass(frozen=True)
class Item:
    kind: str  # issues | pulls | runs | notifications
    repo: str  # owner/name
    number: int  # issue/PR number; run id for runs; the subject's number for notifications
    title: str = ""
    state: str = ""  # open | closed (runs: their status; notifications: unread | read)
    labels: tuple[str, ...] = ()
    author: str = ""
    association: str = ""  # GitHub author_association: OWNER, MEMBER, CONTRIBUTOR, NONE, …
    assignees: tuple[str, ...] = ()
    updated_at: str = ""
    url: str = ""
    watch: str = ""  # the watch this sighting came through (set by the poller)
    comments: int = 0
    head_sha: str = ""
    run_status: str = ""
    run_conclusion: str = ""
    draft: bool = False
    merged: bool = False
    reason: str = ""  # notifications: mention, review_requested, …
    body_excerpt: str = ""
    change: str = ""  # opened, new comment, labeled x, new commits, closed, run failed, …
    id: str = ""  # GitHub's own id (issue id, run id, notification thread id)
    created_at: str = ""
    closed_at: str = ""
    reviewers: tuple[str, ...] = ()
    base: str = ""
    branch: str = ""  # runs: head branch; pulls endpoint: head ref
    event: str = ""  # runs: push, pull_request, …
    workflow: str = ""  # runs: workflow name
    workflow_path: str = ""
    run_attempt: int = 0
    subject_type: str = ""  # notifications: Issue, PullRequest, CheckSuite, …
    # What `router/hygiene.py` removed from this item's text, as sorted (name, count) pairs.
    hygiene: tuple[tuple[str, int], ...] = ()

    @property
    def ref(self) -> str:
        """`acme/WMS#12` (runs: `acme/WMS run 123`)."""
        if self.kind == "runs":
            return f"{self.repo} run {self.number}"
        return f"{self.repo}#{self.number}" if self.number else self.repo

    @property
    def item_id(self) -> str:
        """Stable identity across updates (the dedup key minus the version)."""
        ident = self.id if self.kind in ("runs", "notifications") and self.id else self.number
        return f"{self.kind}:{self.repo.lower()}#{ident}"


def _login(obj: Any) -> str:
    return obj.get("login", "") if isinstance(obj, dict) else ""


def _names(objs: Any, key: str = "name") -> tuple[str, ...]:
    out: list[str] = []
    for o in objs or ():
        if isinstance(o, dict) and o.get(key):
            out.append(str(o[key]))
        elif isinstance(o, str):
            out.append(o)
    return tuple(out)


def _excerpt(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"


def _repo_of(obj: dict[str, Any], fallback: str) -> str:
    repo = obj.get("repository")
    if isinstance(repo, dict) and repo.get("full_name"):
        return str(repo["full_name"])
    url = obj.get("repository_url") or ""
    m = re.search(r"/repos/([^/]+/[^/]+)$", url)
    return m.group(1) if m else fallback


def item_from_rest(kind: str, repo: str, obj: dict[str, Any]) -> Item:
    """One REST object as an `Item`. `kind` is the endpoint's: issues, pulls, runs, notifications.

    Raises `ValueError` for an object that is not one (the poller treats that as malformed).
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if kind in ("issues", "pulls"):
        return scrub(_issue(repo, obj), obj.get("body"))
    if kind == "runs":
        return scrub(_run(repo, obj))
    if kind == "notifications":
        return scrub(_notification(repo, obj))
    raise ValueError(f"unknown item kind {kind!r}")


def scrub(item: Item, body: Any = None) -> Item:
    """`item` as a reader of the page sees it (router/hygiene.py): every text field cleaned, the
    ones routes match on NFKC-folded, the excerpt cut from the cleaned `body`, and what was
    removed counted in `item.hygiene`. Every path from GitHub to an `Item` goes through here."""
    found: list[dict[str, int]] = []

    def field(text: str) -> str:
        got = hygiene.clean_field(text)
        found.append(got.counts)
        return got.text

    excerpt = item.body_excerpt
    if isinstance(body, str):
        got = hygiene.clean(body)
        found.append(got.counts)
        excerpt = _excerpt(got.text)
    cleaned = replace(
        item,
        title=field(item.title),
        labels=tuple(field(x) for x in item.labels),
        body_excerpt=excerpt,
        branch=field(item.branch),
        workflow=field(item.workflow),
        base=field(item.base),
    )
    return replace(cleaned, hygiene=tuple(hygiene.merge(*found).items()))


def _issue(repo: str, o: dict[str, Any]) -> Item:
    if "number" not in o or "updated_at" not in o:
        raise ValueError("an issue needs `number` and `updated_at`")
    pr = o.get("pull_request")
    is_pr = isinstance(pr, dict) or "head" in o  # issues endpoint, or the pulls endpoint itself
    merged_at = (pr or {}).get("merged_at") if isinstance(pr, dict) else o.get("merged_at")
    head_raw, base_raw = o.get("head"), o.get("base")
    head: dict[str, Any] = head_raw if isinstance(head_raw, dict) else {}
    base: dict[str, Any] = base_raw if isinstance(base_raw, dict) else {}
    return Item(
        kind="pulls" if is_pr else "issues",
        repo=_repo_of(o, repo),
        number=int(o["number"]),
        title=str(o.get("title") or ""),
        state=str(o.get("state") or ""),
        labels=_names(o.get("labels")),
        author=_login(o.get("user")),
        association=str(o.get("author_association") or ""),
        assignees=tuple(_login(a) for a in o.get("assignees") or () if _login(a)),
        updated_at=str(o["updated_at"]),
        url=str(o.get("html_url") or ""),
        comments=int(o.get("comments") or 0),
        head_sha=str(head.get("sha") or ""),
        draft=bool(o.get("draft")),
        merged=bool(merged_at) or bool(o.get("merged")),
        body_excerpt=_excerpt(o.get("body")),
        id=str(o.get("id") or ""),
        created_at=str(o.get("created_at") or ""),
        closed_at=str(o.get("closed_at") or ""),
        reviewers=_names(o.get("requested_reviewers"), "login"),
        base=str(base.get("ref") or ""),
        branch=str(head.get("ref") or ""),
    )


def _run(repo: str, o: dict[str, Any]) -> Item:
    if "id" not in o or "status" not in o:
        raise ValueError("a workflow run needs `id` and `status`")
    title = o.get("display_title") or o.get("name") or "workflow run"
    return Item(
        kind="runs",
        repo=_repo_of(o, repo),
        number=int(o["id"]),
        title=str(title),
        state=str(o.get("status") or ""),
        author=_login(o.get("triggering_actor")) or _login(o.get("actor")),
        updated_at=str(o.get("updated_at") or o.get("created_at") or ""),
        url=str(o.get("html_url") or ""),
        head_sha=str(o.get("head_sha") or ""),
        run_status=str(o.get("status") or ""),
        run_conclusion=str(o.get("conclusion") or ""),
        id=str(o["id"]),
        created_at=str(o.get("created_at") or ""),
        branch=str(o.get("head_branch") or ""),
        event=str(o.get("event") or ""),
        workflow=str(o.get("name") or ""),
        workflow_path=str(o.get("path") or ""),
        run_attempt=int(o.get("run_attempt") or 1),
    )


def _notification(repo: str, o: dict[str, Any]) -> Item:
    subject = o.get("subject")
    if "id" not in o or not isinstance(subject, dict):
        raise ValueError("a notification needs `id` and `subject`")
    api_url = str(subject.get("url") or "")
    m = re.search(r"/(?:issues|pulls)/(\d+)$", api_url)
    full = _repo_of(o, repo)
    return Item(
        kind="notifications",
        repo=full,
        number=int(m.group(1)) if m else 0,
        title=str(subject.get("title") or ""),
        state="unread" if o.get("unread") else "read",
        updated_at=str(o.get("updated_at") or ""),
        url=_html_url(api_url, full),
        reason=str(o.get("reason") or ""),
        id=str(o["id"]),
        subject_type=str(subject.get("type") or ""),
    )


def _html_url(api_url: str, repo: str) -> str:
    """`…/repos/o/r/pulls/7` -> `https://github.com/o/r/pull/7` (best effort; API host agnostic)."""
    m = re.search(r"/repos/([^/]+/[^/]+)/(issues|pulls)/(\d+)$", api_url)
    if not m:
        return f"https://github.com/{repo}" if repo else ""
    path = "pull" if m.group(2) == "pulls" else "issues"
    return f"https://github.com/{m.group(1)}/{path}/{m.group(3)}"


def item_from_dict(d: dict[str, Any]) -> Item:
    """The simple JSON `gh fleet route test --item` takes, e.g.
    `{"repo": "acme/WMS", "kind": "pulls", "number": 7, "labels": ["needs-human"], …}`."""
    kind = str(d.get("kind") or "issues")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    labels = d.get("labels") or ()
    if isinstance(labels, str):
        labels = (labels,)
    return scrub(
        Item(
            kind=kind,
            repo=str(d.get("repo") or ""),
            number=int(d.get("number") or 0),
            title=str(d.get("title") or ""),
            state=str(d.get("state") or "open"),
            labels=tuple(str(x) for x in labels),
            author=str(d.get("author") or ""),
            association=str(d.get("association") or "").upper(),
            assignees=tuple(str(x) for x in d.get("assignees") or ()),
            updated_at=str(d.get("updated_at") or ""),
            url=str(d.get("url") or ""),
            watch=str(d.get("watch") or ""),
            merged=bool(d.get("merged")),
            reason=str(d.get("reason") or ""),
        ),
        d.get("body"),
    )


# -- what changed ---------------------------------------------------------------------------
def summary(item: Item) -> dict[str, Any]:
    """The few fields `describe_change` compares, small enough to keep per item in the cursor."""
    return {
        "state": item.state,
        "labels": sorted(item.labels),
        "assignees": sorted(item.assignees),
        "comments": item.comments,
        "head_sha": item.head_sha,
        "run": [item.run_status, item.run_conclusion],
        "title": item.title,
        "draft": item.draft,
        "merged": item.merged,
    }


_RUN_WORDS = {"failure": "run failed", "success": "run succeeded", "cancelled": "run cancelled",
              "timed_out": "run timed out", "startup_failure": "run failed to start"}  # fmt: skip
_REASON_WORDS = {"mention": "mentioned", "team_mention": "team mentioned",
                 "review_requested": "review requested", "assign": "assigned",
                 "comment": "new comment", "ci_activity": "CI activity",
                 "state_change": "state changed", "author": "activity on your thread",
                 "approval_requested": "approval requested"}  # fmt: skip


def describe_change(prev: dict[str, Any] | None, item: Item, *, known_until: str = "") -> str:
    """A short phrase for what happened, from the previous `summary` (None: first sighting).

    `known_until` (ISO time, GitHub's clock): every item that existed then has been seen, so a
    first sighting created at or after it is a new item, one created before it an old one that
    only now shows up (e.g. just assigned). Without it, only the item's own timestamps tell."""
    if item.kind == "runs":
        if item.run_status == "completed":
            c = item.run_conclusion
            return _RUN_WORDS.get(c, f"run {c}" if c else "run completed")
        return {"in_progress": "run started", "queued": "run queued"}.get(
            item.run_status, f"run {item.run_status}".strip()
        )
    if item.kind == "notifications":
        return _REASON_WORDS.get(item.reason, item.reason.replace("_", " ") or "notified")
    if prev is None:
        return _first_sighting(item, known_until)
    parts: list[str] = []
    if prev.get("state") != item.state:
        if item.state == "closed":
            parts.append("merged" if item.merged else "closed")
        else:
            parts.append("reopened")
    old_labels = set(prev.get("labels") or ())
    added = [x for x in item.labels if x not in old_labels]
    removed = sorted(old_labels - set(item.labels))
    if added:
        parts.append("labeled " + ", ".join(added))
    if removed:
        parts.append("unlabeled " + ", ".join(removed))
    new_assignees = [a for a in item.assignees if a not in set(prev.get("assignees") or ())]
    if new_assignees:
        parts.append("assigned " + ", ".join(f"@{a}" for a in new_assignees))
    grew = item.comments - int(prev.get("comments") or 0)
    if grew > 0:
        parts.append("new comment" if grew == 1 else f"{grew} new comments")
    if item.head_sha and prev.get("head_sha") and prev["head_sha"] != item.head_sha:
        parts.append("new commits")
    if prev.get("draft") and not item.draft:
        parts.append("ready for review")
    if prev.get("title") not in (None, item.title):
        parts.append("retitled")
    return ", ".join(parts) or "updated"


# An item first updated within this long of its creation is still news of its opening (opened,
# then assigned or labelled a moment later).
NEW_WINDOW = 120


def _ts(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _is_new(item: Item, known_until: str) -> bool:
    created, updated, known = _ts(item.created_at), _ts(item.updated_at), _ts(known_until)
    if created is None:
        return False
    if known is not None and created >= known:
        return True  # created since we last looked: we could not have seen it before
    return updated is not None and updated - created <= NEW_WINDOW


def _first_sighting(item: Item, known_until: str = "") -> str:
    closed_now = item.state == "closed" and item.closed_at and item.closed_at == item.updated_at
    if closed_now and item.created_at != item.updated_at:
        return "merged" if item.merged else "closed"
    if _is_new(item, known_until):
        return "opened"
    # An old item we had not seen: it changed and matches now, but what changed is unknown.
    if item.assignees:
        return "now matches (assigned to " + ", ".join(f"@{a}" for a in item.assignees) + ")"
    return "now matches"


def with_change(item: Item, prev: dict[str, Any] | None, *, known_until: str = "") -> Item:
    return replace(item, change=describe_change(prev, item, known_until=known_until))
