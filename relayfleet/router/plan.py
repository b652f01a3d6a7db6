"""Group watches into streams: one request per (repo, endpoint) per cycle, not one per watch.

- `issues:{repo}`: `GET /repos/{o}/{r}/issues?state=all&sort=updated&direction=desc&since=W`
  serves every issues AND pulls watch on that repo (PRs carry a `pull_request` key).
- `runs:{repo}`: `GET /repos/{o}/{r}/actions/runs` (first page, newest first), plus each
  unfinished run that has left it, by id (`router/runs.py`).
- `notifications`: `GET /notifications?all=true&since=W`, one for the whole host.

Lists are read to their end (`router/paging.py`), within the rate-limit budget.
A stream polls at the fastest cadence among its watches (research A7), never faster than the
floor or than GitHub's `X-Poll-Interval`. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayfleet.fleet.model import Watch

ENDPOINT_OF_KIND = {"issues": "issues", "pulls": "issues", "runs": "runs"}
PER_PAGE = {"issues": 100, "runs": 30, "notifications": 50, "comments": 100}


@dataclass(frozen=True)
class Stream:
    key: str
    endpoint: str  # issues | runs | notifications | comments (`/fleet` commands)
    repo: str  # "" for notifications
    watches: tuple[Watch, ...]

    @property
    def period(self) -> int:
        return min(w.poll_sec for w in self.watches)

    @property
    def path(self) -> str:
        if self.endpoint == "notifications":
            return "/notifications"
        if self.endpoint == "runs":
            return f"/repos/{self.repo}/actions/runs"
        if self.endpoint == "comments":
            return f"/repos/{self.repo}/issues/comments"
        return f"/repos/{self.repo}/issues"

    def params(self, since: str | None) -> dict[str, str]:
        """Stable query parameters: `since` only moves when the poller decides (lazy)."""
        per_page = str(PER_PAGE[self.endpoint])
        if self.endpoint == "runs":
            return {"per_page": per_page}
        params = {"per_page": per_page}
        if self.endpoint == "issues":
            params.update(state="all", sort="updated", direction="desc")
        elif self.endpoint == "comments":
            params.update(sort="updated", direction="desc")
        else:
            params["all"] = "true"  # threads the user read in the web UI still count
        if since:
            params["since"] = since
        return params


def stream_key(watch: Watch) -> str:
    if watch.kind == "notifications":
        return "notifications"
    return f"{ENDPOINT_OF_KIND[watch.kind]}:{watch.repo.lower()}"


def plan(watches: tuple[Watch, ...] | list[Watch]) -> list[Stream]:
    """Streams in a stable order (by key), each with the watches it serves."""
    groups: dict[str, list[Watch]] = {}
    for w in watches:
        if w.kind not in ENDPOINT_OF_KIND and w.kind != "notifications":
            continue  # validation reports unknown kinds; the router skips them
        groups.setdefault(stream_key(w), []).append(w)
    out: list[Stream] = []
    for key in sorted(groups):
        ws = groups[key]
        endpoint = key.split(":", 1)[0]
        repo = "" if endpoint == "notifications" else ws[0].repo
        out.append(Stream(key=key, endpoint=endpoint, repo=repo, watches=tuple(ws)))
    return out


def comment_streams(repos: tuple[str, ...] | list[str], watches: tuple[Watch, ...]) -> list[Stream]:
    """One `comments:{repo}` stream per repo whose comments may carry `/fleet` commands, at the
    cadence of that repo's issue and PR watches."""
    out: list[Stream] = []
    for repo in sorted({r.lower(): r for r in repos}.values(), key=str.lower):
        ws = tuple(w for w in watches if w.kind in ("issues", "pulls")
                   and w.repo.lower() == repo.lower())  # fmt: skip
        if ws:
            out.append(Stream(key=f"comments:{repo.lower()}", endpoint="comments", repo=repo,
                              watches=ws))  # fmt: skip
    return out
