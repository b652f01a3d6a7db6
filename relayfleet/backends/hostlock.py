"""A lock held on an ssh host around a multi-step remote operation (the runner install).

The lock is a directory (`mkdir` is atomic on every POSIX filesystem) holding `owner.json` (who
holds it, since when) and `beat`, touched while the holder works. A second operator process that
finds it waits for it to go, showing who holds it, and gives up with "in progress" after its
wait; a holder that died (no beat for `STALE_MIN` minutes) is taken over.

A long step runs as `sh -c 'echo $$ > <lock>/step.pid; exec …'`, so when its time runs out the
holder kills exactly that process on the host before letting go: no orphaned `pip install`
keeps writing into a venv the next attempt uses.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from relayfleet.core.errors import BackendError

if TYPE_CHECKING:
    from relayfleet.backends.sshpool import SshPool, SshTarget

STALE_MIN = 10  # minutes without a heartbeat before a holder counts as dead
POLL = 2.0  # seconds between looks at a lock someone else holds
BEAT_EVERY = 15.0  # seconds between progress lines (and heartbeats) during a long step

Say = Callable[[str], None]


def _q(s: str) -> str:
    from relayfleet.backends.sshpool import q

    return q(s)


class HostLock:
    def __init__(self, pool: SshPool, target: SshTarget, path: str, *, owner: str) -> None:
        self.pool = pool
        self.target = target
        self.path = path
        self.owner = owner
        self.held = False

    def try_acquire(self) -> dict[str, object] | None:
        """None when we now hold it; else what the holder wrote (`{}` when it is dead/unknown)."""
        p = _q(self.path)
        info = _q(json.dumps({"owner": self.owner, "since": time.time()}))
        parent = _q(self.path.rsplit("/", 1)[0])
        script = (
            f"mkdir -p {parent} && if mkdir {p} 2>/dev/null; then "
            f"printf '%s' {info} > {p}/owner.json && touch {p}/beat && echo @acquired; "
            f'elif [ -n "$(find {p}/beat -mmin +{STALE_MIN} 2>/dev/null)" ]; then '
            f"echo @stale; else echo @held; cat {p}/owner.json 2>/dev/null; fi"
        )
        out = self.pool.check(self.target, script, what="taking the install lock", timeout=60)
        first, _, rest = out.partition("\n")
        if first.strip() == "@acquired":
            self.held = True
            return None
        if first.strip() == "@stale":
            # Its holder stopped beating long ago: take it over (rename is atomic; one wins).
            self.pool.run(
                self.target,
                f"mv {p} {p}.stale.$$ 2>/dev/null && rm -rf {p}.stale.$$",
                step="clearing a stale install lock",
            )
            return {}
        try:
            held = json.loads(rest) if rest.strip() else {}
        except ValueError:
            held = {}
        return held if isinstance(held, dict) else {}

    def acquire(self, *, wait: float, say: Say, what: str) -> None:
        """Take the lock, waiting up to `wait` s for another holder; BackendError after that."""
        start = time.monotonic()
        last_said = -BEAT_EVERY
        while True:
            held = self.try_acquire()
            if held is None:
                return
            waited = time.monotonic() - start
            who = str(held.get("owner") or "another process")
            since = held.get("since")
            age = (
                f", started {time.time() - since:.0f} s ago"
                if isinstance(since, int | float)
                else ""
            )
            if waited >= wait:
                raise BackendError(
                    f"{what} on {self.target.name!r} is in progress by {who}{age}",
                    hints=["wait for it to finish, then run the same command again"],
                )
            if waited - last_said >= BEAT_EVERY:
                say(f"{what} on {self.target.name} is in progress by {who}{age}; waiting")
                last_said = waited
            time.sleep(POLL)

    def beat(self) -> None:
        with contextlib.suppress(BackendError):
            self.pool.run(self.target, f"touch {_q(self.path)}/beat", timeout=30)

    def step_command(self, command: str) -> str:
        """`command` run so its host pid is recorded (for `kill_step` when it overruns)."""
        pid_file = _q(self.path + "/step.pid")
        return f"sh -c {_q(f'echo $$ > {pid_file}; exec {command}')}"

    def kill_step(self) -> None:
        pid_file = _q(self.path + "/step.pid")
        with contextlib.suppress(BackendError):
            self.pool.run(
                self.target,
                f'pid=$(cat {pid_file} 2>/dev/null) && kill -TERM -- "$pid" 2>/dev/null; '
                f'sleep 1; [ -n "$pid" ] && kill -KILL -- "$pid" 2>/dev/null; true',
                timeout=30,
            )

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(BackendError):
            self.pool.run(self.target, f"rm -rf {_q(self.path)}", timeout=60)


class Progress:
    """`installing on <host>: step 2/4 (creating the venv), 45 s`, at each step's start and
    every BEAT_EVERY s while it runs (each line also beats the lock: the holder is alive)."""

    def __init__(self, say: Say, host: str, total: int, lock: HostLock | None = None) -> None:
        self.say = say
        self.host = host
        self.total = total
        self.lock = lock
        self.start = time.monotonic()

    def line(self, n: int, what: str) -> str:
        return (
            f"installing on {self.host}: step {n}/{self.total} ({what}), "
            f"{time.monotonic() - self.start:.0f} s"
        )

    @contextlib.contextmanager
    def step(self, n: int, what: str) -> Iterator[None]:
        self.say(self.line(n, what))
        done = threading.Event()

        def tick() -> None:
            while not done.wait(BEAT_EVERY):
                self.say(self.line(n, what))
                if self.lock is not None:
                    self.lock.beat()

        t = threading.Thread(target=tick, name="relayfleet-install-progress", daemon=True)
        t.start()
        try:
            yield
        finally:
            done.set()
            t.join(5)
