"""The webhook receiver: verify, dedup by delivery id, spool; and a payload -> the poller's `Item`.

Order per request, and why:
1. size: over GitHub's 25 MB cap -> 413 without reading the body;
2. `X-Hub-Signature-256` (HMAC-SHA256 of the raw body, compared in constant time) before the
   body is parsed at all: a missing or wrong one -> 401, logged without the body;
3. `X-GitHub-Event` not accepted -> 202 (GitHub shows it as delivered; nothing is kept);
4. the body must be JSON; then `Spool.add` makes it durable (a known `X-GitHub-Delivery` is a
   no-op) and only then the answer is 200. The router's loop drains the spool into the same
   pipeline as polling (`Poller.intake`), so a `kill -9` after the 200 loses nothing.

`parse_event` (pure) maps a payload to the items and comments the pipeline takes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from relayfleet.router.commands import Comment, comment_from_rest
from relayfleet.router.items import Item, item_from_rest
from relayfleet.router.spool import Spool

log = logging.getLogger("relayfleet.router.webhook")

ACCEPTED = (
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "workflow_run",
    "ping",
)
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of `X-Hub-Signature-256`. An empty secret never verifies."""
    if not secret or not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def post_delivery(
    url: str, secret: bytes, event: str, body: bytes, *, delivery: str, timeout: float = 30.0
) -> tuple[int, str]:
    """POST a delivery the way GitHub does (`gh fleet webhook test`): (status, body text)."""
    import urllib.error
    import urllib.request

    headers = {
        "Content-Type": "application/json",
        "User-Agent": "relayfleet-webhook-test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body),
    }
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


# -- payload -> items ------------------------------------------------------------------------
@dataclass(frozen=True)
class Intake:
    """What one delivery brings: items for the watches, comments for commands, and the repo
    (or `owner/*` for an organisation hook's ping) that proves webhooks are flowing."""

    event: str
    action: str = ""
    repo: str = ""
    items: tuple[Item, ...] = ()
    comments: tuple[Comment, ...] = ()
    # Item fields this payload's object does not carry (the pipeline keeps the last known value
    # for them, so the dedup key equals the one polling computes)
    partial: frozenset[str] = field(default_factory=frozenset)


def _repo_name(payload: dict[str, Any]) -> str:
    repo = payload.get("repository")
    if isinstance(repo, dict) and repo.get("full_name"):
        return str(repo["full_name"])
    org = payload.get("organization")
    if isinstance(org, dict) and org.get("login"):
        return f"{org['login']}/*"
    return ""


def _change(event: str, action: str, payload: dict[str, Any], item: Item) -> str:
    """What happened, in the words the poller uses; "" lets the pipeline describe it."""
    label = payload.get("label")
    name = label.get("name", "") if isinstance(label, dict) else ""
    assignee = payload.get("assignee")
    who = assignee.get("login", "") if isinstance(assignee, dict) else ""
    if event == "issue_comment":
        return "new comment" if action == "created" else ""
    if event == "pull_request_review":
        review = payload.get("review")
        state = str(review.get("state") or "") if isinstance(review, dict) else ""
        words = {"approved": "approved", "changes_requested": "changes requested"}
        return "review " + words.get(state.lower(), state.lower() or action)
    if event == "pull_request_review_comment":
        return "new review comment" if action == "created" else ""
    if event == "workflow_run":
        return ""
    if action == "closed":
        return "merged" if item.merged else "closed"
    words = {
        "opened": "opened",
        "reopened": "reopened",
        "labeled": f"labeled {name}".strip(),
        "unlabeled": f"unlabeled {name}".strip(),
        "assigned": f"assigned @{who}" if who else "assigned",
        "synchronize": "new commits",
        "ready_for_review": "ready for review",
        "review_requested": "review requested",
        "edited": "edited",
    }
    return words.get(action, action.replace("_", " "))


def _missing(obj: dict[str, Any], *, pr: bool) -> frozenset[str]:
    """Dedup-relevant fields this object leaves out (a review's PR has no `comments`, a pinned
    issue's payload no `state`)."""
    keys = ["comments", "state", "labels", "assignees"] + (["draft"] if pr else [])
    return frozenset(k for k in keys if k not in obj)


def parse_event(event: str, payload: Any) -> Intake:
    """A verified payload -> `Intake`. Raises ValueError for one that is not what it claims."""
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object")
    action = str(payload.get("action") or "")
    repo = _repo_name(payload)
    if event == "ping" or event not in ACCEPTED:
        return Intake(event, action, repo)
    if not repo or repo.endswith("/*"):
        raise ValueError(f"a {event} payload needs `repository.full_name`")
    items: list[Item] = []
    comments: list[Comment] = []
    partial: set[str] = set()
    if event in ("issues", "issue_comment"):
        obj = payload.get("issue")
        if not isinstance(obj, dict):
            raise ValueError(f"a {event} payload needs `issue`")
        item = item_from_rest("issues", repo, obj)
        partial |= _missing(obj, pr=item.kind == "pulls")
        items.append(item)
        comment = payload.get("comment")
        if event == "issue_comment" and action == "created" and isinstance(comment, dict):
            comments.append(comment_from_rest(repo, comment, item.number))
    elif event.startswith("pull_request"):
        obj = payload.get("pull_request")
        if not isinstance(obj, dict):
            raise ValueError(f"a {event} payload needs `pull_request`")
        # Polling reads PRs through the issues list, which has no head/base: leave them out so
        # both sightings of one version share a dedup key.
        item = replace(item_from_rest("pulls", repo, obj), head_sha="", branch="", base="")
        partial |= _missing(obj, pr=True)
        items.append(item)
    elif event == "workflow_run":
        obj = payload.get("workflow_run")
        if not isinstance(obj, dict):
            raise ValueError("a workflow_run payload needs `workflow_run`")
        items.append(item_from_rest("runs", repo, obj))
    # The delivery's own repository is the truth (a run's object may name its head repo, a
    # transferred issue its new home).
    items = [replace(i, repo=repo, change=_change(event, action, payload, i)) for i in items]
    return Intake(event, action, repo, tuple(items), tuple(comments), frozenset(partial))


