"""Webhook payloads from the fake GitHub's state, shaped like the real ones, and a sender.

    body = hook_payload(fake, "issues", "acme/app", 12, "labeled", label="bug")
    status = post_hook(url, secret, "issues", body)         # signed like GitHub signs it

The item objects are the same renderings the fake's REST API returns, so a webhook and a poll of
one version of an item describe it identically (as on GitHub).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from relayfleet.fakes.github_state import GitHubState, _user, iso

WEB = "https://github.com"


def render_comment(
    fake: GitHubState, repo: str, number: int, c: dict[str, Any], base: str
) -> dict[str, Any]:
    cid = int(c.get("id") or 0)
    ts = iso(int(c.get("created_at") or fake.now()))
    return {
        "url": f"{base}/repos/{repo}/issues/comments/{cid}",
        "html_url": f"{WEB}/{repo}/issues/{number}#issuecomment-{cid}",
        "issue_url": f"{base}/repos/{repo}/issues/{number}",
        "id": cid,
        "node_id": f"IC_{cid}",
        "user": _user(str(c.get("author") or ""), base),
        "created_at": ts,
        "updated_at": ts,
        "author_association": str(c.get("association") or "NONE"),
        "body": str(c.get("body") or ""),
    }


def hook_payload(
    fake: Any,
    event: str,
    repo: str,
    number: int = 0,
    action: str = "",
    *,
    label: str = "",
    run_id: int = 0,
    sender: str = "octocat",
) -> dict[str, Any]:
    """The payload GitHub would send now for `event` on `repo#number` (or run `run_id`)."""
    base = fake.base_url or "https://api.github.com"
    out: dict[str, Any] = {"action": action} if action else {}
    if event == "ping":
        out = {"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "Repository"}}
    elif event == "workflow_run":
        run = next(r for r in fake.repos[repo].runs if r.id == run_id)
        out["workflow_run"] = fake.render_run(repo, run, base)
    else:
        item = fake.issue(repo, number)
        if event in ("issues", "issue_comment"):
            out["issue"] = fake.render_issue(repo, item, base)
        else:
            out["pull_request"] = fake.render_pull(repo, item, base)
        if label:
            out["label"] = {"name": label}
        if event == "issue_comment" and item.comment_log:
            out["comment"] = render_comment(fake, repo, number, item.comment_log[-1], base)
    out["repository"] = fake._repo_json(repo, base)
    out["sender"] = _user(sender, base)
    return out


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post_hook(
    url: str,
    secret: bytes | None,
    event: str,
    payload: Any,
    *,
    delivery: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """POST a delivery like GitHub does (signed when `secret`); returns (status, body text)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
