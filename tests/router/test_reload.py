"""routes.toml edited under a running `router run` (a real process, the fake GitHub on loopback)
while changes stream in: nothing lost or repeated, a new route takes effect from the next change
(no backlog), and a broken edit is logged while the last good config keeps delivering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from relayfleet.core.atomic import read_json, read_jsonl
from relayfleet.fakes.github import FakeGitHub
from relayfleet.router.items import item_from_rest
from relayfleet.router.match import dedup_key
from tests.router.crash_harness import _env
from tests.router.helpers import route, watch, write_fleet
from tests.waiting import wait_until

REPO = "acme/wms"
WATCHES = [watch("wms", "issues", REPO, "--state all", poll_sec=1)]


def final_key(fake: FakeGitHub, n: int) -> str:
    with fake.lock:
        obj = fake.render_issue(REPO, fake.issue(REPO, n), fake.base_url)
    return dedup_key(item_from_rest("issues", REPO, obj))


def keys(root: Path, agent: str) -> list[str]:
    inbox = root / f".fleet/state/agents/{agent}/inbox.jsonl"
    return [e["metadata"]["dedup_key"] for e in read_jsonl(inbox)]


class Stream(threading.Thread):
    """Comments and labels on `numbers`, every ~30 ms, until stopped."""

    def __init__(self, fake: FakeGitHub, numbers: list[int]) -> None:
        super().__init__(daemon=True)
        self.fake, self.numbers = fake, numbers
        self.halt = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.halt.wait(0.03):
            n = self.numbers[self.count % len(self.numbers)]
            if self.count % 3:
                self.fake.comment(REPO, n, "alice", f"note {self.count}")
            else:
                self.fake.label(REPO, n, f"l{self.count % 4}")
            self.count += 1


def log_since(log: Path, mark: int, text: str) -> bool:
    return text in log.read_text(errors="replace")[mark:]


@pytest.mark.slow
def test_routes_reload_under_a_running_router(tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        fake.add_repo(REPO)
        hot = [fake.open_issue(REPO, f"hot {i}") for i in range(3)]
        quiet = [fake.open_issue(REPO, f"quiet {i}") for i in range(3)]
        root = tmp_path / "fleet"
        paths = write_fleet(root, ["coder", "triage"], WATCHES, [route(1, "coder", watch="wms")])
        log = tmp_path / "router.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "relayfleet", "router", "run"],
                env=_env(root, fake), stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True,
            )  # fmt: skip
        stream = Stream(fake, hot + quiet)
        try:
            wait_until(lambda: (read_json(paths.router_status, {}) or {}).get("last_cycle"))
            stream.start()
            wait_until(lambda: len(keys(root, "coder")) >= 6)
            stream.numbers = hot  # from now on the quiet issues never change again
            wait_until(lambda: {final_key(fake, n) for n in quiet} <= set(keys(root, "coder")))

            # A new route, written the way an editor saves (temp file + rename), mid-stream.
            mark = len(log.read_text())
            routes = paths.routes_toml.read_text()
            new = routes + '\n[[route]]\nto = ["triage"]\n[route.match]\nwatch = "wms"\n'
            tmp = paths.routes_toml.with_suffix(".tmp")
            tmp.write_text(new)
            os.replace(tmp, paths.routes_toml)
            wait_until(lambda: log_since(log, mark, "config reloaded"))
            x = fake.open_issue(REPO, "after the reload")
            wait_until(lambda: final_key(fake, x) in keys(root, "triage"))

            # A broken edit: logged, and the last good config keeps delivering to both.
            mark = len(log.read_text())
            paths.routes_toml.write_text(new + "\n[[route]\nto = \n")
            wait_until(lambda: log_since(log, mark, "config not reloaded"))
            assert "still running the last good config" in log.read_text()[mark:]
            y = fake.open_issue(REPO, "after the broken edit")
            wait_until(lambda: {final_key(fake, y)} <= set(keys(root, "triage")) & set(
                keys(root, "coder")))  # fmt: skip
            assert proc.poll() is None

            stream.halt.set()
            stream.join(timeout=5)
            finals = {final_key(fake, n) for n in [*hot, *quiet, x, y]}
            wait_until(lambda: finals <= set(keys(root, "coder")))
            wait_until(lambda: {final_key(fake, n) for n in [*hot, x, y]} <= set(
                keys(root, "triage")))  # fmt: skip
        finally:
            stream.halt.set()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
    assert proc.returncode == 0  # SIGTERM: the cycle finishes, then a clean exit
    assert stream.count > 20
    for agent in ("coder", "triage"):
        events = read_jsonl(paths.inbox(agent))
        assert [i for i, c in Counter(e["id"] for e in events).items() if c > 1] == []
        assert [k for k, c in Counter(keys(root, agent)).items() if c > 1] == []
    # No backlog for the new route: the quiet issues, unchanged since before the edit, never
    # reached triage; only changes from the reload on did.
    triage_numbers = {e["metadata"]["number"] for e in read_jsonl(paths.inbox("triage"))}
    assert triage_numbers & set(quiet) == set()
    assert {x, y} <= triage_numbers
    coder_numbers = [e["metadata"]["number"] for e in read_jsonl(paths.inbox("coder"))]
    assert set(quiet) <= set(coder_numbers)
