"""Matching throughput (items x routes per second) and router RSS with 200 watches.

python benchmarks/matching.py
"""

from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.fleet.filters import parse_filter
from relayfleet.fleet.model import Route
from relayfleet.router.items import Item
from relayfleet.router.match import dedup_key, recipients
from tests.router.helpers import watch


def make_items(n: int, rng: random.Random) -> list[Item]:
    labels = ["bug", "ui", "needs-human", "p1", "docs"]
    return [
        Item(
            kind=rng.choice(["issues", "pulls"]),
            repo=f"acme/repo{rng.randrange(20)}",
            number=i,
            title=rng.choice(["Fix scanner crash", "Docs typo", "Refactor"]),
            state=rng.choice(["open", "closed"]),
            labels=tuple(rng.sample(labels, rng.randrange(3))),
            author=rng.choice(["alice", "bob", "carol"]),
            association=rng.choice(["MEMBER", "NONE", "OWNER"]),
            updated_at="2026-01-01T00:00:00Z",
            watch=f"w{rng.randrange(200)}",
        )
        for i in range(n)
    ]


def make_routes(n: int, rng: random.Random) -> list[Route]:
    keys = {
        "watch": lambda: (f"w{rng.randrange(200)}",),
        "repo": lambda: (f"acme/repo{rng.randrange(20)}",),
        "kind": lambda: ("pulls",),
        "label": lambda: ("needs-human", "p1"),
        "association": lambda: ("OWNER", "MEMBER"),
        "title_contains": lambda: ("crash",),
    }
    out = []
    for i in range(n):
        chosen = rng.sample(sorted(keys), rng.randrange(1, 4))
        out.append(Route(index=i + 1, match={k: keys[k]() for k in chosen}, to=(f"a{i % 30}",)))
    return out


def main() -> None:
    rng = random.Random(1)
    items = make_items(5_000, rng)
    print(f"{'routes':>8}{'items':>8}{'pairs/s':>14}{'items/s':>12}")
    for n_routes in (10, 50, 200):
        routes = make_routes(n_routes, rng)
        t0 = time.perf_counter()
        for item in items:
            recipients(item, routes)
        dt = time.perf_counter() - t0
        pairs = len(items) * n_routes
        print(f"{n_routes:>8}{len(items):>8}{pairs / dt:>14,.0f}{len(items) / dt:>12,.0f}")
    t0 = time.perf_counter()
    for item in items:
        dedup_key(item)
    print(f"dedup_key: {len(items) / (time.perf_counter() - t0):,.0f} items/s")

    # What a router holding 200 watches (parsed filters) and their routes costs in memory.
    watches = [watch(f"w{i}", "issues", f"acme/repo{i % 20}", "--label bug --state all")
               for i in range(200)]  # fmt: skip
    queries = {w.name: parse_filter(w.kind, w.filter) for w in watches}
    routes = make_routes(200, rng)
    kept = sum(1 for it in items for q in list(queries.values())[:10] if q.matches(it))
    import relayfleet.router.poller  # noqa: F401  (the router's own imports count too)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"200 watches + {len(routes)} routes + 5000 items: max RSS {rss_mb:.1f} MiB "
          f"({kept} filter hits)")  # fmt: skip


if __name__ == "__main__":
    main()
