"""A runs stream: the newest page of workflow runs, plus every unfinished run followed by id.

`GET /repos/{o}/{r}/actions/runs` (newest first, 30 a page) is polled under its ETag like any
other stream: when nothing on it changed it is a free 304, even on a repo with thousands of runs.
But a long CI job that started before 30 newer runs were created has left that page by the time
it fails, and its completion would never be seen. So every run seen `queued`/`in_progress`/
`waiting` is remembered by id, and each one that is NOT on the newest page is asked for with a
conditional `GET /repos/{o}/{r}/actions/runs/{id}`:

- the first time, a 200 (one point: it brings the run's ETag);
- while it runs, that is a 304: free (GitHub does not charge a conditional request that answers
  304 against the primary rate limit);
- when it completes, one 200: one point, and the completion is delivered like any other item.

A tracked run that is still on the newest page needs no request of its own: a 304 on the page
means it did not change, a 200 carries its new state.

The stream's first poll also asks once for `?status=in_progress` and `?status=queued` (two
points, once), so jobs that were already running off the newest page when the watch was added
are followed too.

Why not `?status=in_progress` / `?created=…` list queries instead: the in-progress list changes
(a 200, one point) every time any run starts or ends, and the run that ended is then missing
from it, so its conclusion needs a GET by id anyway; two lists (queued, in_progress) would be
polled every cycle. Per-id conditional GETs cost 0 points per cycle while nothing ends, and
2 points per long job in all (its first GET, its completion), which no list query beats.
"""

from __future__ import annotations

import logging
from typing import Any

from relayfleet.core.errors import GitHubError

log = logging.getLogger("relayfleet.router")

DONE = "completed"
UNFINISHED = ("in_progress", "queued")  # asked for once, on a stream's first poll
MAX_TRACKED = 200  # per repo; the oldest unfinished runs are dropped first (ids grow with time)


def _rid(obj: dict[str, Any]) -> str:
    return str(obj.get("id") or "")


def track(active: dict[str, str], obj: dict[str, Any]) -> None:
    """Note a run's latest state: unfinished runs are tracked, finished ones forgotten."""
    rid = _rid(obj)
    if not rid:
        return
    if str(obj.get("status") or "") == DONE:
        active.pop(rid, None)
    else:
        active[rid] = str(obj.get("created_at") or "")


def poll_runs(client: Any, path: str, params: dict[str, str], state: dict[str, Any]) -> Any:
    """Poll the newest page and the tracked runs off it. Returns (first page, run objects that
    came back with a 200, requests made). `state` is the stream's cursor state (mutated)."""
    page = client.get(path, params, max_pages=1)
    objs: list[dict[str, Any]] = []
    active: dict[str, str] = state.setdefault("active", {})
    if page.status == 200:
        objs = list(page.items)
        state["page_ids"] = [_rid(o) for o in objs]
        for o in objs:
            track(active, o)
    requests = 1
    fresh: set[str] = set()  # states known from a list this cycle: no GET by id needed
    if not state.get("discovered"):
        for status in UNFINISHED:
            more = client.get(path, {**params, "status": status, "per_page": "100"},
                              max_pages=1, store=False)  # fmt: skip
            requests += 1
            for o in more.items:
                track(active, o)
                fresh.add(_rid(o))
        state["discovered"] = True
    on_page = set(state.get("page_ids") or []) | fresh
    for rid in sorted(active, key=lambda r: (len(r), r)):
        if rid in on_page:
            continue
        url_path = f"{path}/{rid}"
        try:
            one = client.get_object(url_path)
        except GitHubError as exc:
            if exc.status == 404:  # deleted (or its logs expired): nothing left to wait for
                active.pop(rid, None)
                client.cache.forget(client.url_for(url_path))
                continue
            raise
        requests += 1
        if one.status == 200 and one.items:
            objs.extend(one.items)
            track(active, one.items[0])
        if rid not in active:
            client.cache.forget(client.url_for(url_path))  # done with it: keep the cache small
    if len(active) > MAX_TRACKED:
        for rid in sorted(active, key=lambda r: (len(r), r))[: len(active) - MAX_TRACKED]:
            active.pop(rid, None)
            client.cache.forget(client.url_for(f"{path}/{rid}"))
    return page, objs, requests
