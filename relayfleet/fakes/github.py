"""A fake GitHub REST API on loopback: a real `ThreadingHTTPServer` in a thread.

    fake = FakeGitHub(token="ghp_test")
    base_url = fake.start()                 # http://127.0.0.1:<port>
    n = fake.open_issue("acme/app", "Crash on start", author="alice", association="NONE")
    fake.label("acme/app", n, "bug")
    ... point the client at base_url (FLEET_GITHUB_API_URL) ...
    assert fake.count(path_prefix="/repos/acme/app/issues", status=304) == 1
    fake.stop()

What it speaks (shapes as in the real REST API): `GET /user`, `/repos/{o}/{r}/issues`,
`/repos/{o}/{r}/pulls`, `/repos/{o}/{r}/actions/runs`, `/repos/{o}/{r}/actions/runs/{id}`,
`/repos/{o}/{r}`, `/notifications`, `/rate_limit`; each answer to a valid token carries its
`X-OAuth-Scopes` like a classic token's. `seed_repo` gives a repo the history of a real busy one
(hundreds of issues, a hundred runs, long runs still in progress); `bulk_label` changes
hundreds of items in one second, as a bot does.
Like GitHub it sends a strong ETag per response (computed from the body and the token, since real
ETags are token-specific), answers `If-None-Match` / `If-Modified-Since` with 304 (a 304 does
not spend `x-ratelimit-remaining`, a 200 does), paginates with `Link`, sends `X-Poll-Interval` and
`Last-Modified` on notifications, and requires a configured token (401 JSON otherwise).

Injectable faults: `fail_next` (5xx, optionally on one `page` of a list), `secondary_limit`
(403/429 + retry-after), `malformed_next`, `slow_next`, `not_found_repo`. Every API request is
recorded (`requests`, `count`, `reset_log`).

Other processes (the demo, benchmarks) run it with
`python -m relayfleet.fakes.github --port 0 --print-url` and drive it through `RemoteFakeGitHub`
(a small JSON control plane under `/_fake/`, same token, never counted as API requests).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from relayfleet.fakes.github_state import GitHubState, ManualClock, parse_iso

__all__ = ["FakeGitHub", "ManualClock", "RemoteFakeGitHub", "RequestRecord"]

DEFAULT_TOKEN = "ghp_fakeFleetToken0000000000000000000001"
DOCS = "https://docs.github.com/rest"
SCOPES = "notifications, repo"
CONCLUSIONS = {"success", "failure", "neutral", "cancelled", "skipped", "timed_out"}
CONCLUSIONS |= {"action_required", "stale", "startup_failure"}
PARTICIPATING = {"mention", "team_mention", "review_requested", "assign", "author", "comment"}
PARTICIPATING |= {"manual", "state_change"}

# State mutators that get wrapped in the server lock and exposed through the control plane.
MUTATORS = (
    "add_repo",
    "open_issue",
    "open_pr",
    "comment",
    "label",
    "unlabel",
    "assign",
    "edit",
    "close",
    "reopen",
    "push_commit",
    "request_review",
    "add_run",
    "update_run",
    "seed_repo",
    "bulk_label",
    "rerun",
    "notify",
    "mention",
    "mark_read",
)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]  # the request headers of interest (never the token itself)
    ts: float


@dataclass
class Fault:
    kind: str  # status | secondary | malformed | slow
    remaining: int
    path_prefix: str | None = None
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    page: int | None = None  # only requests for this page of a list (`?page=N`; 1 = no page)


@dataclass
class RateWindow:
    limit: int = 5000
    used: int = 0
    reset: int = 0


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class _Server(ThreadingHTTPServer):
    """The HTTP server, holding the fake its handlers answer for."""

    def __init__(self, address: tuple[str, int], fake: FakeGitHub) -> None:
        super().__init__(address, _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.github.com
    server_version = "GitHub.com"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the request log
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        server = self.server
        assert isinstance(server, _Server)  # start() serves this handler only from a _Server
        fake = server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        resp = fake.handle(method, self.path, dict(self.headers.items()), body)
        raw = resp.raw if resp.raw is not None else b""
        if resp.raw is None and resp.body is not None:
            raw = json.dumps(resp.body, separators=(",", ":")).encode()
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.status != 304:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if resp.status != 304:
            self.wfile.write(raw)


class FakeGitHub(GitHubState):
    """The fake server plus its state (see the module docstring)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        login: str = "octocat",
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: int = 60,
        per_page_max: int = 100,
    ) -> None:
        super().__init__(clock=clock, login=login)
        self.lock = threading.RLock()
        self.tokens: dict[str, str] = {token: login}
        self.scopes: dict[str, str] = {}  # token -> X-OAuth-Scopes (default SCOPES)
        self.token = token
        self.poll_interval = poll_interval
        self.per_page_max = per_page_max
        self.rate = RateWindow(reset=self.now() + 3600)
        self._faults: list[Fault] = []
        self._missing: set[str] = set()
        self._log: list[RequestRecord] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 in a daemon thread; returns the base URL (no trailing slash)."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", port), self)
        server.daemon_threads = True
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a slow fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        if not self.base_url:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- configuration and faults -------------------------------------------------------------

    def add_token(self, token: str, login: str | None = None, scopes: str | None = None) -> None:
        with self.lock:
            self.tokens[token] = login or self.login
            if scopes is not None:
                self.scopes[token] = scopes

    def revoke_token(self, token: str) -> None:
        with self.lock:
            self.tokens.pop(token, None)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        path_prefix: str | None = None,
        page: int | None = None,
    ) -> None:
        """Answer the next `n` matching requests with `status`; `page` narrows it to one page
        of a list (a 502 in the middle of a long read)."""
        with self.lock:
            self._faults.append(Fault("status", n, path_prefix, status=status, page=page))

    def secondary_limit(
        self,
        n: int = 1,
        retry_after: int | None = 60,
        status: int = 403,
        path_prefix: str | None = None,
    ) -> None:
        with self.lock:
            self._faults.append(
                Fault("secondary", n, path_prefix, status=status, retry_after=retry_after)
            )

    def malformed_next(self, n: int = 1, path_prefix: str | None = None) -> None:
        with self.lock:
            self._faults.append(Fault("malformed", n, path_prefix, status=200))

    def slow_next(self, n: int = 1, delay: float = 2.0, path_prefix: str | None = None) -> None:
        with self.lock:
            self._faults.append(Fault("slow", n, path_prefix, delay=delay))

    def not_found_repo(self, repo: str) -> None:
        """Answer 404 for everything under /repos/<repo>/ (lost access, renamed, deleted)."""
        with self.lock:
            self._missing.add(repo)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._missing.clear()

    def set_rate_limit(
        self, *, limit: int | None = None, remaining: int | None = None, reset_in: int | None = None
    ) -> None:
        with self.lock:
            if limit is not None:
                self.rate.limit = limit
            if remaining is not None:
                self.rate.used = self.rate.limit - remaining
            if reset_in is not None:
                self.rate.reset = self.now() + reset_in

    # ---- the request log ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._log)

    def count(
        self, path_prefix: str | None = None, status: int | None = None, method: str | None = None
    ) -> int:
        with self.lock:
            return sum(
                1
                for r in self._log
                if (path_prefix is None or r.path.startswith(path_prefix))
                and (status is None or r.status == status)
                and (method is None or r.method == method)
            )

    def reset_log(self) -> None:
        with self.lock:
            self._log.clear()

    @property
    def points_used(self) -> int:
        """Primary rate-limit points spent in the current window (what a 200 costs, not a 304)."""
        with self.lock:
            self._roll_window()
            return self.rate.used

    # ---- request handling ---------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        h = {k.lower(): v for k, v in headers.items()}
        token = self._token_from(h.get("authorization", ""))
        if path.startswith("/_fake/"):
            return self._control(method, path, token, body)
        delay = 0.0
        with self.lock:
            resp, delay = self._respond(method, path, query, h, token)
        if delay:
            self._stopping.wait(delay)
        return resp

    def _respond(
        self, method: str, path: str, query: dict[str, str], h: dict[str, str], token: str | None
    ) -> tuple[Response, float]:
        self._roll_window()
        login = self.tokens.get(token or "")
        delay = 0.0
        resp: Response | None
        if login is None:
            resp = Response(401, {"message": "Bad credentials", "documentation_url": DOCS})
            resp.body["status"] = "401"
        else:
            fault = self._take_fault(path, query)
            if fault is not None and fault.kind == "slow":
                delay, fault = fault.delay, None
            resp = self._faulted(fault, path) if fault and fault.kind != "malformed" else None
            if resp is None:
                resp = self._serve(method, path, query, h, token or "", login)
                if fault is not None and resp.status == 200:  # malformed: cut the JSON short
                    resp.raw = b'{"message": "truncated'
                    resp.body = None
        self._log.append(
            RequestRecord(method, path, query, resp.status, self._interesting(h), self.clock())
        )
        return resp, delay

    def _serve(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        h: dict[str, str],
        token: str,
        login: str,
    ) -> Response:
        if method != "GET":
            return Response(404, {"message": "Not Found", "documentation_url": DOCS})
        free = path == "/rate_limit"  # GitHub does not charge /rate_limit to the primary limit
        if not free and self.rate.used >= self.rate.limit:
            resp = Response(403, {"message": f"API rate limit exceeded for user {login}."})
            resp.body["documentation_url"] = f"{DOCS}/overview/rate-limits-for-the-rest-api"
            resp.headers.update(self._rate_headers())
            return resp
        resp = self._route(path, query, login)
        if resp.status == 200:
            raw = json.dumps(resp.body, separators=(",", ":")).encode()
            # ETags are token-specific on GitHub; hash the token in so the fake behaves the same.
            tag = hashlib.sha256(token.encode() + b"\0" + raw).hexdigest()[:40]
            resp.headers["ETag"] = f'"{tag}"'
            resp.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            resp.headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if self._not_modified(h, resp.headers):
                resp = Response(304, None, {k: v for k, v in resp.headers.items()})
            elif not free:
                self.rate.used += 1
        elif resp.status == 404 and not free:
            self.rate.used += 1
        resp.headers.update(self._rate_headers())
        resp.headers["X-OAuth-Scopes"] = self.scopes.get(token, SCOPES)
        resp.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        resp.headers["X-GitHub-Api-Version-Selected"] = "2022-11-28"
        resp.headers["X-GitHub-Request-Id"] = f"FAKE:{len(self._log):08X}"
        return resp

    def _not_modified(self, h: dict[str, str], out: dict[str, str]) -> bool:
        inm = h.get("if-none-match")
        if inm is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return out["ETag"] in tags or "*" in tags
        ims, lm = h.get("if-modified-since"), out.get("Last-Modified")
        if ims and lm:
            try:
                return parsedate_to_datetime(lm) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def _route(self, path: str, query: dict[str, str], login: str) -> Response:
        if path == "/user":
            return Response(200, self.render_user(login, self.base_url))
        if path == "/rate_limit":
            return Response(200, self._rate_limit_json())
        if path == "/notifications":
            return self._notifications(query, login)
        seg = path.strip("/").split("/")
        if len(seg) >= 3 and seg[0] == "repos":
            repo = f"{seg[1]}/{seg[2]}"
            rest = "/".join(seg[3:])
            if repo not in self.repos or repo in self._missing:
                return self._not_found(path)
            if rest == "":
                return Response(200, self._repo_json(repo, self.base_url))
            if rest == "issues":
                return self._issues(repo, query, path)
            if rest == "pulls":
                return self._pulls(repo, query, path)
            if rest == "issues/comments":
                return self._comments(repo, query, path)
            if rest == "actions/runs":
                return self._runs(repo, query, path)
            if rest.startswith("actions/runs/") and rest.count("/") == 2:
                return self._run(repo, rest.rsplit("/", 1)[1], path)
            m = re.fullmatch(r"issues/(\d+)", rest)
            if m and int(m.group(1)) in self.repos[repo].issues:
                issue = self.repos[repo].issues[int(m.group(1))]
                return Response(200, self.render_issue(repo, issue, self.base_url))
            # One issue's (or PR's) comments, oldest first.
            m = re.fullmatch(r"issues/(\d+)/comments", rest)
            if m and int(m.group(1)) in self.repos[repo].issues:
                since = query.get("since", "")
                rows = self.render_comments(repo, int(m.group(1)), self.base_url)
                rows = [c for c in rows if not since or c["updated_at"] >= since]
                chunk, headers = self._page(rows, query, path, 30, 100)
                return Response(200, chunk, headers)
        return self._not_found(path)

    def _not_found(self, path: str) -> Response:
        body = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        return Response(404, body)

    # ---- endpoints ----------------------------------------------------------------------------

    def _page(
        self, items: list[Any], query: dict[str, str], path: str, default: int, cap: int
    ) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = max(1, min(int(query.get("per_page", default)), cap))
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            per_page, page = default, 1
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def url(p: int) -> str:
            q = dict(query, page=str(p))
            return f"<{self.base_url}{path}?{urlencode(q)}>"

        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links += [f'{url(page - 1)}; rel="prev"', f'{url(1)}; rel="first"']
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def _issues(self, repo: str, q: dict[str, str], path: str) -> Response:
        state = q.get("state", "open")
        items = list(self.repos[repo].issues.values())
        if state in ("open", "closed"):
            items = [i for i in items if i.state == state]
        if q.get("labels"):
            want = {x.strip() for x in q["labels"].split(",") if x.strip()}
            items = [i for i in items if want <= set(i.labels)]
        assignee = q.get("assignee")
        if assignee == "none":
            items = [i for i in items if not i.assignees]
        elif assignee == "*":
            items = [i for i in items if i.assignees]
        elif assignee:
            items = [i for i in items if assignee in i.assignees]
        if q.get("creator"):
            items = [i for i in items if i.author == q["creator"]]
        if q.get("since"):
            try:
                since = parse_iso(q["since"])
            except ValueError:
                return Response(422, {"message": "Validation Failed", "documentation_url": DOCS})
            items = [i for i in items if i.updated_at >= since]
        key = {"updated": "updated_at", "comments": "comments"}.get(q.get("sort", ""), "created_at")
        desc = q.get("direction", "desc") != "asc"
        items.sort(key=lambda i: (getattr(i, key), i.number), reverse=desc)
        chunk, headers = self._page(items, q, path, 30, self.per_page_max)
        return Response(200, [self.render_issue(repo, i, self.base_url) for i in chunk], headers)

    def _comments(self, repo: str, q: dict[str, str], path: str) -> Response:
        """`GET /repos/{o}/{r}/issues/comments`: every issue and PR comment of the repo."""
        from relayfleet.fakes.github_hooks import render_comment

        rows = [(c, i.number) for i in self.repos[repo].issues.values() for c in i.comment_log]
        if q.get("since"):
            try:
                since = parse_iso(q["since"])
            except ValueError:
                return Response(422, {"message": "Validation Failed", "documentation_url": DOCS})
            rows = [(c, n) for c, n in rows if int(c.get("created_at") or 0) >= since]
        desc = q.get("direction", "asc" if not q.get("sort") else "desc") != "asc"
        rows.sort(key=lambda r: (int(r[0].get("created_at") or 0), int(r[0].get("id") or 0)),
                  reverse=desc)  # fmt: skip
        chunk, headers = self._page(rows, q, path, 30, self.per_page_max)
        out = [render_comment(self, repo, n, c, self.base_url) for c, n in chunk]
        return Response(200, out, headers)

    def _pulls(self, repo: str, q: dict[str, str], path: str) -> Response:
        state = q.get("state", "open")
        items = [i for i in self.repos[repo].issues.values() if i.is_pr]
        if state in ("open", "closed"):
            items = [i for i in items if i.state == state]
        if q.get("base"):
            items = [i for i in items if i.base_ref == q["base"]]
        if q.get("head"):
            items = [i for i in items if i.head_ref == q["head"].split(":")[-1]]
        sort = q.get("sort", "created")
        key = "updated_at" if sort == "updated" else "created_at"
        # GitHub: default direction is desc for sort=created, asc otherwise.
        desc = q.get("direction", "desc" if sort == "created" else "asc") != "asc"
        items.sort(key=lambda i: (getattr(i, key), i.number), reverse=desc)
        chunk, headers = self._page(items, q, path, 30, self.per_page_max)
        return Response(200, [self.render_pull(repo, i, self.base_url) for i in chunk], headers)

    def _runs(self, repo: str, q: dict[str, str], path: str) -> Response:
        runs = list(self.repos[repo].runs)
        for key, attr in (("actor", "actor"), ("branch", "head_branch"), ("event", "event")):
            if q.get(key):
                runs = [r for r in runs if getattr(r, attr) == q[key]]
        if q.get("head_sha"):
            runs = [r for r in runs if r.head_sha == q["head_sha"]]
        if q.get("status"):
            s = q["status"]
            runs = [r for r in runs if (r.conclusion if s in CONCLUSIONS else r.status) == s]
        if _truthy(q.get("exclude_pull_requests")):
            runs = [r for r in runs if r.pr_number is None]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        chunk, headers = self._page(runs, q, path, 30, self.per_page_max)
        body = {
            "total_count": len(runs),
            "workflow_runs": [self.render_run(repo, r, self.base_url) for r in chunk],
        }
        return Response(200, body, headers)

    def _run(self, repo: str, run_id: str, path: str) -> Response:
        for run in self.repos[repo].runs:
            if str(run.id) == run_id:
                return Response(200, self.render_run(repo, run, self.base_url))
        return self._not_found(path)

    def _notifications(self, q: dict[str, str], login: str) -> Response:
        mine = [t for t in self.threads if t.login == login]
        newest = max((t.updated_at for t in mine), default=self.started_at)
        threads = mine if _truthy(q.get("all")) else [t for t in mine if t.unread]
        if _truthy(q.get("participating")):
            threads = [t for t in threads if t.reason in PARTICIPATING]
        try:
            if q.get("since"):
                since = parse_iso(q["since"])
                threads = [t for t in threads if t.updated_at >= since]
            if q.get("before"):
                before = parse_iso(q["before"])
                threads = [t for t in threads if t.updated_at < before]
        except ValueError:
            return Response(422, {"message": "Validation Failed", "documentation_url": DOCS})
        threads.sort(key=lambda t: (t.updated_at, t.id), reverse=True)
        chunk, headers = self._page(threads, q, "/notifications", 50, 50)
        headers["X-Poll-Interval"] = str(self.poll_interval)
        headers["Last-Modified"] = formatdate(newest, usegmt=True)
        return Response(200, [self.render_thread(t, self.base_url) for t in chunk], headers)

    def _rate_limit_json(self) -> dict[str, Any]:
        core = {
            "limit": self.rate.limit,
            "used": self.rate.used,
            "remaining": max(0, self.rate.limit - self.rate.used),
            "reset": self.rate.reset,
        }
        other = {"limit": 5000, "used": 0, "remaining": 5000, "reset": self.rate.reset}
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": self.now() + 60}
        resources = {"core": core, "graphql": other, "search": search}
        return {"resources": resources, "rate": core}

    # ---- helpers ------------------------------------------------------------------------------

    def _roll_window(self) -> None:
        if self.now() >= self.rate.reset:
            self.rate.used = 0
            self.rate.reset = self.now() + 3600

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate.limit),
            "x-ratelimit-remaining": str(max(0, self.rate.limit - self.rate.used)),
            "x-ratelimit-used": str(self.rate.used),
            "x-ratelimit-reset": str(self.rate.reset),
            "x-ratelimit-resource": "core",
        }

    def _take_fault(self, path: str, query: dict[str, str]) -> Fault | None:
        for fault in self._faults:
            if fault.page is not None and str(fault.page) != query.get("page", "1"):
                continue
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _faulted(self, fault: Fault, path: str) -> Response:
        if fault.kind == "secondary":
            msg = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again."
            )
            url = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
            resp = Response(fault.status, {"message": msg, "documentation_url": url})
            if fault.retry_after is not None:
                resp.headers["Retry-After"] = str(fault.retry_after)
            resp.headers.update(self._rate_headers())
            return resp
        msg = "Server Error" if fault.status >= 500 else "Fault"
        return Response(fault.status, {"message": msg})

    @staticmethod
    def _token_from(auth: str) -> str | None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        return None

    @staticmethod
    def _interesting(h: dict[str, str]) -> dict[str, str]:
        keep = ("if-none-match", "if-modified-since", "user-agent", "accept")
        out = {k: h[k] for k in keep if k in h}
        if "x-github-api-version" in h:
            out["x-github-api-version"] = h["x-github-api-version"]
        if "authorization" in h:  # record the scheme only: the token never lands in the log
            out["authorization"] = h["authorization"].split(" ")[0] + " ***"
        return out

    # ---- control plane for other processes ----------------------------------------------------

    def _control(self, method: str, path: str, token: str | None, body: bytes) -> Response:
        if token not in self.tokens:
            return Response(401, {"message": "Bad credentials"})
        name = path.removeprefix("/_fake/")
        if name == "requests" and method == "GET":
            return Response(200, [asdict(r) for r in self.requests])
        allowed = {*MUTATORS, "fail_next", "secondary_limit", "malformed_next", "slow_next"}
        allowed |= {"not_found_repo", "clear_faults", "set_rate_limit", "reset_log", "count"}
        if method != "POST" or name not in allowed:
            return Response(404, {"message": f"no control call {name!r}"})
        try:
            req = json.loads(body or b"{}")
            result = getattr(self, name)(*req.get("args", []), **req.get("kwargs", {}))
        except (KeyError, ValueError, TypeError) as exc:
            return Response(400, {"message": str(exc)})
        return Response(200, {"result": result if isinstance(result, int | str) else None})


