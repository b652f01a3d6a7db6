"""paging.read_list against an in-memory list that changes between (and during) cycles: whatever
the budget stops and however items move, the newest version of every item is read, and a read
only reports itself complete when nothing since the watermark is left unread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from relayfleet.router.paging import Catchup, read_list

PER_PAGE = 3


@dataclass
class Budget:
    limit: int = 100
    remaining: int = 100


@dataclass
class ListServer:
    """Items sorted by `updated_at` desc (ties by number), paged like GitHub, with ETags."""

    items: dict[int, int] = field(default_factory=dict)  # number -> updated_at (int seconds)
    budget: Budget = field(default_factory=Budget)
    pages_allowed: int = 10**6  # how many pages after the first may be read this cycle
    etag_seen: str | None = None
    requests: int = 0

    def _sorted(self) -> list[tuple[int, int]]:
        return sorted(((ts, n) for n, ts in self.items.items()), reverse=True)

    def _page(self, page: int) -> dict[str, Any]:
        rows = self._sorted()
        last = max(1, -(-len(rows) // PER_PAGE))
        chunk = rows[(page - 1) * PER_PAGE : page * PER_PAGE]
        items = [{"number": n, "updated_at": f"2026-01-01T00:{ts // 60:02d}:{ts % 60:02d}Z"}
                 for ts, n in chunk]  # fmt: skip
        nxt = self.url_for("/l", {"page": str(page + 1)}) if page < last else None
        return {"items": items, "next": nxt, "last": last}

    # -- the client protocol ------------------------------------------------------------
    def url_for(self, path: str, params: dict[str, str] | None = None) -> str:
        return f"http://x{path}?{urlencode(sorted((params or {}).items()))}"

    def get(self, path: str, params: dict[str, str] | None = None, *, max_pages: int = 10,
            store: bool = True) -> Any:  # fmt: skip
        self.requests += 1
        got = self._page(1)
        etag = str(hash(tuple(self._sorted())))
        if etag == self.etag_seen:
            return _Page(304, [], etag, self.url_for(path, params), None, None)
        self.budget.remaining -= 1
        return _Page(200, got["items"], etag, self.url_for(path, params), got["next"],
                     got["last"])  # fmt: skip

    def fetch_page(self, url: str) -> Any:
        if self.pages_allowed <= 0:
            self.budget.remaining = 0  # out of budget for the rest of this cycle
        self.pages_allowed -= 1
        self.requests += 1
        self.budget.remaining -= 1
        page = int(dict(parse_qsl(urlsplit(url).query)).get("page", "1"))
        got = self._page(page)
        return _Page(200, got["items"], None, url, got["next"], got["last"])


@dataclass
class _Page:
    status: int
    items: list[dict[str, Any]]
    etag: str | None
    url: str
    next_url: str | None
    last_page: int | None
    poll_interval: int | None = None
    last_modified: str | None = None


cycles = st.lists(
    st.tuples(
        st.lists(st.integers(0, 29), max_size=12),  # items updated before this cycle
        st.integers(0, 4),  # pages after the first the budget allows this cycle
        st.booleans(),  # the updates land in the same second (a bot's bulk edit)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), cycles)
def test_every_items_newest_version_is_read_and_complete_means_complete(
    start: int, plan: list[tuple[list[int], int, bool]]
) -> None:
    server = ListServer(items={n: n for n in range(start)})
    clock = 100
    catchup: Catchup | None = None
    seen: dict[int, str] = {}  # number -> the newest updated_at read
    for updates, allowed, bulk in [*plan, ([], 10**6, False)]:  # the last: budget to spare
        clock += 1
        for n in updates:
            clock += 0 if bulk else 1
            server.items[n] = clock
        server.budget = Budget()
        server.pages_allowed = allowed
        read = read_list(server, "/l", {}, catchup)
        for o in read.items:
            seen[o["number"]] = max(seen.get(o["number"], ""), o["updated_at"])
        server.etag_seen = read.etag
        catchup = None if read.complete else read.catchup
        if read.complete:
            # Complete: every item's current version has been read by now.
            for n, ts in server.items.items():
                want = f"2026-01-01T00:{ts // 60:02d}:{ts % 60:02d}Z"
                assert seen.get(n, "") >= want, (n, ts, seen.get(n))
    assert catchup is None
