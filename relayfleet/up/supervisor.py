"""`gh fleet up`: the whole fleet in the foreground, kept in step with `.fleet/` and git HEAD."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from relayfleet.core.atomic import write_json_atomic
from relayfleet.core.errors import ConfigError, FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet
from relayfleet.up.procman import ProcessManager
from relayfleet.up.reconcile import fingerprint, plan

ROUTER = "router"
GATEWAY = "gateway"
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


def fleet_digest(paths: FleetPaths) -> str:
    """A digest of every config file under .fleet/ (not state/): what `up` has applied."""
    h = hashlib.sha256()
    for p in sorted(paths.fleet.rglob("*")):
        rel = p.relative_to(paths.fleet).as_posix()
        if rel.startswith("state/") or not p.is_file():
            continue
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def up_state_path(paths: FleetPaths) -> Path:
    return paths.state / "up.json"


@dataclass
class Options:
    pull_interval: float | None = None
    with_router: bool = True
    only: tuple[str, ...] = ()
    colour: bool = False
    grace: float = 5.0


@dataclass
class _Event:
    kind: str  # "change" | "exit" | "pull" | "stop"
    name: str = ""
    rc: int = 0


@dataclass
class FleetUp:
    paths: FleetPaths
    out: TextIO
    opts: Options = field(default_factory=Options)

    def __post_init__(self) -> None:
        self.events: queue.Queue[_Event] = queue.Queue()
        self.procs = ProcessManager(self.out, colour=self.opts.colour, on_exit=self._exited)
        self.running: dict[str, str] = {}  # agent -> fingerprint it was started with
        self.remote: dict[str, Agent] = {}  # docker/ssh agents started through their backend
        self.fleet: Fleet | None = None
        self.live_commit: str | None = None
        self.failures: dict[str, int] = {}
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> int:
        fleet = self._load_valid()
        if fleet is None:
            raise ConfigError("the fleet's config is invalid; fix it (gh fleet validate) first")
        self._install_signals()
        self._start_watcher()
        try:
            if self.opts.with_router:
                self._spawn_router()
            if fleet.gateway.enabled:
                self._spawn_gateway()
            self._apply(fleet)
            next_pull = self._next_pull()
            while not self._stopping.is_set():
                timeout = None if next_pull is None else max(0.0, next_pull - time.monotonic())
                try:
                    ev = self.events.get(timeout=timeout)
                except queue.Empty:
                    ev = _Event("pull")
                if ev.kind == "stop":
                    break
                if ev.kind == "pull":
                    self._pull()
                    next_pull = self._next_pull()
                    continue
                if ev.kind == "exit":
                    self._restart_crashed(ev.name, ev.rc)
                    continue
                self._drain_changes()
                new = self._load_valid()
                if new is not None:
                    self._apply(new)
        finally:
            self.procs.say("up", "stopping the fleet…")
            self._stopping.set()
            self.procs.stop_all(grace=self.opts.grace)
            for name, agent in list(self.remote.items()):
                self._stop_remote(name, agent)
            with contextlib.suppress(FileNotFoundError):
                up_state_path(self.paths).unlink()
        return 0

    def stop(self) -> None:
        self._stopping.set()
        self.events.put(_Event("stop"))

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop())

    # -- config -----------------------------------------------------------------------------
    def _load_valid(self) -> Fleet | None:
        from relayfleet.fleet.load import load_fleet
        from relayfleet.fleet.validate import validate

        try:
            problems = [p for p in validate(self.paths) if p.level == "error"]
            if problems:
                raise ConfigError(problems[0].message, file=problems[0].file, line=problems[0].line)
            return load_fleet(self.paths)
        except FleetError as exc:
            live = (self.live_commit or "the last good config")[:12]
            self.procs.say("up", f"refused the change: {exc}; still running {live}", "31")
            return None

    def _drain_changes(self) -> None:
        # A commit touches several files at once; settle before reading them.
        time.sleep(0.2)
        pending = []
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                break
            if ev.kind != "change":
                pending.append(ev)
        for ev in pending:
            self.events.put(ev)

    def _desired(self, fleet: Fleet) -> dict[str, Agent]:
        agents = dict(fleet.agents)
        if self.opts.only:
            agents = {n: a for n, a in agents.items() if n in self.opts.only}
        return agents

    def _apply(self, fleet: Fleet) -> None:
        agents = self._desired(fleet)
        desired = {n: fingerprint(a, _persona(self.paths, n)) for n, a in agents.items()}
        p = plan(desired, self.running)
        old = self.fleet
        self.fleet = fleet
        for name in p.stop:
            self._stop_agent(name, old.agents[name] if old and name in old.agents else None)
        for name in p.restart:
            self._stop_agent(name, old.agents.get(name) if old else None)
            self._start_agent(agents[name], desired[name])
        for name in p.start:
            self._start_agent(agents[name], desired[name])
        self.live_commit = _head(self.paths)
        if not p.empty:
            self.procs.say("up", "reconciled: " + " ".join(p.describe()))
        self._write_state()

    def _write_state(self) -> None:
        write_json_atomic(
            up_state_path(self.paths),
            {
                "pid": os.getpid(),
                "live_commit": self.live_commit,
                "fleet_digest": fleet_digest(self.paths),
                "agents": self.running,
                "updated_at": time.time(),
            },
        )

    # -- children ---------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FLEET_ROOT"] = str(self.paths.root)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn_router(self) -> None:
        argv = [sys.executable, "-m", "relayfleet.router", "run", "--root", str(self.paths.root)]
        self.procs.spawn(ROUTER, argv, self._env())

    def _spawn_gateway(self) -> None:
        argv = [sys.executable, "-m", "relayfleet.gateway", str(self.paths.root)]
        self.procs.spawn(GATEWAY, argv, self._env())

    def _start_agent(self, agent: Agent, fp: str) -> None:
        self.running[agent.name] = fp
        if agent.runtime.backend != "local":
            from relayfleet.backends.registry import backend_for

            assert self.fleet is not None
            try:
                st = backend_for(agent, self.fleet).start(self.paths, self.fleet, agent)
                self.remote[agent.name] = agent
                self.procs.say(agent.name, f"started {st.detail or agent.runtime.backend}")
            except FleetError as exc:
                self.procs.say(agent.name, f"could not start: {exc}", "31")
            return
        argv = [sys.executable, "-m", "relayfleet.runner", str(self.paths.root), agent.name]
        self.procs.spawn(agent.name, argv, self._env())

    def _stop_agent(self, name: str, agent: Agent | None) -> None:
        self.running.pop(name, None)
        if name in self.remote:
            self._stop_remote(name, self.remote[name])
            return
        self.procs.stop(name, grace=self.opts.grace)

    def _stop_remote(self, name: str, agent: Agent) -> None:
        from relayfleet.backends.registry import backend_for

        self.remote.pop(name, None)
        if self.fleet is None:
            return
        try:
            backend_for(agent, self.fleet).stop(self.paths, self.fleet, agent)
            self.procs.say(name, f"stopped [{agent.runtime.backend}]")
        except FleetError as exc:
            self.procs.say(name, f"could not stop: {exc}", "31")

    def _exited(self, name: str, rc: int) -> None:
        if not self._stopping.is_set():
            self.events.put(_Event("exit", name=name, rc=rc))

    def _restart_crashed(self, name: str, rc: int) -> None:
        if self._stopping.is_set() or self.procs.running(name):
            return
        n = self.failures.get(name, 0)
        self.failures[name] = n + 1
        delay = RESTART_BACKOFF[min(n, len(RESTART_BACKOFF) - 1)]
        self.procs.say(name, f"exited with {rc}; restarting in {delay:.0f}s", "31")
        if self._stopping.wait(delay):
            return
        self.procs.children.pop(name, None)
        if name == ROUTER:
            self._spawn_router()
        elif name == GATEWAY:
            self._spawn_gateway()
        elif self.fleet and name in self.running and name in self.fleet.agents:
            self._start_agent(self.fleet.agents[name], self.running[name])

    # -- watching and pulling ---------------------------------------------------------------
    def _start_watcher(self) -> None:
        threading.Thread(target=self._watch, daemon=True, name="fleet-watch").start()

    def _watch(self) -> None:
        import watchfiles

        state = str(self.paths.state)
        targets = [str(self.paths.fleet)]

        def interesting(_change: object, path: str) -> bool:
            return not path.startswith(state) and "/.tmp" not in path and not path.endswith(".lock")

        for _changes in watchfiles.watch(
            *targets,
            watch_filter=interesting,
            debounce=300,
            step=50,
            stop_event=self._stopping,
            raise_interrupt=False,
        ):
            self.events.put(_Event("change"))

    def _next_pull(self) -> float | None:
        if not self.opts.pull_interval:
            return None
        return time.monotonic() + self.opts.pull_interval

    def _pull(self) -> None:
        root = str(self.paths.root)
        for argv in (["git", "-C", root, "fetch", "--quiet"],
                     ["git", "-C", root, "merge", "--ff-only", "--quiet", "@{u}"]):
            r = subprocess.run(argv, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                msg = (r.stderr or r.stdout).strip().splitlines()
                self.procs.say("up", f"pull: {' '.join(argv[3:5])} failed: {msg[-1] if msg else r.returncode}", "31")
                return


def _persona(paths: FleetPaths, name: str) -> bytes:
    try:
        return paths.persona(name).read_bytes()
    except OSError:
        return b""


def _head(paths: FleetPaths) -> str | None:
    from relayfleet.fleet.gitops import head_commit

    try:
        return head_commit(paths.root)
    except FleetError:
        return None


def drift(paths: FleetPaths) -> dict[str, object]:
    """For `status`: is what `up` runs what HEAD (and the work tree) says?"""
    from relayfleet.core.atomic import read_json
    from relayfleet.core.procs import PidRecord

    st = read_json(up_state_path(paths))
    if not st:
        return {"up": False}
    alive = PidRecord(pid=int(st.get("pid", 0)), start=None, started_at=0).alive()
    head = _head(paths)
    digest = fleet_digest(paths)
    in_sync = head == st.get("live_commit") and digest == st.get("fleet_digest")
    return {
        "up": alive,
        "live_commit": st.get("live_commit"),
        "head_commit": head,
        "in_sync": in_sync,
    }