def _locked(name: str) -> Callable[..., Any]:
    base = getattr(GitHubState, name)

    @functools.wraps(base)
    def wrapper(self: FakeGitHub, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return base(self, *args, **kwargs)

    return wrapper


for _name in MUTATORS:
    setattr(FakeGitHub, _name, _locked(_name))


class RemoteFakeGitHub:
    """Drive a fake running in another process: `RemoteFakeGitHub(url, token).open_issue(...)`."""

    def __init__(self, base_url: str, token: str = DEFAULT_TOKEN) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        data = json.dumps({"args": args, "kwargs": kwargs}).encode()
        req = urllib.request.Request(
            f"{self.base_url}/_fake/{name}",
            data=data,
            method="POST",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["result"]

    def requests(self) -> list[dict[str, Any]]:
        req = urllib.request.Request(
            f"{self.base_url}/_fake/requests", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            seen: list[dict[str, Any]] = json.loads(resp.read())
        return seen

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._call, name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m relayfleet.fakes.github",
        description="A fake GitHub REST API on 127.0.0.1, for trying a fleet without an account.",
        epilog="Point a fleet at it: FLEET_GITHUB_API_URL=<the URL> GH_TOKEN=<--token> gh fleet up."
        " Drive it from Python with relayfleet.fakes.github.RemoteFakeGitHub(url, token).",
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free)")
    p.add_argument(
        "--token", default=DEFAULT_TOKEN, help=f"the token it accepts (default {DEFAULT_TOKEN})"
    )
    p.add_argument("--login", default="octocat", help="the token's account, @me (default octocat)")
    p.add_argument(
        "--poll-interval", type=int, default=60, help="X-Poll-Interval on notifications (s)"
    )
    p.add_argument("--print-url", action="store_true", help="print the base URL on stdout")
    p.add_argument("--repo", action="append", default=[], help="create this repo (repeatable)")
    args = p.parse_args(argv)
    fake = FakeGitHub(args.token, args.login, poll_interval=args.poll_interval)
    for repo in args.repo:
        fake.add_repo(repo)
    url = fake.start(args.port)
    if args.print_url:
        print(url, flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
