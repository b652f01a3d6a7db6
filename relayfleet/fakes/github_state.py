"""The state model behind the fake GitHub: repos, issues/PRs, workflow runs, notifications.

Mutators read like a story (`open_issue`, `comment`, `label`, `push_commit`, …) and each one bumps
the item's `updated_at` from the server clock at one-second resolution, like GitHub, so two
changes within the same second share an `updated_at` (the case the router's fingerprint covers).

Rendering produces JSON shaped like the real REST API (compared with recorded responses in the
public octokit/fixtures repository: same keys, same nesting, `pull_request` on PR issues).
Thread safety is the caller's job (the server holds one lock around every call).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WEB = "https://github.com"


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


class ManualClock:
    """A clock tests move by hand: `clock.advance(1.5)`; call it to read the time."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Issue:
    number: int
    id: int
    title: str
    author: str
    association: str
    body: str
    created_at: int
    updated_at: int
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    state: str = "open"
    state_reason: str | None = None
    closed_at: int | None = None
    comments: int = 0
    # Pull-request part (is_pr False for plain issues).
    is_pr: bool = False
    pr_id: int = 0
    head_ref: str = ""
    base_ref: str = "main"
    head_sha: str = ""
    draft: bool = False
    merged_at: int | None = None
    requested_reviewers: list[str] = field(default_factory=list)
    comment_log: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    id: int
    name: str
    status: str
    conclusion: str | None
    head_sha: str
    head_branch: str
    event: str
    actor: str
    run_number: int
    created_at: int
    updated_at: int
    run_attempt: int = 1
    pr_number: int | None = None


@dataclass
class Thread:
    id: str
    repo: str
    number: int
    reason: str
    login: str
    updated_at: int
    unread: bool = True


@dataclass
class Repo:
    full_name: str
    id: int
    private: bool = False
    issues: dict[int, Issue] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    next_number: int = 1


def _user(login: str, base: str) -> dict[str, Any]:
    uid = int(hashlib.sha256(login.encode()).hexdigest()[:6], 16)
    api = f"{base}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{WEB}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


def _label(name: str, repo: str, base: str) -> dict[str, Any]:
    lid = int(hashlib.sha256(f"{repo}:{name}".encode()).hexdigest()[:8], 16)
    return {
        "id": lid,
        "node_id": f"LA_{lid}",
        "url": f"{base}/repos/{repo}/labels/{name}",
        "name": name,
        "color": hashlib.sha256(name.encode()).hexdigest()[:6],
        "default": name in ("bug", "enhancement", "documentation"),
        "description": None,
    }


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


