"""Kill a real router process with SIGKILL at random instants while GitHub keeps changing, then
check every inbox: each item's final version reached each of its agents exactly once, and no
event or dedup key appears twice. Used by `test_crash.py` and `benchmarks/crash_fuzz.py`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_jsonl
from relayfleet.fakes.github import FakeGitHub
from relayfleet.fleet.filters import parse_filter
from relayfleet.router.items import item_from_rest
from relayfleet.router.match import dedup_key, recipients
from tests.router.helpers import route, watch, write_fleet

REPOS = ("acme/a", "acme/b")
AGENTS = ("coder", "triage", "watcher")
WATCHES = [
    watch("a-all", "issues", "acme/a", "--state all", poll_sec=1),
    watch("a-bugs", "issues", "acme/a", "--state all --label bug", poll_sec=1),
    watch("b-all", "issues", "acme/b", "--state all", poll_sec=1),
]
ROUTES = [
    route(1, "coder", watch="a-all"),
    route(2, ["triage", "coder"], watch="a-bugs"),
    route(3, "watcher", watch="b-all"),
]


@dataclass
class CrashResult:
    kills: int = 0
    mutations: int = 0
    expected: int = 0  # (agent, final version) pairs that must be in the inboxes
    delivered: int = 0  # events in the inboxes
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)  # an older version after a newer one
    seconds: float = 0.0


def _env(root: Path, fake: FakeGitHub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "GH_", "GITHUB_"))}
    env.update(
        FLEET_ROOT=str(root),
        FLEET_GITHUB_API_URL=fake.base_url,
        GH_TOKEN=fake.token,
        FLEET_ROUTER_MIN_PERIOD="0",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


def _router(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relayfleet", "router", "run", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class _Mutator(threading.Thread):
    """Keeps changing GitHub: labels, comments, closes; sometimes two changes in one second."""

    def __init__(self, fake: FakeGitHub, rng: random.Random, numbers: dict[str, list[int]]):
        super().__init__(daemon=True)
        self.fake, self.rng, self.numbers = fake, rng, numbers
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.02, 0.12)):
            repo = self.rng.choice(REPOS)
            n = self.rng.choice(self.numbers[repo])
            action = self.rng.random()
            with self.fake.lock:
                if action < 0.35:
                    self.fake.comment(repo, n, "alice", f"note {self.count}")
                elif action < 0.55:
                    self.fake.label(repo, n, self.rng.choice(["bug", "ui", "p1"]))
                elif action < 0.7:
                    issue = self.fake.issue(repo, n)
                    if issue.labels:
                        self.fake.unlabel(repo, n, self.rng.choice(issue.labels))
                elif action < 0.8:
                    self.numbers[repo].append(self.fake.open_issue(repo, f"new {self.count}"))
                elif action < 0.9:
                    self.fake.close(repo, n)
                else:
                    self.fake.reopen(repo, n)
            self.count += 1


def expected_finals(fake: FakeGitHub) -> dict[str, set[str]]:
    """agent -> dedup keys of the final versions that it must have received."""
    queries = {w.name: parse_filter(w.kind, w.filter) for w in WATCHES}
    out: dict[str, set[str]] = {a: set() for a in AGENTS}
    with fake.lock:
        for w in WATCHES:
            for issue in fake.repos[w.repo].issues.values():
                obj = fake.render_issue(w.repo, issue, fake.base_url)
                item = item_from_rest("issues", w.repo, obj)
                if not queries[w.name].matches(item):
                    continue
                from dataclasses import replace

                for agent in recipients(replace(item, watch=w.name), ROUTES):
                    out[agent].add(dedup_key(item))
    return out


def run_crash_fuzz(tmp: Path, *, kills: int = 25, seed: int = 7) -> CrashResult:
    rng = random.Random(seed)
    result = CrashResult()
    started = time.monotonic()
    with FakeGitHub() as fake:
        numbers: dict[str, list[int]] = {}
        for repo in REPOS:
            fake.add_repo(repo)
            numbers[repo] = [fake.open_issue(repo, f"seed {i}") for i in range(5)]
        root = tmp / "fleet"
        paths = write_fleet(root, list(AGENTS), WATCHES, ROUTES)
        env = _env(root, fake)
        # The snapshot (first poll) happens before the stream of changes starts.
        subprocess.run(
            [sys.executable, "-m", "relayfleet", "router", "run", "--once"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        # Versions the snapshot saw are not news: an item never touched afterwards (likely in a
        # short run) is owed to nobody.
        snapshot = expected_finals(fake)
        mutator = _Mutator(fake, rng, numbers)
        mutator.start()
        try:
            for _ in range(kills):
                proc = _router(env)
                time.sleep(rng.uniform(0.25, 0.9))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                result.kills += 1
        finally:
            mutator.stop.set()
            mutator.join(timeout=5)
        result.mutations = mutator.count
        # Quiet GitHub, then let one clean cycle catch up with the final state.
        time.sleep(1.1)  # the fake's timestamps have one-second resolution
        for _ in range(2):
            subprocess.run(
                [sys.executable, "-m", "relayfleet", "router", "run", "--once"],
                env=env, check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        want = {a: keys - snapshot[a] for a, keys in expected_finals(fake).items()}
    for agent in AGENTS:
        events = read_jsonl(paths.inbox(agent))
        result.delivered += len(events)
        ids = Counter(e["id"] for e in events)
        keys = Counter(e["metadata"]["dedup_key"] for e in events)
        result.duplicates += [f"{agent}: id {i} x{c}" for i, c in ids.items() if c > 1]
        result.duplicates += [f"{agent}: key {k} x{c}" for k, c in keys.items() if c > 1]
        got = set(keys)
        result.expected += len(want[agent])
        result.lost += [f"{agent}: {k}" for k in sorted(want[agent] - got)]
        last: dict[str, str] = {}
        for e in events:
            ident = e["metadata"]["dedup_key"].split("@", 1)[0]
            at = e["metadata"]["updated_at"]
            if at < last.get(ident, ""):
                result.regressions.append(f"{agent}: {ident} went back to {at}")
            last[ident] = at
    result.seconds = time.monotonic() - started
    return result


def summary(r: CrashResult) -> dict[str, Any]:
    return {
        "kills": r.kills,
        "mutations": r.mutations,
        "final_versions_expected": r.expected,
        "events_delivered": r.delivered,
        "lost": len(r.lost),
        "duplicated": len(r.duplicates),
        "regressions": len(r.regressions),
        "seconds": round(r.seconds, 1),
    }
