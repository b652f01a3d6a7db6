"""Reading a `since`-watermarked list to its end, across cycles when the budget says so.

An issues or notifications stream asks for everything updated since its watermark, newest first.
Usually that is one page (or a 304). After an outage, or when a bot relabels a thousand issues,
it is many pages; nothing may be lost, and the rate-limit budget must not be blown either:

- Read page after page until the list ends (the end of the list IS the watermark: the query
  only returns items updated since it), however many pages that takes, but stop before spending
  the last `FLOOR_SHARE` of the rate-limit window (other tools share the token).
- When stopped early, remember the page to resume from and the newest `updated_at` read (the
  head mark). The watermark does not move: the caller keeps it until the read is complete.
- Next cycle: page 1 conditionally (its validators were kept). A 304 means nothing changed, so
  the resume page still points at the unread part. A 200 means new changes sit at the top: read
  from page 1 until an item older than the head mark shows up, then jump to the resume page.

Why jumping is safe: the list is sorted by `updated_at`, newest first. An item we did not read
can only move towards the end (items updated later jump above it) or to the top (it was updated
itself, and then the head read gets it). So the resume page never skips an unread item; at
worst some items are read twice, and the dedup key makes the second sighting a no-op.

A failure on a later page ends the read like a budget stop: what was read is delivered, the read
resumes at the failed page next cycle. Pure logic around an injected client: no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from relayfleet.core.errors import GitHubError, RateLimited

FLOOR_SHARE = 0.2  # stop a long read when less than this share of the rate-limit window is left


class PageLike(Protocol):
    status: int
    items: list[dict[str, Any]]
    poll_interval: int | None
    etag: str | None
    last_modified: str | None
    url: str
    next_url: str | None
    last_page: int | None


class ListClient(Protocol):
    budget: Any

    def get(
        self, path: str, params: dict[str, str] | None = None, *, max_pages: int = 10,
        store: bool = True,
    ) -> Any: ...  # fmt: skip

    def fetch_page(self, url: str) -> Any: ...

    def url_for(self, path: str, params: dict[str, str] | None = None) -> str: ...


@dataclass
class Catchup:
    """Where an unfinished read stands (persisted in the cursor's stream state)."""

    resume_page: int
    head_mark: str  # the newest `updated_at` read so far (GitHub's clock)
    behind: int  # pages known to be left (from the Link header's rel="last")

    def to_json(self) -> dict[str, Any]:
        return {"resume_page": self.resume_page, "head_mark": self.head_mark,
                "behind": self.behind}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> Catchup | None:
        if not isinstance(data, dict):
            return None
        try:
            page = int(data["resume_page"])
        except (KeyError, TypeError, ValueError):
            return None
        behind = data.get("behind")
        return cls(max(1, page), str(data.get("head_mark") or ""),
                   int(behind) if isinstance(behind, int) else 0)  # fmt: skip


@dataclass
class Read:
    status: int  # the first page's: 200 or 304
    items: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True  # read to the end of the list: the watermark may move
    catchup: Catchup | None = None  # where to resume when not complete
    pages: int = 0  # requests made
    poll_interval: int | None = None
    url: str = ""  # the first page's URL (cache key) and its validators, for the caller
    etag: str | None = None
    last_modified: str | None = None
    stopped: str = ""  # why an incomplete read stopped: "budget" or the error


def budget_low(budget: Any, share: float = FLOOR_SHARE) -> bool:
    """True when what GitHub says is left of the window is at or below `share` of it."""
    remaining = getattr(budget, "remaining", None)
    limit = getattr(budget, "limit", None)
    if remaining is None or not limit:
        return False  # GHES without rate-limit headers: no budget to protect
    return bool(remaining <= share * limit)


def _oldest(items: list[dict[str, Any]]) -> str:
    return min((str(o.get("updated_at") or "") for o in items), default="")


def _newest(items: list[dict[str, Any]], mark: str = "") -> str:
    return max([mark, *(str(o.get("updated_at") or "") for o in items)])


def read_list(
    client: ListClient,
    path: str,
    params: dict[str, str],
    catchup: Catchup | None,
    *,
    floor_share: float = FLOOR_SHARE,
) -> Read:
    """Read the list at `path` up to its end or the budget floor (see the module docstring).
    Errors on the first page propagate (the stream failed); later ones end the read early."""
    first = client.get(path, params, max_pages=1, store=False)
    read = Read(status=first.status, pages=1, poll_interval=first.poll_interval, url=first.url,
                etag=first.etag, last_modified=first.last_modified)  # fmt: skip
    if first.status == 304 and catchup is None:
        return read
    read.items = list(first.items)
    page, next_url = 1, first.next_url if first.status == 200 else None
    last_page = first.last_page
    mark = catchup.head_mark if catchup is not None else ""
    # The head: what changed since the previous cycles read (all of it on a fresh read).
    head_done = catchup is None or first.status == 304 or next_url is None
    if not head_done and _oldest(first.items) < mark:
        head_done = True  # page 1 already reaches what the previous cycles read
    if catchup is not None and head_done and catchup.resume_page > page:
        page, next_url = catchup.resume_page - 1, _page_url(client, path, params, catchup)
    while next_url is not None:
        if budget_low(client.budget, floor_share):
            read.stopped = "budget"
            break
        try:
            more = client.fetch_page(next_url)
        except RateLimited as exc:
            read.stopped = str(exc)
            break
        except GitHubError as exc:
            if not exc.transient:
                raise
            read.stopped = str(exc)  # a 5xx mid-read: resume at this page next cycle
            break
        page += 1
        read.pages += 1
        read.items.extend(more.items)
        last_page = more.last_page or last_page
        next_url = more.next_url
        if not more.items:
            next_url = None
        if not head_done and _oldest(more.items) < mark:
            head_done = True
            if catchup is not None and catchup.resume_page > page + 1 and next_url is not None:
                page, next_url = catchup.resume_page - 1, _page_url(client, path, params, catchup)
    if next_url is None:
        return read  # complete: the caller may move the watermark
    read.complete = False
    # Unread head items (newer than the mark) make the next cycle start from page 1 again with
    # the same mark; otherwise the mark moves up to everything read.
    new_mark = _newest(read.items, mark) if head_done else mark
    # Resume right after the last page read, even when an earlier cycle got further: a stop
    # inside the head leaves unread news between here and there (pages only shift down), and
    # the first page's ETag is kept, so a 304 next cycle must not skip over them.
    resume = page + 1
    behind = max(0, (last_page or resume) - resume + 1)
    read.catchup = Catchup(resume_page=resume, head_mark=new_mark, behind=behind)
    return read


def _page_url(client: ListClient, path: str, params: dict[str, str], c: Catchup) -> str:
    return client.url_for(path, {**params, "page": str(c.resume_page)})