class GitHubState:
    """Everything the fake serves. `clock` returns epoch seconds (injectable)."""

    def __init__(self, clock: Callable[[], float] = time.time, login: str = "octocat") -> None:
        self.clock = clock
        self.login = login
        self.repos: dict[str, Repo] = {}
        self.threads: list[Thread] = []
        self._ids = 1000
        self.started_at = self.now()

    def now(self) -> int:
        return int(self.clock())

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # ---- mutators (the story API) -------------------------------------------------------------

    def add_repo(self, full_name: str, *, private: bool = False) -> Repo:
        if full_name not in self.repos:
            self.repos[full_name] = Repo(full_name, self._next_id(), private)
        return self.repos[full_name]

    def repo(self, full_name: str) -> Repo:
        return self.repos.get(full_name) or self.add_repo(full_name)

    def issue(self, repo: str, number: int) -> Issue:
        try:
            return self.repos[repo].issues[number]
        except KeyError:
            raise KeyError(f"no item {repo}#{number} in the fake") from None

    def _touch(self, item: Issue) -> None:
        item.updated_at = self.now()

    def open_issue(
        self,
        repo: str,
        title: str,
        author: str = "octocat",
        association: str = "MEMBER",
        labels: list[str] | tuple[str, ...] = (),
        assignees: list[str] | tuple[str, ...] = (),
        body: str = "",
    ) -> int:
        r = self.repo(repo)
        now = self.now()
        number = r.next_number
        r.next_number += 1
        r.issues[number] = Issue(
            number=number,
            id=self._next_id(),
            title=title,
            author=author,
            association=association,
            body=body,
            created_at=now,
            updated_at=now,
            labels=list(labels),
            assignees=list(assignees),
        )
        return number

    def open_pr(
        self,
        repo: str,
        title: str,
        author: str = "octocat",
        association: str = "MEMBER",
        labels: list[str] | tuple[str, ...] = (),
        head: str | None = None,
        base: str = "main",
        draft: bool = False,
        body: str = "",
    ) -> int:
        number = self.open_issue(repo, title, author, association, labels, body=body)
        item = self.issue(repo, number)
        item.is_pr = True
        item.pr_id = 5_000_000 + item.id
        item.head_ref = head or f"{author}/change-{number}"
        item.base_ref = base
        item.head_sha = _sha(f"{repo}#{number}:0")
        item.draft = draft
        return number

    def comment(
        self, repo: str, number: int, author: str, association: str = "NONE", body: str = ""
    ) -> None:
        item = self.issue(repo, number)
        item.comments += 1
        item.comment_log.append({"author": author, "association": association, "body": body,
                                 "id": self._next_id(), "created_at": self.now()})  # fmt: skip
        self._touch(item)

    def label(self, repo: str, number: int, name: str) -> None:
        item = self.issue(repo, number)
        if name not in item.labels:
            item.labels.append(name)
        self._touch(item)

    def unlabel(self, repo: str, number: int, name: str) -> None:
        item = self.issue(repo, number)
        if name in item.labels:
            item.labels.remove(name)
        self._touch(item)

    def assign(self, repo: str, number: int, login: str) -> None:
        item = self.issue(repo, number)
        if login not in item.assignees:
            item.assignees.append(login)
        self._touch(item)

    def edit(
        self, repo: str, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        item = self.issue(repo, number)
        if title is not None:
            item.title = title
        if body is not None:
            item.body = body
        self._touch(item)

    def close(self, repo: str, number: int, *, merged: bool = False) -> None:
        item = self.issue(repo, number)
        item.state = "closed"
        item.closed_at = self.now()
        item.state_reason = None if item.is_pr else "completed"
        if merged and item.is_pr:
            item.merged_at = item.closed_at
        self._touch(item)

    def reopen(self, repo: str, number: int) -> None:
        item = self.issue(repo, number)
        item.state, item.closed_at, item.state_reason = "open", None, "reopened"
        self._touch(item)

    def push_commit(self, repo: str, pr_number: int) -> str:
        item = self.issue(repo, pr_number)
        if not item.is_pr:
            raise ValueError(f"{repo}#{pr_number} is not a pull request")
        item.head_sha = _sha(f"{item.head_sha}:{self._next_id()}")
        self._touch(item)
        return item.head_sha

    def request_review(self, repo: str, pr_number: int, login: str) -> None:
        item = self.issue(repo, pr_number)
        if login not in item.requested_reviewers:
            item.requested_reviewers.append(login)
        self._touch(item)
        self.notify(repo, pr_number, login, "review_requested")

    def add_run(
        self,
        repo: str,
        name: str = "CI",
        status: str = "queued",
        conclusion: str | None = None,
        *,
        head_sha: str | None = None,
        branch: str = "main",
        event: str = "push",
        actor: str = "octocat",
        pr_number: int | None = None,
    ) -> int:
        r = self.repo(repo)
        now = self.now()
        if pr_number is not None and head_sha is None:
            head_sha = self.issue(repo, pr_number).head_sha
            branch = self.issue(repo, pr_number).head_ref
            event = "pull_request"
        run = Run(
            id=30_000_000 + self._next_id(),
            name=name,
            status=status,
            conclusion=conclusion,
            head_sha=head_sha or _sha(f"{repo}:{branch}:{now}:{self._ids}"),
            head_branch=branch,
            event=event,
            actor=actor,
            run_number=len(r.runs) + 1,
            created_at=now,
            updated_at=now,
            pr_number=pr_number,
        )
        r.runs.append(run)
        return run.id

    def update_run(
        self, repo: str, run_id: int, status: str, conclusion: str | None = None
    ) -> None:
        for run in self.repo(repo).runs:
            if run.id == run_id:
                run.status, run.conclusion, run.updated_at = status, conclusion, self.now()
                return
        raise KeyError(f"no run {run_id} in {repo}")

    def rerun(self, repo: str, run_id: int) -> None:
        for run in self.repo(repo).runs:
            if run.id == run_id:
                run.run_attempt += 1
                run.status, run.conclusion, run.updated_at = "queued", None, self.now()
                return
        raise KeyError(f"no run {run_id} in {repo}")

    def seed_repo(
        self,
        repo: str,
        *,
        issues: int = 200,
        runs: int = 100,
        in_progress: int = 3,
        spread: int = 60,
    ) -> dict[str, list[int]]:
        """Give `repo` the history of a real, busy repository, spread over the past: `issues`
        issues and PRs (one in four a PR, a third closed, labels and authors varied) and `runs`
        workflow runs, most completed, `in_progress` of them still running although dozens of
        newer runs were created after them (a long CI job). One item or run per `spread` seconds.
        Returns the numbers and run ids: {"issues", "pulls", "runs", "in_progress"}."""
        r = self.repo(repo)
        now = self.now()
        people = ["alice", "bob", "carol", "dependabot[bot]", "mallory"]
        assoc = {"alice": "MEMBER", "bob": "COLLABORATOR", "carol": "OWNER", "mallory": "NONE"}
        labels = [[], ["bug"], ["enhancement"], ["bug", "p1"], ["docs"], ["needs-human"]]
        out: dict[str, list[int]] = {"issues": [], "pulls": [], "runs": [], "in_progress": []}
        for i in range(issues):
            ts = now - (issues - i) * spread
            who = people[i % len(people)]
            number = r.next_number
            r.next_number += 1
            item = Issue(number=number, id=self._next_id(), title=f"{repo} item {number}",
                         author=who, association=assoc.get(who, "NONE"), body=f"Body {number}",
                         created_at=ts, updated_at=ts, labels=list(labels[i % len(labels)]),
                         comments=i % 4)  # fmt: skip
            if i % 4 == 3:
                item.is_pr, item.pr_id = True, 5_000_000 + item.id
                item.head_ref, item.head_sha = f"{who}/change-{number}", _sha(f"{repo}#{number}")
                out["pulls"].append(number)
            else:
                out["issues"].append(number)
            if i % 3 == 0:
                item.state, item.closed_at = "closed", ts
                item.state_reason = None if item.is_pr else "completed"
            r.issues[number] = item
        running = {max(0, runs - 40 - 7 * k) for k in range(in_progress)} if runs else set()
        for i in range(runs):
            ts = now - (runs - i) * spread
            status = "completed"
            conclusion: str | None = "failure" if i % 5 == 0 else "success"
            if i in running:
                status, conclusion = "in_progress", None
            run = Run(id=30_000_000 + self._next_id(), name=("CI", "Lint", "Deploy")[i % 3],
                      status=status, conclusion=conclusion, head_sha=_sha(f"{repo}:run:{i}"),
                      head_branch="main" if i % 2 else f"feature-{i}", event="push",
                      actor=people[i % 3], run_number=len(r.runs) + 1, created_at=ts,
                      updated_at=ts)  # fmt: skip
            r.runs.append(run)
            out["runs"].append(run.id)
            if status != "completed":
                out["in_progress"].append(run.id)
        return out

    def bulk_label(
        self, repo: str, name: str, numbers: list[int] | None = None, limit: int | None = None
    ) -> int:
        """A bot relabels many items at once (all in the same second, like a script would):
        `numbers`, else every item of the repo (the first `limit` of them). Returns the count."""
        r = self.repo(repo)
        chosen = list(numbers) if numbers is not None else sorted(r.issues)
        if limit is not None:
            chosen = chosen[:limit]
        for n in chosen:
            self.label(repo, n, name)
        return len(chosen)

    def notify(self, repo: str, number: int, login: str, reason: str) -> str:
        """Add (or bump) the notification thread of `repo#number` for `login`."""
        self.issue(repo, number)  # must exist
        for t in self.threads:
            if (t.repo, t.number, t.login) == (repo, number, login):
                t.reason, t.updated_at, t.unread = reason, self.now(), True
                return t.id
        thread = Thread(str(self._next_id() * 7), repo, number, reason, login, self.now())
        self.threads.append(thread)
        return thread.id

    def mention(self, repo: str, number: int, login: str, by: str = "octocat") -> str:
        """`by` writes a comment mentioning @login: bumps the item and adds a notification."""
        self.comment(repo, number, by, "MEMBER", f"@{login} please take a look")
        return self.notify(repo, number, login, "mention")

    def mark_read(self, thread_id: str) -> None:
        for t in self.threads:
            if t.id == thread_id:
                t.unread = False

    # ---- rendering (REST JSON shapes) ---------------------------------------------------------

    def render_issue(self, repo: str, item: Issue, base: str) -> dict[str, Any]:
        api = f"{base}/repos/{repo}/issues/{item.number}"
        kind = "pull" if item.is_pr else "issues"
        out: dict[str, Any] = {
            "url": api,
            "repository_url": f"{base}/repos/{repo}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{WEB}/{repo}/{kind}/{item.number}",
            "id": item.id,
            "node_id": f"I_{item.id}",
            "number": item.number,
            "title": item.title,
            "user": _user(item.author, base),
            "labels": [_label(n, repo, base) for n in item.labels],
            "state": item.state,
            "locked": False,
            "assignee": _user(item.assignees[0], base) if item.assignees else None,
            "assignees": [_user(a, base) for a in item.assignees],
            "milestone": None,
            "comments": item.comments,
            "created_at": iso(item.created_at),
            "updated_at": iso(item.updated_at),
            "closed_at": iso(item.closed_at) if item.closed_at else None,
            "author_association": item.association,
            "active_lock_reason": None,
            "body": item.body or None,
            "reactions": {"url": f"{api}/reactions", "total_count": 0, "+1": 0, "-1": 0},
            "timeline_url": f"{api}/timeline",
            "performed_via_github_app": None,
            "state_reason": item.state_reason,
        }
        if item.is_pr:
            out["draft"] = item.draft
            out["pull_request"] = {
                "url": f"{base}/repos/{repo}/pulls/{item.number}",
                "html_url": f"{WEB}/{repo}/pull/{item.number}",
                "diff_url": f"{WEB}/{repo}/pull/{item.number}.diff",
                "patch_url": f"{WEB}/{repo}/pull/{item.number}.patch",
                "merged_at": iso(item.merged_at) if item.merged_at else None,
            }
        return out

    def _repo_json(self, repo: str, base: str) -> dict[str, Any]:
        r = self.repo(repo)
        owner = repo.split("/")[0]
        return {
            "id": r.id,
            "node_id": f"R_{r.id}",
            "name": repo.split("/")[1],
            "full_name": repo,
            "private": r.private,
            "owner": _user(owner, base),
            "html_url": f"{WEB}/{repo}",
            "description": None,
            "fork": False,
            "url": f"{base}/repos/{repo}",
        }

    def render_pull(self, repo: str, item: Issue, base: str) -> dict[str, Any]:
        api = f"{base}/repos/{repo}/pulls/{item.number}"
        repo_json = self._repo_json(repo, base)
        owner = repo.split("/")[0]
        return {
            "url": api,
            "id": item.pr_id,
            "node_id": f"PR_{item.pr_id}",
            "html_url": f"{WEB}/{repo}/pull/{item.number}",
            "diff_url": f"{WEB}/{repo}/pull/{item.number}.diff",
            "patch_url": f"{WEB}/{repo}/pull/{item.number}.patch",
            "issue_url": f"{base}/repos/{repo}/issues/{item.number}",
            "number": item.number,
            "state": item.state,
            "locked": False,
            "title": item.title,
            "user": _user(item.author, base),
            "body": item.body or None,
            "created_at": iso(item.created_at),
            "updated_at": iso(item.updated_at),
            "closed_at": iso(item.closed_at) if item.closed_at else None,
            "merged_at": iso(item.merged_at) if item.merged_at else None,
            "merge_commit_sha": _sha(f"merge:{item.head_sha}") if item.merged_at else None,
            "assignee": _user(item.assignees[0], base) if item.assignees else None,
            "assignees": [_user(a, base) for a in item.assignees],
            "requested_reviewers": [_user(a, base) for a in item.requested_reviewers],
            "requested_teams": [],
            "labels": [_label(n, repo, base) for n in item.labels],
            "milestone": None,
            "draft": item.draft,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "comments_url": f"{base}/repos/{repo}/issues/{item.number}/comments",
            "statuses_url": f"{base}/repos/{repo}/statuses/{item.head_sha}",
            "head": {
                "label": f"{owner}:{item.head_ref}",
                "ref": item.head_ref,
                "sha": item.head_sha,
                "user": _user(owner, base),
                "repo": repo_json,
            },
            "base": {
                "label": f"{owner}:{item.base_ref}",
                "ref": item.base_ref,
                "sha": _sha(f"{repo}:{item.base_ref}"),
                "user": _user(owner, base),
                "repo": repo_json,
            },
            "author_association": item.association,
            "auto_merge": None,
            "active_lock_reason": None,
        }

    def render_run(self, repo: str, run: Run, base: str) -> dict[str, Any]:
        api = f"{base}/repos/{repo}/actions/runs/{run.id}"
        prs = []
        if run.pr_number is not None:
            prs.append(
                {
                    "url": f"{base}/repos/{repo}/pulls/{run.pr_number}",
                    "id": self.issue(repo, run.pr_number).pr_id,
                    "number": run.pr_number,
                    "head": {"ref": run.head_branch, "sha": run.head_sha},
                    "base": {"ref": "main", "sha": _sha(f"{repo}:main")},
                }
            )
        wf_id = int(hashlib.sha256(f"{repo}:{run.name}".encode()).hexdigest()[:7], 16)
        return {
            "id": run.id,
            "name": run.name,
            "node_id": f"WFR_{run.id}",
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": f".github/workflows/{run.name.lower().replace(' ', '-')}.yml",
            "display_title": run.name,
            "run_number": run.run_number,
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": wf_id,
            "check_suite_id": run.id + 1,
            "url": api,
            "html_url": f"{WEB}/{repo}/actions/runs/{run.id}",
            "pull_requests": prs,
            "created_at": iso(run.created_at),
            "updated_at": iso(run.updated_at),
            "actor": _user(run.actor, base),
            "triggering_actor": _user(run.actor, base),
            "run_attempt": run.run_attempt,
            "run_started_at": iso(run.created_at),
            "jobs_url": f"{api}/jobs",
            "logs_url": f"{api}/logs",
            "workflow_url": f"{base}/repos/{repo}/actions/workflows/{wf_id}",
            "head_commit": {"id": run.head_sha, "message": f"{run.name} commit"},
            "repository": self._repo_json(repo, base),
        }

    def render_thread(self, t: Thread, base: str) -> dict[str, Any]:
        item = self.issue(t.repo, t.number)
        kind = "pulls" if item.is_pr else "issues"
        return {
            "id": t.id,
            "unread": t.unread,
            "reason": t.reason,
            "updated_at": iso(t.updated_at),
            "last_read_at": None,
            "subject": {
                "title": item.title,
                "url": f"{base}/repos/{t.repo}/{kind}/{t.number}",
                "latest_comment_url": f"{base}/repos/{t.repo}/issues/{t.number}",
                "type": "PullRequest" if item.is_pr else "Issue",
            },
            "repository": self._repo_json(t.repo, base),
            "url": f"{base}/notifications/threads/{t.id}",
            "subscription_url": f"{base}/notifications/threads/{t.id}/subscription",
        }

    def render_comments(self, repo: str, number: int, base: str) -> list[dict[str, Any]]:
        """`GET /repos/{o}/{r}/issues/{n}/comments`: oldest first, as GitHub lists them."""
        item = self.issue(repo, number)
        out = []
        for c in item.comment_log:
            cid = int(c.get("id") or 0)
            created = int(c.get("created_at") or item.updated_at)
            out.append({
                "id": cid,
                "node_id": f"IC_{cid}",
                "url": f"{base}/repos/{repo}/issues/comments/{cid}",
                "html_url": f"{WEB}/{repo}/issues/{number}#issuecomment-{cid}",
                "issue_url": f"{base}/repos/{repo}/issues/{number}",
                "user": _user(str(c["author"]), base),
                "created_at": iso(created),
                "updated_at": iso(created),
                "author_association": c.get("association") or "NONE",
                "body": c.get("body") or "",
            })  # fmt: skip
        return out

    def render_user(self, login: str, base: str) -> dict[str, Any]:
        out = _user(login, base)
        out.update({"name": login.title(), "company": None, "blog": "", "email": None})
        out.update({"public_repos": len(self.repos), "followers": 0, "following": 0})
        out.update({"created_at": iso(self.started_at), "updated_at": iso(self.started_at)})
        return out