# -- the HTTP receiver -----------------------------------------------------------------------
@dataclass
class Health:
    """When deliveries last came, per repo (`owner/*` for an organisation hook)."""

    last: float | None = None
    last_event: str = ""
    repos: dict[str, float] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0
    started: float = field(default_factory=time.time)

    def saw(self, repo: str, event: str, now: float) -> None:
        self.last, self.last_event = now, event
        if repo:
            self.repos[repo.lower()] = now

    def healthy_repos(self, now: float, window: float) -> set[str]:
        # A predecessor's deliveries (seeded for `status`) do not count: whatever GitHub sent
        # while no receiver listened is lost, and only the normal cadence brings it in.
        return {r for r, t in self.repos.items() if now - t <= window and t >= self.started}

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_delivery": self.last,
            "last_event": self.last_event,
            "repos": dict(self.repos),
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": self.rejected,
            "started": self.started,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # a client that stalls mid-request must not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # our own log lines only
        pass

    def _answer(self, status: int, message: str) -> None:
        body = (json.dumps({"message": message}) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200, "relayfleet webhook receiver: POST GitHub deliveries here")

    def do_POST(self) -> None:
        status, message = self.server.receiver.handle(
            {k.lower(): v for k, v in self.headers.items()}, self.rfile, self.client_address[0]
        )
        if status == 413:
            self.close_connection = True  # the body was not read
        self._answer(status, message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


class Receiver:
    """The listening socket and its request logic; `wake` tells the router's loop to drain."""

    def __init__(
        self,
        spool: Spool,
        secret: Callable[[], bytes],
        *,
        wake: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self.secret = secret
        self.wake = wake or threading.Event()
        self.clock = clock
        self.health = Health(started=clock())
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, h: dict[str, str], rfile: Any, peer: str) -> tuple[int, str]:
        delivery = h.get("x-github-delivery", "")
        event = h.get("x-github-event", "")
        try:
            length = int(h.get("content-length", ""))
        except ValueError:
            return 411, "Content-Length required"
        if length > MAX_BODY:
            log.warning("delivery %s (%s) from %s: %d bytes, over the 25 MB cap (413)",
                        delivery or "-", event or "-", peer, length)  # fmt: skip
            return 413, "payload too large"
        body = rfile.read(length) if length > 0 else b""
        if not signature_ok(self.secret(), body, h.get("x-hub-signature-256")):
            with self._lock:
                self.health.rejected += 1
            why = "missing" if not h.get("x-hub-signature-256") else "wrong"
            log.warning("delivery %s (%s) from %s: %s X-Hub-Signature-256, refused (401)",
                        delivery or "-", event or "-", peer, why)  # fmt: skip
            return 401, "bad signature"
        if not delivery or not event:
            return 400, "X-GitHub-Delivery and X-GitHub-Event are required"
        if event not in ACCEPTED:
            with self._lock:
                self.health.ignored += 1
                self.health.saw("", event, self.clock())
            return 202, f"event {event} ignored"
        try:
            payload = json.loads(body)
        except ValueError:
            log.warning("delivery %s (%s): the body is not JSON (400)", delivery, event)
            return 400, "body is not JSON"
        repo = _repo_name(payload) if isinstance(payload, dict) else ""
        now = self.clock()
        if event == "ping":
            with self._lock:
                self.health.saw(repo, event, now)
                self.health.accepted += 1
            log.info("ping %s from %s (hook %s)", delivery, repo or "?",
                     payload.get("hook_id") if isinstance(payload, dict) else "?")  # fmt: skip
            self.wake.set()
            return 200, "pong"
        try:
            fresh = self.spool.add(delivery, event, body, now)
        except OSError as exc:  # full disk, read-only state dir: GitHub shows the failure
            log.error("delivery %s (%s) not stored: %s (503)", delivery, event, exc)
            return 503, "could not store the delivery"
        with self._lock:
            self.health.saw(repo, event, now)
            if fresh:
                self.health.accepted += 1
            else:
                self.health.duplicates += 1
        if not fresh:
            return 200, "duplicate delivery: already taken"
        self.wake.set()
        return 200, "ok"

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, listen: str) -> tuple[str, int]:
        host, _, port = listen.rpartition(":")
        server = _Server((host.strip("[]"), int(port)), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
        self._thread.start()
        addr = server.server_address
        return str(addr[0]), int(addr[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def health_dict(self) -> dict[str, Any]:
        with self._lock:
            return self.health.to_dict()

    def healthy_repos(self, now: float, window: float) -> set[str]:
        with self._lock:  # the request threads update it
            return self.health.healthy_repos(now, window)
