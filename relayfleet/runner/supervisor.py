"""One agent's runner: plugins, MCP channel, session engine, inbox delivery, restarts.

    inbox.jsonl --inotify--> InboxTail --> Ledger.begin --> engine.deliver --> Ledger.delivered
                                                                  |
    session exits --> backoff --> engine again with resume=True --+
    idle for idle_stop_min --> stopped (asleep) --> next event --+   (runner/idle.py)

The delivery loop itself (budget gate, burst coalescing, re-sends) is runner/delivery.py.
The supervisor is the one place (with the plugin host) allowed a broad `except`: whatever a
session, a plugin or a tool does wrong is logged and survived; only SIGTERM/SIGINT end the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import logging.handlers
import os
import signal
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import write_json_atomic
from relayfleet.core.paths import FleetPaths, bundled_plugins_dir
from relayfleet.core.procs import process_start_time, write_pidfile
from relayfleet.fleet.model import Agent, Fleet
from relayfleet.runner.attach_server import AttachServer, OutputHub
from relayfleet.runner.budget import BudgetGate
from relayfleet.runner.compaction import CompactionConfig, Compactor, recover
from relayfleet.runner.delivery import Delivery
from relayfleet.runner.engine import EngineSpec, SessionEngine
from relayfleet.runner.idle import IdleSleeper
from relayfleet.runner.inbox_tail import InboxTail
from relayfleet.runner.ledger import Ledger
from relayfleet.runner.plugins import PluginHost
from relayfleet.runner.session_group import SessionGroup, keep_private, reap_previous
from relayfleet.runner.tools import (
    BUILTIN_TOOLS,
    INSTRUCTIONS,
    ReachFactory,
    RunnerTools,
)
from relayfleet.runner.workspace import Keeper
from relayfleet.runner.workspace import plan as workspace_plan

CHANNEL_NAME = "relay"
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
HEALTHY_AFTER = 60.0  # a session that ran this long resets the backoff
HOUSEKEEPING_EVERY = 60.0
# (fleet, agent, environment) -> the session's credentials: an object with `env` (dict),
# `secrets` (values to keep out of session.log) and `cleanup()`; raises CredentialError.
# Injected by the entry point (`python -m relayfleet.runner`), which wires in the local backend's
# resolver: the runner does not import backends (ARCHITECTURE 2).
CredentialsFactory = Callable[[Fleet, Agent, Mapping[str, str]], Any]


def runner_state_file(paths: FleetPaths, agent: str) -> Path:
    return paths.agent_state(agent) / "runner-state.json"


def attach_socket(paths: FleetPaths, agent: str) -> Path:
    """`state/agents/<name>/attach.sock`, or a short stand-in when that path is too long.

    A unix socket path is limited to ~104 bytes; a fleet in a deep directory would exceed it.
    The stand-in lives in a private (0700) per-user directory, named by a hash of the state dir;
    runner.json records whichever is in use, and `gh fleet attach` reads it from there.
    """
    import hashlib
    import tempfile

    path = paths.agent_state(agent) / "attach.sock"
    if len(os.fsencode(path)) < 100:
        return path
    from relayfleet.core.privdir import ensure_private_dir

    base = ensure_private_dir(Path(tempfile.gettempdir()) / f"relayfleet-{os.getuid()}")
    digest = hashlib.sha256(os.fsencode(path.parent.resolve())).hexdigest()[:20]
    return base / f"{digest}.sock"


def mcp_config_file(paths: FleetPaths, agent: str) -> Path:
    return paths.agent_state(agent) / "mcp.json"


def plugin_sections(paths: FleetPaths, agent: str) -> dict[str, dict[str, Any]]:
    """`[plugin.<name>]` tables of agent.toml: each plugin's own settings (read-only)."""
    try:
        raw = tomllib.loads(paths.agent_toml(agent).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    sections = raw.get("plugin", {})
    return (
        {k: v for k, v in sections.items() if isinstance(v, dict)}
        if isinstance(sections, dict)
        else {}
    )


def setup_logging(path: Path) -> logging.Logger:
    log = logging.getLogger("relayfleet.runner")
    log.setLevel(logging.INFO)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1 << 20, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    return log


class Runner(Delivery):
    def __init__(
        self,
        paths: FleetPaths,
        fleet: Fleet,
        agent: Agent,
        *,
        engine_factory: Callable[[EngineSpec, Any], SessionEngine] | None = None,
        log: logging.Logger | None = None,
        backoff: tuple[float, float] = (BACKOFF_MIN, BACKOFF_MAX),
        credentials: CredentialsFactory | None = None,
        reach: ReachFactory | None = None,
    ) -> None:
        self.reach_factory = reach
        self.paths = paths
        self.fleet = fleet
        self.agent = agent
        self.name = agent.name
        self.state_dir = paths.agent_state(agent.name)
        self.log = log or setup_logging(paths.runner_log(agent.name))
        self.engine_factory = engine_factory
        self.backoff = backoff
        self.credentials_factory = credentials
        self.credentials: Any = None
        self.start_error: str | None = None
        self.blocked: str | None = None  # first line of a dialog holding the session
        self.ledger = Ledger.load(runner_state_file(paths, agent.name))
        self.compactor = self._compactor()
        self.engine: SessionEngine | None = None
        self.channel: Any = None
        self.plugins: PluginHost | None = None
        self.restarts = 0
        self.started_at = time.time()
        self.session_started_at: float | None = None
        self.last_exit: int | None = None
        # The live session's process group, in runner.json from the moment it is spawned.
        self.session_group = SessionGroup(self.log)
        self.hub = OutputHub()
        self.attach = AttachServer(
            attach_socket(paths, agent.name),
            self.hub,
            self._current_pty,
            self._on_attach,
            self.ledger.mark_launched,  # a human's turn starts the conversation too
            self._on_resize,
        )
        self._attach_size: tuple[int, int] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()  # an engine is up and accepting deliveries
        self._detached = asyncio.Event()
        self._detached.set()
        self._pending_changed = asyncio.Event()
        self._status_dirty = asyncio.Event()
        self._deliver_lock = asyncio.Lock()
        self._tail: InboxTail | None = None
        self.http_inbox: Any = None
        self.workspace = Keeper(workspace_plan(paths, fleet, agent), self.log)
        self.workdir: Path | None = None  # the workspace, once made
        self.budget = BudgetGate(paths, fleet, agent, self.log, lambda: self.ledger.session_id)
        self.permissions: Any = None  # runner/permissions.py PermissionServer, in policy mode
        self.idle = IdleSleeper(agent.runtime.idle_stop_min, self.log)
        self.settings_file: Path | None = None

    def _compactor(self) -> Compactor:
        """Bounded inbox (runner/compaction.py); first finish whatever a killed runner left."""
        inbox = self.paths.inbox(self.name)
        recover(self.ledger, inbox, self.log)
        return Compactor(inbox, self.ledger, CompactionConfig.from_env(os.environ), self.log)

    async def _compact_if_due(self) -> None:
        """The tail's idle hook: nothing read is in flight; the delivery lock keeps it so."""
        if not self.compactor.due():
            return
        try:
            async with self._deliver_lock:
                prepared = await asyncio.to_thread(self.compactor.prepare)
                if prepared is not None:
                    self.compactor.commit(*prepared, tail=self._tail)
        except Exception as exc:  # compaction is housekeeping: never take delivery down
            self.log.warning("inbox compaction failed: %s: %s", type(exc).__name__, exc)

    # -- wiring ---------------------------------------------------------------------------
    def _current_pty(self) -> Any:
        # A blocked session is attachable too: attaching is how a human answers its dialog.
        up = self._ready.is_set() or self.blocked is not None
        return getattr(self.engine, "pty", None) if up else None

    def _on_attach(self, clients: int) -> None:
        pty = self._current_pty()
        if pty is not None:
            pty.held = clients > 0
        if clients > 0:
            self._detached.clear()
        else:
            self._detached.set()
        self.log.info("attach: %d viewer(s)", clients)
        self._status_dirty.set()

    def _on_resize(self, size: tuple[int, int] | None) -> None:
        """An attached viewer's terminal size (SIGWINCH); None restores the session's own."""
        self._attach_size = size
        if self._ready.is_set():
            self._apply_size(self.engine)

    def _apply_size(self, engine: Any) -> None:
        size = self._attach_size or getattr(engine, "dimensions", None)
        if size is None:
            return
        resize = getattr(engine, "resize", None)
        pty = getattr(engine, "pty", None)
        if resize is not None:
            resize(*size)
        elif pty is not None:
            pty.resize(*size)

    def _on_ack(self, event_id: str, outcome: str) -> None:
        # The outcome is optional in ack_event: no dangling "acked evt_…: " when there is none.
        self.log.info("acked %s%s", event_id, f": {outcome[:200]}" if outcome else "")
        self._pending_changed.set()
        self._status_dirty.set()

    def request_stop(self) -> None:
        self._stop.set()

    def spec(self) -> EngineSpec:
        from relayfleet.runner.fleet_bin import session_path

        workdir = self.workdir or self.state_dir / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        return EngineSpec(
            agent=self.agent,
            agent_dir=self.paths.agent_dir(self.name),
            state_dir=self.state_dir,
            workdir=workdir,
            session_log=self.paths.session_log(self.name),
            mcp_url=self.mcp_url,
            mcp_token=self.mcp_token,
            session_id=self.ledger.session_id,
            resume=self.ledger.launched,
            gateway=self.fleet.gateway,
            env={
                **(self.credentials.env if self.credentials is not None else {}),
                "RELAYFLEET_AGENT": self.name,
                "RELAYFLEET_MCP_CONFIG": str(self.mcp_config),
                "PATH": session_path(self.state_dir, os.environ),  # `gh fleet` is on it
            },
            redact=tuple(self.credentials.secrets) if self.credentials is not None else (),
            on_spawn=self._on_spawn,
            settings=self.settings_file,
        )

    def _on_spawn(self, pid: int) -> None:
        """Record the new session's group in runner.json at once (not at the next status
        write): a runner killed during a slow start-up must not leave it unrecorded."""
        self.session_group.record(pid)
        self.write_status()

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        eng = self.engine if self._ready.is_set() else None
        pty = self._current_pty()
        return {
            "agent": self.name,
            "pid": os.getpid(),
            "pid_start": process_start_time(os.getpid()),
            "started_at": self.started_at,
            "updated_at": time.time(),
            "running": not self._stop.is_set(),
            "session": "asleep"
            if self.idle.asleep
            else "up"
            if eng is not None
            else "blocked"
            if self.blocked
            else "restarting",
            "session_pid": getattr(pty, "pid", None),
            "session_pid_start": process_start_time(pty.pid) if pty is not None else None,
            **self.session_group.fields(),
            "session_started_at": self.session_started_at,
            "session_id": self.ledger.session_id,
            "delivery": getattr(eng, "delivery", None),
            "engine": self._engine_status(eng),
            "pending": len(self.ledger.pending),
            "delivered": self.ledger.delivered_count,
            "last_delivered": self.ledger.last_delivered,
            "last_delivered_at": self.ledger.last_delivered_at,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "attached": self.attach.clients,
            "attach_socket": str(self.attach.path),
            "plugins": list(self.plugins.loaded) if self.plugins else [],
            "plugin_errors": [e.to_json() for e in self.plugins.errors] if self.plugins else [],
            "mcp_url": getattr(self, "mcp_url", None),  # the token is never written here
            "channel_port": getattr(self.channel, "port", None) or None,
            "port_notice": getattr(self.channel, "port_notice", "") or None,
            "credentials": [c.name for c in self.agent.credentials],  # names, never values
            "error": self.start_error,
            "workspace": self.workspace.status(),
            "budget": self.budget.verdict.to_json() if self.budget.active else None,
            "permissions": self.agent.permissions.mode,
        }

    @staticmethod
    def _engine_status(eng: Any) -> dict[str, Any]:
        """What the engine says about itself (channel notice, bracketed paste, …)."""
        try:
            st = eng.status() if eng is not None and hasattr(eng, "status") else {}
            return {k: v for k, v in st.items() if isinstance(v, str | int | float | bool | None)}
        except Exception:
            return {}

    def write_status(self) -> None:
        write_json_atomic(self.paths.runner_status(self.name), self.status())

    async def _status_loop(self) -> None:
        # Coalesce: a burst of deliveries costs one status write, off the delivery path.
        while True:
            await self._status_dirty.wait()
            self._status_dirty.clear()
            await asyncio.to_thread(self.write_status)
            await asyncio.sleep(0.2)

    async def _housekeeping_loop(self, every: float = HOUSEKEEPING_EVERY) -> None:
        """Bounded state for weeks of running, and a fresh look at the channel's registration
        (the debug file) so `status` shows the path in use even between deliveries."""
        from relayfleet.runner.housekeeping import trim_plugin_state

        while True:
            try:
                for p in await asyncio.to_thread(trim_plugin_state, self.state_dir):
                    self.log.info("cut %s back to its newest lines", p.name)
                if self.budget.active:  # so status warns at 80 % between deliveries too
                    await asyncio.to_thread(self.budget.refresh)
                    self._status_dirty.set()
                recheck = getattr(self.engine, "recheck", None) if self._ready.is_set() else None
                if recheck is not None:
                    before = self.engine.delivery if self.engine is not None else None
                    recheck()
                    if self.engine is not None and self.engine.delivery != before:
                        self.log.info("delivery path now %s", self.engine.delivery)
                        self._status_dirty.set()
            except Exception as exc:  # housekeeping never takes the runner down
                self.log.warning("housekeeping: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(every)

    # -- main -----------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        reap_previous(self.paths.runner_status(self.name), self.log)
        write_pidfile(self.paths.runner_pid(self.name))
        self.log.info("runner for %s starting (pid %d)", self.name, os.getpid())
        tasks: list[asyncio.Task[Any]] = []
        try:
            if not await self._resolve_credentials():
                return 1
            if not await self._prepare_workspace():
                return 1
            await self._start_services()
            self.write_status()
            tasks = [
                asyncio.create_task(self._supervise(), name="supervise"),
                asyncio.create_task(self._deliver_loop(), name="deliver"),
                asyncio.create_task(self._resend_loop(), name="resend"),
                asyncio.create_task(self._status_loop(), name="status"),
                asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
            ]
            if self.idle.enabled:
                watch = self.idle.watch(self._quiet, self._put_to_sleep)
                tasks.append(asyncio.create_task(watch, name="idle"))
            stop = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop and t.exception() is not None:
                    self.log.error("runner task %s died: %r", t.get_name(), t.exception())
            return 0
        finally:
            self._stop.set()
            await self._shutdown(tasks)

    async def _resolve_credentials(self) -> bool:
        """All of the agent's credentials, fresh, before anything starts; False if one is missing.

        The error names the credential, the agent and the reference, never a value."""
        if self.credentials_factory is None or not self.agent.credentials:
            return True
        from relayfleet.core.errors import FleetError

        try:
            self.credentials = await asyncio.to_thread(
                self.credentials_factory, self.fleet, self.agent, dict(os.environ)
            )
        except FleetError as exc:
            self.start_error = str(exc)
            self.log.error("not starting: %s", exc)
            return False
        self.log.info("credentials resolved: %s", [c.name for c in self.agent.credentials])
        return True

    async def _prepare_workspace(self) -> bool:
        """The checkout the session starts in (runner/workspace.py); False if it cannot be made."""
        from relayfleet.core.errors import FleetError

        creds = self.credentials.env if self.credentials is not None else {}
        try:
            self.workdir = await self.workspace.prepare(creds)
        except FleetError as exc:
            self.start_error = f"workspace: {exc}"
            self.log.error("not starting: workspace: %s", exc)
            return False
        return True

    async def _start_services(self) -> None:
        from relayfleet.runner.channel import ChannelServer, write_mcp_config

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tools = RunnerTools(
            paths=self.paths,
            fleet=self.fleet,
            agent=self.name,
            ledger=self.ledger,
            on_ack=self._on_ack,
            reach=self.reach_factory(self.paths, self.fleet, self.name)
            if self.reach_factory
            else None,
        )
        self.plugins = PluginHost(
            agent=self.name,
            config=dataclasses.asdict(self.agent),
            sections=plugin_sections(self.paths, self.name),
            agent_dir=self.paths.agent_dir(self.name),
            state_dir=self.state_dir,
            inbox=self.paths.inbox(self.name),
            log=self.log,
            reserved_tools=BUILTIN_TOOLS,
        )
        await self.plugins.load(self.agent.plugins, [bundled_plugins_dir(), self.paths.plugins])
        self.channel = ChannelServer(CHANNEL_NAME, INSTRUCTIONS)
        for fn, name, desc in self.tools.bind():
            self.channel.tool(fn, name=name, description=desc)
        for t in self.plugins.tools:
            guarded = self._guard_tool(t.plugin, t.fn)
            self.channel.tool(guarded, name=t.name, description=t.description)
        self.mcp_url, self.mcp_token = await self.channel.start(self.agent.port)
        if self.channel.port_notice:
            self.log.warning("channel: %s", self.channel.port_notice)
        self.mcp_config = mcp_config_file(self.paths, self.name)
        write_mcp_config(self.mcp_config, CHANNEL_NAME, self.mcp_url, self.mcp_token)
        if self.agent.permissions.mode == "policy":
            from relayfleet.runner.permissions import PermissionServer

            self.permissions = PermissionServer(
                self.paths,
                self.name,
                self.agent.permissions,
                self.log,
                lambda: self.ledger.last_delivered,
                self._status_dirty.set,
            )
            self.settings_file = await self.permissions.start()
        try:
            await self.attach.start()
        except OSError as exc:  # attach is a convenience: the agent runs without it
            self.log.error("attach socket unavailable: %s", exc)
        if self.agent.runtime.inbox_transport == "http":
            # The receiving end of the http inbox transport (G's runner/http_inbox.py).
            from relayfleet.runner.http_inbox import start_http_inbox

            self.http_inbox = await start_http_inbox(self.state_dir)
        self.log.info(
            "channel %s up at %s; plugins %s", CHANNEL_NAME, self.mcp_url, self.plugins.loaded
        )

    def _guard_tool(self, plugin: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A plugin tool that raises is reported (status, log), and the error goes to the caller."""
        import inspect

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                res = fn(*args, **kwargs)
                return await res if inspect.isawaitable(res) else res
            except Exception as exc:
                assert self.plugins is not None
                self.plugins._fail(plugin, "tool", f"{fn.__name__}: {type(exc).__name__}: {exc}")
                self._status_dirty.set()
                raise

        return guarded

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        self.log.info("runner for %s stopping", self.name)
        if self._tail is not None:
            self._tail.close()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, 2)
        if self.engine is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.engine.stop(), 15)
        self.session_group.end()
        self._ready.clear()
        await self.attach.stop()
        if self.http_inbox is not None:
            with contextlib.suppress(Exception):
                await self.http_inbox.stop()
        if self.permissions is not None:
            await self.permissions.stop()
        if self.plugins is not None:
            await self.plugins.stop()
        if self.credentials is not None:
            with contextlib.suppress(Exception):
                self.credentials.cleanup()
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.channel.stop(), 5)
        st = self.status()
        st.update(running=False, session="stopped", delivery=None, stopped_at=time.time())
        write_json_atomic(self.paths.runner_status(self.name), st)
        self.log.info("runner for %s stopped", self.name)

    # -- the session ----------------------------------------------------------------------
    def _make_engine(self, spec: EngineSpec) -> SessionEngine:
        if self.engine_factory is not None:
            return self.engine_factory(spec, self.channel)
        from relayfleet.runner.engines import make_engine

        return make_engine(spec, self.channel)

    async def _supervise(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            spec = self.spec()
            began = time.monotonic()
            engine: SessionEngine | None = None
            try:
                engine = self._make_engine(spec)
                self.engine = engine
                await self._start_engine(engine)
            except Exception as exc:
                self.log.error("session failed to start: %s: %s", type(exc).__name__, exc)
                self.last_exit = None
                if engine is not None:
                    with contextlib.suppress(Exception):
                        await engine.stop()
                self.session_group.end()
            else:
                # `launched` (so the next launch resumes) is marked at the first turn, not here:
                # Claude Code creates the conversation with its first message, and `--resume`
                # of an id that has none fails.
                self.session_started_at = time.time()
                pty = getattr(engine, "pty", None)
                self.idle.touch()
                if pty is not None:
                    pty.subscribe(self.hub.feed)
                    pty.subscribe(self.idle.touch)  # output is activity
                    pty.held = self.attach.attached
                if self._attach_size is not None:  # restarted while someone is attached
                    self._apply_size(engine)
                self._ready.set()
                self._status_dirty.set()
                self.log.info(
                    "session up (%s, session %s, delivery %s)",
                    "resumed" if spec.resume else "new",
                    spec.session_id,
                    engine.delivery,
                )
                self.last_exit = await engine.wait()
                self._ready.clear()
                self.session_group.end()
                if self._stop.is_set():
                    return
                if self.idle.asleep:  # stopped for idleness: no restart until an event comes
                    self._status_dirty.set()
                    await self.idle.until_woken(self._stop)
                    delay = self.backoff[0]
                    continue
                self.log.warning("session exited with status %s", self.last_exit)
            if self._stop.is_set():
                return
            self.restarts += 1
            if time.monotonic() - began > HEALTHY_AFTER:
                delay = self.backoff[0]
            self.log.info("restarting the session in %.1fs (restart #%d)", delay, self.restarts)
            self._status_dirty.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self.backoff[1])

    async def _start_engine(self, engine: SessionEngine) -> None:
        """`engine.start()`; a session held by a dialog the runner must not answer stays up for
        a human (`gh fleet attach`), and is never restarted: retrying would only loop."""
        from relayfleet.runner.engine_claude import SessionBlocked

        try:
            await engine.start()
            return
        except SessionBlocked as exc:
            self.blocked, self.start_error = exc.title, str(exc)
            self.log.error("session %s", exc)
            self._status_dirty.set()
            answered = await engine.until_unblocked()  # type: ignore[attr-defined]
            self.blocked = None
            if answered:
                self.start_error = None
                self.log.info("the dialog was answered; the session is up")
                return
            self.start_error = f"{exc}; the session has exited: gh fleet restart {self.name}"
            self._status_dirty.set()
            await self._stop.wait()  # it exited unanswered: stay stopped, do not loop
            raise


def run_agent(
    root: Path,
    agent_name: str,
    *,
    credentials: CredentialsFactory | None = None,
    reach: ReachFactory | None = None,
) -> int:
    """`python -m relayfleet.runner <root> <agent>`: load the fleet and run until signalled."""
    from relayfleet.fleet.load import load_fleet

    paths = FleetPaths(Path(root).resolve())
    keep_private(paths.agent_state(agent_name))
    log = setup_logging(paths.runner_log(agent_name))
    try:
        fleet = load_fleet(paths)
        agent = fleet.agent(agent_name)
    except Exception as exc:
        log.error("cannot load agent %s: %s", agent_name, exc)
        raise
    runner = Runner(paths, fleet, agent, log=log, credentials=credentials, reach=reach)
    return asyncio.run(runner.run())
