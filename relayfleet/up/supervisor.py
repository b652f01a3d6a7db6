"""`gh fleet up`: the whole fleet in the foreground, kept in step with `.fleet/` and git HEAD.

One loop owns every decision; other threads only post events (a file changed, a child exited)
or set the stop flag (a signal handler may do no more than that). What runs is written to
`state/up.json`, so `gh fleet status` can tell whether it is what HEAD says (`drift`).

Routes and watches are never applied here: the router reloads them itself between two cycles,
with its cursor intact, so a route change neither restarts it nor loses or repeats a delivery.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.errors import BackendError, ConfigError, FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import live_pid, process_start_time
from relayfleet.fleet.model import Agent, Fleet
from relayfleet.up.drift import _head, _short, describe_drift, drift, fleet_digest, up_state_path
from relayfleet.up.procman import ProcessManager
from relayfleet.up.pull import Puller, upstream_of
from relayfleet.up.reconcile import fingerprint, plan

ROUTER = "router"
GATEWAY = "gateway"
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
HEALTHY_AFTER = 30.0  # a child that ran this long starts its backoff afresh
TICK = 0.25
HEAD_EVERY = 1.0
SETTLE_QUIET = 0.3  # a commit or a merge writes several files: wait for a quiet spell
SETTLE_MAX = 5.0
RED = "31"


@dataclass
class Options:
    pull_interval: float | None = None
    with_router: bool = True
    only: tuple[str, ...] = ()
    colour: bool = False
    grace: float = 5.0
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every child


@dataclass
class _Event:
    kind: str  # "change" | "exit" | "stop"
    name: str = ""
    rc: int = 0


class FleetUp:
    """`FleetUp(paths, out, Options()).run()` blocks until `stop()`, SIGINT or SIGTERM."""

    def __init__(self, paths: FleetPaths, out: TextIO, opts: Options | None = None) -> None:
        self.paths = paths
        self.out = out
        self.opts = opts or Options()
        self.events: queue.Queue[_Event] = queue.Queue()
        self.procs = ProcessManager(
            out, colour=self.opts.colour, on_exit=self._exited, on_output_lost=self._output_lost
        )
        self._tty_fd = _tty_fd(out)  # checked every tick: a hung-up terminal stops the fleet
        self.running: dict[str, str] = {}  # agent -> fingerprint it was started with
        self.remote: dict[str, Agent] = {}  # docker/ssh agents started through their backend
        self.fleet: Fleet | None = None
        self.live_commit: str | None = None
        self.applied_digest = ""
        self.refused: dict[str, Any] | None = None
        self.failures: dict[str, int] = {}
        self.restart_at: dict[str, float] = {}
        self.started_at = time.time()
        self._stop_requested = False  # the only thing a signal handler touches
        self.exit_code = 0  # 130 after SIGINT, 143 after SIGTERM (as Procfile runners do)
        self._stopping = threading.Event()
        self._seen_head: str | None = None
        self._git_dir: Path | None = None
        self._lock_fd: int | None = None
        self._output_gone = False
        # Agents held stopped by `gh fleet stop` (up/control.py) until `gh fleet start`.
        self.held: set[str] = set()
        self._hold_seen: tuple[int, int] | None = None
        self._pid_start = process_start_time(os.getpid())
        self._puller: Puller | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> int:
        if self.opts.pull_interval:
            # No upstream is a mistake to say now, not a line in the log every interval.
            self._puller = Puller(self.paths.root, upstream_of(self.paths.root))
        self._acquire()
        try:
            fleet = self._load_valid(initial=True)
            assert fleet is not None
            self._install_signals()
            self._git_dir = _git_dir(self.paths.root)
            self._seen_head = _head(self.paths)
            self._start_watcher()
            try:
                self._take_over(fleet)
                self.fleet = fleet
                if self.opts.with_router:
                    self._spawn_router()
                if fleet.gateway.enabled:
                    self._spawn_gateway()
                self._apply(fleet, announce=False)
                self.procs.say("up", self._summary(fleet))
                self._loop()
            finally:
                self._shutdown()
        finally:
            self._release()
        return self.exit_code

    def stop(self) -> None:
        """Ask the loop to stop everything (any thread)."""
        self._stop_requested = True
        self.events.put(_Event("stop"))

    def _loop(self) -> None:
        next_head = time.monotonic() + HEAD_EVERY
        next_pull = self._next_pull()
        while not self._stop_requested:
            try:
                ev: _Event | None = self.events.get(timeout=TICK)
            except queue.Empty:
                ev = None
            if self._tty_fd is not None and not os.isatty(self._tty_fd):
                self._output_lost()
            if self._stop_requested or (ev and ev.kind == "stop"):
                break
            self._check_holds()
            now = time.monotonic()
            if ev and ev.kind == "exit":
                self._schedule_restart(ev.name, ev.rc)
            changed = bool(ev and ev.kind == "change")
            if now >= next_head:
                next_head = now + HEAD_EVERY
                head = _head(self.paths)
                if head != self._seen_head:
                    self._seen_head = head
                    changed = True
            if changed:
                self._settle()
                self._reconcile()
            self._restart_due()
            if next_pull is not None and time.monotonic() >= next_pull:
                self._pull()
                next_pull = self._next_pull()

    def _shutdown(self) -> None:
        self._stopping.set()
        self.procs.say("up", "stopping the fleet…")
        self.procs.stop_all(grace=self.opts.grace)
        for name, agent in list(self.remote.items()):
            self._stop_remote(name, agent)
        with contextlib.suppress(FileNotFoundError):
            up_state_path(self.paths).unlink()
        self.procs.say("up", "stopped; nothing left running")

    def _output_lost(self) -> None:
        """The terminal went away (hung up, EIO): stop the fleet cleanly, as on SIGHUP.

        Whatever still writes to that terminal (this process's stdout and stderr) goes to
        /dev/null from now on, so the shutdown and the exit never fail on a write."""
        if self._output_gone:
            return
        self._output_gone = True
        self.procs.output_lost = True
        for fd in {self._tty_fd, 1, 2} - {None}:
            assert fd is not None
            with contextlib.suppress(OSError):
                if not os.isatty(fd) and _was_tty(fd):
                    null = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(null, fd)
                    os.close(null)
        if not self._stop_requested:
            self.exit_code = 128 + signal.SIGHUP
        self.stop()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded (the demo): the owner calls stop()

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                self.opts.grace = 0.5  # a second Ctrl-C: do not wait for slow children
            else:
                self.exit_code = 128 + signum
            self._stop_requested = True  # no locks here: the loop polls this flag

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, handler)

    def _acquire(self) -> None:
        """One `up` per fleet: a second one would start every agent twice."""
        path = self.paths.state / "up.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            st = read_json(up_state_path(self.paths), {}) or {}
            raise BackendError(
                f"`gh fleet up` is already running for this fleet (pid {st.get('pid', '?')})",
                hints=["stop it with Ctrl-C in its terminal (or kill -TERM <pid>)"],
            ) from None
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _take_over(self, fleet: Fleet) -> None:
        """Detached runners and a detached router of this fleet would double every delivery."""
        from relayfleet.backends.local import LocalBackend, reap_leftovers

        if self.opts.with_router:
            from relayfleet.router import daemon

            rec = live_pid(self.paths.router_pid)
            if rec is not None:
                self.procs.say("up", f"stopping the detached router (pid {rec.pid}); up runs it")
                daemon.stop(self.paths)
        for name, agent in sorted(self._desired(fleet).items()):
            if _backend_name(agent, fleet) != "local":
                continue
            rec = live_pid(self.paths.runner_pid(name))
            if rec is not None:
                self.procs.say("up", f"stopping the detached runner of {name} (pid {rec.pid})")
                LocalBackend(grace=self.opts.grace).stop(self.paths, fleet, agent)
            elif killed := reap_leftovers(self.paths, name):
                self.procs.say("up", f"killed {killed} process(es) left by {name}'s last session")

    # -- config ---------------------------------------------------------------------------
    def _load_valid(self, *, initial: bool = False) -> Fleet | None:
        from relayfleet.fleet.load import load_fleet
        from relayfleet.fleet.validate import validate

        try:
            errors = [p for p in validate(self.paths) if p.level == "error"]
            if errors:
                raise ConfigError(
                    str(errors[0]) + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")
                )
            return load_fleet(self.paths)
        except FleetError as exc:
            if initial:
                raise ConfigError(
                    f"the fleet's config is invalid, nothing was started: {exc}",
                    hints=["`gh fleet validate` lists every problem"],
                ) from exc
            digest = fleet_digest(self.paths)
            if not self.refused or self.refused.get("digest") != digest:
                live = _short(self.live_commit) or "the last good config"
                self.procs.say("up", f"refused the change: {exc}", RED)
                self.procs.say(
                    "up", f"still running {live}; fix it (gh fleet validate) and commit", RED
                )
                self.refused = {
                    "message": str(exc),
                    "digest": digest,
                    "head": _head(self.paths),
                    "at": time.time(),
                }
                self._write_state()
            return None

    def _settle(self) -> None:
        """Wait until the tree is quiet (no change event for a moment, no git operation)."""
        held: list[_Event] = []  # exits and stops, handled by the loop after the reconcile
        deadline = time.monotonic() + SETTLE_MAX
        try:
            while time.monotonic() < deadline and not self._stop_requested:
                try:
                    ev = self.events.get(timeout=SETTLE_QUIET)
                except queue.Empty:
                    if not self._git_busy():
                        return
                    continue
                if ev.kind != "change":
                    held.append(ev)
                    if ev.kind == "stop":
                        return
        finally:
            for ev in held:
                self.events.put(ev)

    def _git_busy(self) -> bool:
        return bool(self._git_dir and (self._git_dir / "index.lock").exists())

    def _reconcile(self) -> None:
        fleet = self._load_valid()
        if fleet is None:
            return
        if self.refused:
            self.procs.say("up", "the config is valid again")
            self.refused = None
        self._apply(fleet)
        self._hold_seen = None  # look again: a hold on an agent removed since is dropped

    def _desired(self, fleet: Fleet) -> dict[str, Agent]:
        agents = {n: a for n, a in fleet.agents.items() if n not in self.held}
        if self.opts.only:
            agents = {n: a for n, a in agents.items() if n in self.opts.only}
        return agents

    def _check_holds(self) -> None:
        """`gh fleet stop|start` asked to hold an agent stopped, or to run it again."""
        from relayfleet.up.control import hold_path, read_holds, update_holds

        try:
            st = os.stat(hold_path(self.paths))
            seen: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen == self._hold_seen or self.fleet is None:
            return
        self._hold_seen = seen
        fleet = self.fleet
        wanted = read_holds(self.paths, os.getpid(), self._pid_start)
        known = set(fleet.agents) & (set(self.opts.only) or set(fleet.agents))
        if wanted - known:  # removed from the fleet since: nothing to hold any more
            wanted = update_holds(self.paths, os.getpid(), self._pid_start, keep_only=known)
        if wanted == self.held:
            return
        for name in sorted(wanted - self.held):
            self.procs.say(
                name, f"held stopped by `gh fleet stop`; `gh fleet start {name}` runs it"
            )
        for name in sorted(self.held - wanted):
            self.procs.say(name, "released by `gh fleet start`")
        self.held = wanted
        self._apply(fleet, announce=False)

    def _fingerprints(self, fleet: Fleet) -> dict[str, str]:
        return {
            n: fingerprint(a, _launch_context(self.paths, fleet, a))
            for n, a in self._desired(fleet).items()
        }

    def _apply(self, fleet: Fleet, *, announce: bool = True) -> None:
        desired = self._fingerprints(fleet)
        agents = self._desired(fleet)
        p = plan(desired, self.running)
        old = self.fleet or fleet
        routes_changed = self.fleet is not None and (
            (self.fleet.routes, self.fleet.watches) != (fleet.routes, fleet.watches)
        )
        self.fleet = fleet
        stop = [*p.stop, *p.restart]
        self._stop_agents(stop, old)
        for name in (*p.restart, *p.start):
            self.failures.pop(name, None)
            self._start_agent(agents[name], desired[name])
        self._gateway(fleet)
        head = _head(self.paths)
        moved = head != self.live_commit
        self.live_commit = head
        self.applied_digest = fleet_digest(self.paths)
        if announce:
            what = " ".join(p.describe()) or "no agent changed"
            if routes_changed:
                what += "; routes/watches changed: the router reloads them (no restart)"
            if not p.empty or routes_changed or moved:
                self.procs.say("up", f"applied {_short(head) or 'the work tree'}: {what}")
        self._write_state()

    def _summary(self, fleet: Fleet) -> str:
        n = len(self.running)
        parts = [f"{n} agent{'s' if n != 1 else ''}"]
        if self.opts.with_router:
            parts.append(f"the router ({len(fleet.watches)} watches, {len(fleet.routes)} routes)")
        if fleet.gateway.enabled:
            parts.append("the gateway")
        at = _short(self.live_commit) or "an uncommitted fleet"
        pull = f"; pulling every {self.opts.pull_interval:g}s" if self.opts.pull_interval else ""
        return f"running {', '.join(parts)} at {at}{pull}. Ctrl-C stops everything."

    def _write_state(self) -> None:
        from relayfleet.fleet.gitops import repo_state

        dirty: list[str] = []
        with contextlib.suppress(FleetError):
            dirty = list(repo_state(self.paths.root).fleet_dirty)
        write_json_atomic(
            up_state_path(self.paths),
            {
                "pid": os.getpid(),
                "pid_start": process_start_time(os.getpid()),
                "started_at": self.started_at,
                "live_commit": self.live_commit,
                "fleet_digest": self.applied_digest,
                "uncommitted": dirty,
                "agents": dict(self.running),
                "held": sorted(self.held),
                "remote": sorted(self.remote),
                "router": self.opts.with_router,
                "refused": self.refused,
                "pull_interval": self.opts.pull_interval,
                "pull_error": self._puller.error.as_json()
                if self._puller and self._puller.error
                else None,
                "updated_at": time.time(),
            },
        )

    # -- children -------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.opts.env)
        env["FLEET_ROOT"] = str(self.paths.root)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn_router(self) -> None:
        # The router's entry point is the CLI (it wires config loading and transports).
        argv = [sys.executable, "-m", "relayfleet", "router", "run"]
        self.procs.spawn(ROUTER, argv, self._env(), cwd=self.paths.root)

    def _spawn_gateway(self) -> None:
        argv = [sys.executable, "-m", "relayfleet.gateway", str(self.paths.root)]
        self.procs.spawn(GATEWAY, argv, self._env(), cwd=self.paths.root)

    def _gateway(self, fleet: Fleet) -> None:
        want = fleet.gateway.enabled
        has = GATEWAY in self.procs.children
        if want and not has:
            self._spawn_gateway()
        elif has and not want:
            self.procs.stop(GATEWAY, grace=self.opts.grace)

    def _start_agent(self, agent: Agent, fp: str) -> None:
        assert self.fleet is not None
        self.running[agent.name] = fp
        if _backend_name(agent, self.fleet) != "local":
            from relayfleet.backends.registry import backend_for

            try:
                st = backend_for(agent, self.fleet).start(self.paths, self.fleet, agent)
                self.remote[agent.name] = agent
                self.procs.say(agent.name, f"started {st.detail or agent.runtime.backend}")
            except FleetError as exc:
                self.procs.say(agent.name, f"could not start: {exc}", RED)
            return
        from relayfleet.backends.local import session_record

        name = agent.name
        argv = [sys.executable, "-m", "relayfleet.runner", str(self.paths.root), name]
        self.procs.spawn(
            name,
            argv,
            self._env(),
            cwd=self.paths.root,
            tail=self.paths.runner_log(name),
            extras=lambda: session_record(self.paths, name),
        )

    def _stop_agents(self, names: list[str], fleet: Fleet) -> None:
        local = []
        for name in names:
            self.running.pop(name, None)
            self.restart_at.pop(name, None)
            if name in self.remote:
                self._stop_remote(name, self.remote[name])
            else:
                local.append(name)
        if local:
            self.procs.stop_many(local, grace=self.opts.grace)

    def _stop_remote(self, name: str, agent: Agent) -> None:
        from relayfleet.backends.registry import backend_for

        self.remote.pop(name, None)
        if self.fleet is None:
            return
        try:
            backend_for(agent, self.fleet).stop(self.paths, self.fleet, agent)
            self.procs.say(name, f"stopped [{agent.runtime.backend}]")
        except FleetError as exc:
            self.procs.say(name, f"could not stop: {exc}", RED)

    def _exited(self, name: str, rc: int) -> None:
        if not self._stopping.is_set():
            self.events.put(_Event("exit", name=name, rc=rc))

    def _schedule_restart(self, name: str, rc: int) -> None:
        if self._stopping.is_set() or self.procs.running(name):
            return
        if self.procs.uptime(name) >= HEALTHY_AFTER:
            self.failures.pop(name, None)
        n = self.failures.get(name, 0)
        self.failures[name] = n + 1
        delay = RESTART_BACKOFF[min(n, len(RESTART_BACKOFF) - 1)]
        self.procs.say(name, f"exited with {rc}; restarting in {delay:g}s", RED)
        self.restart_at[name] = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for name, at in list(self.restart_at.items()):
            if at > now or self._stop_requested:
                continue
            del self.restart_at[name]
            if self.procs.running(name):
                continue
            self.procs.children.pop(name, None)
            if name == ROUTER and self.opts.with_router:
                self._spawn_router()
            elif name == GATEWAY and self.fleet and self.fleet.gateway.enabled:
                self._spawn_gateway()
            elif self.fleet and name in self.running and name in self.fleet.agents:
                self._start_agent(self.fleet.agents[name], self.running[name])

    # -- watching and pulling -------------------------------------------------------------
    def _start_watcher(self) -> None:
        threading.Thread(target=self._watch, daemon=True, name="fleet-watch").start()

    def _watch(self) -> None:
        import watchfiles

        state = str(self.paths.state)

        def interesting(_change: object, path: str) -> bool:
            name = os.path.basename(path)
            return not (
                path.startswith(state)
                or (name.startswith(".") and name != ".gitignore")
                or name.endswith((".lock", "~", ".swp", ".tmp"))
            )

        try:
            for _changes in watchfiles.watch(
                str(self.paths.fleet),
                watch_filter=interesting,
                debounce=200,
                step=50,
                stop_event=self._stopping,
                raise_interrupt=False,
            ):
                self.events.put(_Event("change"))
        except Exception as exc:  # the HEAD poll still notices commits
            self.procs.say("up", f"file watching stopped: {exc}", RED)

    def _next_pull(self) -> float | None:
        if not self.opts.pull_interval:
            return None
        return time.monotonic() + self.opts.pull_interval

    def _pull(self) -> None:
        """`git fetch` then `git merge --ff-only @{u}`: a merged PR arrives by itself. A failure
        is said once (git's whole reason and a hint), again only when the reason changes."""
        if self._puller is None:
            return
        o = self._puller.pull()
        if o.error is not None:
            if o.news:
                self.procs.say("up", f"pull: git {o.error.step} failed: {o.error.reason}", RED)
                self.procs.say("up", f"pull: hint: {o.error.hint}", RED)
                self._write_state()
            return
        if o.news:
            self.procs.say("up", "pull: working again")
            self._write_state()
        if o.moved:
            self.procs.say("up", f"pulled {_short(o.before)}..{_short(o.after)}")


def _tty_fd(out: TextIO) -> int | None:
    """The fd of `out` when it is a terminal (else None: a pipe or a file never hangs up)."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if os.isatty(fd) else None


def _was_tty(fd: int) -> bool:
    """A hung-up terminal: writes fail with EIO (a pipe, a file or /dev/null do not)."""
    try:
        os.write(fd, b"")
    except OSError as exc:
        return exc.errno == errno.EIO
    return False


def _backend_name(agent: Agent, fleet: Fleet) -> str:
    """As `backends.registry.backend_for` decides, without importing the remote backends."""
    name = agent.runtime.backend or fleet.default_backend or "local"
    if agent.runtime.host and agent.runtime.host in fleet.hosts and name == "local":
        name = fleet.hosts[agent.runtime.host].backend
    return name


def _launch_context(paths: FleetPaths, fleet: Fleet, agent: Agent) -> bytes:
    """Everything besides agent.toml that a runner reads at launch: persona, fleet-local
    plugins it loads, its host, and the gateway when it talks through it."""
    parts = [_read(paths.persona(agent.name))]
    for plugin in agent.plugins:
        d = paths.plugins / plugin
        if d.is_dir():
            for f in sorted(p for p in d.rglob("*") if p.is_file()):
                parts.append(f.relative_to(paths.plugins).as_posix().encode() + _read(f))
    if agent.runtime.host in fleet.hosts:
        parts.append(repr(fleet.hosts[agent.runtime.host]).encode())
    if agent.claude.endpoint.mode == "gateway" or agent.claude.endpoint.via_gateway:
        parts.append(repr(fleet.gateway).encode())
    return b"\0".join(parts)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _git_dir(root: Path) -> Path | None:
    try:
        r = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--absolute-git-dir"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip() else None


__all__ = ["FleetUp", "Options", "describe_drift", "drift", "fleet_digest", "up_state_path"]
