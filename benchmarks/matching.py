"""Matching throughput (items x routes per second) and router RSS with 200 watches.

The RSS figures come from REAL router processes (`python -m relayfleet router run`) polling the
fake GitHub on loopback, read from /proc/<pid>/status after some cycles with changes flowing:
one with 200 watches over 10 repos (100 issues each, 40 routes, 10 agents) side by side with
one with a single watch, so the cost of the watches themselves is visible.

    python benchmarks/matching.py [--quick]
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.fleet.filters import parse_filter
from relayfleet.fleet.model import Route
from relayfleet.router.items import Item
from relayfleet.router.match import dedup_key, recipients
from tests.router.helpers import route, watch, write_fleet
from tests.waiting import wait_until

FIGURE = r"dedup_key: [\d,]+ items/s"  # the figure the test suite looks for

ROUTER_REPOS = [f"acme/repo{i}" for i in range(10)]
AGENTS = [f"a{i}" for i in range(10)]


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
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 items, 20 watches, 3 cycles")
    quick = ap.parse_args().quick
    rng = random.Random(1)
    n_items = 500 if quick else 5_000
    items = make_items(n_items, rng)
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

    # The benchmark process itself (parsed filters + routes + 5000 items in memory).
    watches = [watch(f"w{i}", "issues", f"acme/repo{i % 20}", "--label bug --state all")
               for i in range(200)]  # fmt: skip
    queries = {w.name: parse_filter(w.kind, w.filter) for w in watches}
    routes = make_routes(200, rng)
    kept = sum(1 for it in items for q in list(queries.values())[:10] if q.matches(it))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this benchmark process (200 parsed filters, 200 routes, {n_items} items): "
          f"max RSS {rss_mb:.1f} MiB ({kept} filter hits)\n")  # fmt: skip

    print(f"{'real router process':<34}{'cycles':>8}{'delivered':>11}{'RSS MiB':>9}"
          f"{'peak MiB':>10}")  # fmt: skip
    big = 20 if quick else 200
    for label, n in (("1 watch, 1 repo", 1), (f"{big} watches over 10 repos", big)):
        got = router_rss(n, cycles=3 if quick else 15, issues=10 if quick else 100)
        print(f"{label:<34}{got['cycles']:>8}{got['delivered']:>11}{got['rss']:>9.1f}"
              f"{got['peak']:>10.1f}")  # fmt: skip


def router_watches(n: int) -> list:
    """n watches spread over the repos: issues and pulls with various filters, runs, mentions."""
    filters = {
        "issues": ["--state all", "--label bug", "--author alice --state open",
                   "--assignee @me --state open", "--label p1,ui"],
        "pulls": ["--state open", "--label needs-human", "--draft"],
        "runs": ["--status failure"],
        "notifications": ["--reason mention,review_requested"],
    }  # fmt: skip
    kinds = ["issues", "issues", "pulls", "issues", "pulls", "runs", "issues", "notifications"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        repo = "" if kind == "notifications" else ROUTER_REPOS[i % len(ROUTER_REPOS)]
        flt = filters[kind][i % len(filters[kind])]
        out.append(watch(f"w{i}", kind, repo, flt, poll_sec=1))
    return out


def _proc_status(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def router_rss(n_watches: int, cycles: int = 15, issues: int = 100) -> dict[str, float]:
    """Run a real router against the fake GitHub until `cycles` cycles passed, with changes."""
    from relayfleet.core.atomic import read_json, read_jsonl
    from relayfleet.fakes.github import FakeGitHub

    rng = random.Random(2)
    with FakeGitHub() as fake, tempfile.TemporaryDirectory() as tmp:
        for r in ROUTER_REPOS:
            fake.add_repo(r)
            for i in range(issues):
                fake.open_issue(r, f"issue {i}", author=rng.choice(["alice", "bob"]))
            fake.add_run(r, "CI", status="completed", conclusion="success")
        ws = router_watches(n_watches)
        rs = [route(i + 1, AGENTS[i % len(AGENTS)], watch=f"w{i * 7 % n_watches}")
              for i in range(min(30, n_watches))]  # fmt: skip
        rs += [route(len(rs) + 1 + i, AGENTS[i], repo=r, label=["bug", "p1"])
               for i, r in enumerate(ROUTER_REPOS[: min(n_watches, 10)])]  # fmt: skip
        root = Path(tmp)
        paths = write_fleet(root, AGENTS, ws, rs)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "GH_"))}
        env.update(FLEET_ROOT=str(root), FLEET_GITHUB_API_URL=fake.base_url, GH_TOKEN=fake.token,
                   FLEET_ROUTER_MIN_PERIOD="0",
                   PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "relayfleet", "router", "run"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:

            def cycles_done() -> int:
                return int((read_json(paths.router_status, {}) or {}).get("cycles") or 0)

            wait_until(lambda: cycles_done() >= 1, timeout=60)
            while cycles_done() < cycles:
                r = rng.choice(ROUTER_REPOS)
                n = rng.randint(1, issues)
                fake.comment(r, n, "alice", "ping")
                if rng.random() < 0.3:
                    fake.label(r, n, rng.choice(["bug", "p1", "ui"]))
                time.sleep(0.05)
                if proc.poll() is not None:
                    why = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise SystemExit(f"the router exited with {proc.returncode}: {why[-2000:]}")
            mem = _proc_status(proc.pid)
            done = cycles_done()
            delivered = sum(len(read_jsonl(paths.inbox(a))) for a in AGENTS)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"cycles": done, "delivered": delivered, "rss": mem["VmRSS"], "peak": mem["VmHWM"]}


if __name__ == "__main__":
    main()
