"""The ssh backend: the agent's runner on another machine, inside tmux, over pooled asyncssh.

`start`: resolve credentials (all or nothing) -> make sure this relayfleet version is installed on
the host (sync the package over SFTP into `<workdir>/relayfleet-<version>/src`, make a venv there,
install the pinned dependencies only when they are missing) -> sync the agent's config -> push its
credentials -> `tmux -L relayfleet-<fleet> new-session -d -s <agent> …` running
`python -m relayfleet.runner`. tmux keeps it alive when the SSH connection drops. Paths: see
`remote_layout.py`.

Windows hosts (`os = "windows"`) differ: no tmux (a Scheduled Task or `start /b` with a pidfile
would hold the runner), `%USERPROFILE%` paths, `py -3` instead of `python3`, and no flock (the
inbox append needs `msvcrt.locking`). None of that is built yet, so starting an agent on a
Windows host is a clear BackendError; `host check` still reports what it finds there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from relayfleet import __version__
from relayfleet.backends.base import RunnerStatus
from relayfleet.backends.credentials import Resolved, resolve
from relayfleet.backends.hostlock import HostLock, Progress, Say
from relayfleet.backends.remote_layout import RemoteLayout, absolute_base, fleet_identity, operator
from relayfleet.backends.sshpool import SshPool, SshTarget, default_pool, q
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths, bundled_plugins_dir, package_dir
from relayfleet.fleet.model import Agent, Fleet, Host

# Runs on the host with the runner's venv: TERM the runner, wait, then KILL its whole process
# tree and the session it recorded (the same code the local backend uses, shipped with the sync).
STOP_TREE = """
import sys
from pathlib import Path
from relayfleet.backends.local import session_record, stop_tree
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import PidRecord, process_start_time
pid, root, agent, grace = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
rec = PidRecord(pid, process_start_time(pid), 0.0)
stop_tree(rec, grace=grace, extra=session_record(FleetPaths(Path(root)), agent))
"""

SKIP_DIRS = {"__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def package_files() -> dict[str, bytes]:
    """The package tree (and the bundled plugins) as relative path -> bytes, for syncing."""
    out: dict[str, bytes] = {}
    for top, prefix in ((package_dir(), "relayfleet"), (bundled_plugins_dir(), "plugins")):
        if not top.is_dir():
            continue
        for p in sorted(top.rglob("*")):
            if not p.is_file() or p.suffix in SKIP_SUFFIXES:
                continue
            rel = p.relative_to(top)
            if SKIP_DIRS.intersection(rel.parts):
                continue
            out[f"{prefix}/{rel.as_posix()}"] = p.read_bytes()
    return out


def tree_hash(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()[:16]


def requirements() -> list[str]:
    """Our pinned runtime dependencies (from the installed metadata), for the remote venv."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires("relayfleet") or []
    except PackageNotFoundError:
        return []
    return [r for r in reqs if "extra ==" not in r]


# Runs with the remote venv's python: which pinned distributions are missing (one per line).
MISSING_DEPS = r"""
import sys, re
from importlib.metadata import version, PackageNotFoundError
for req in sys.stdin.read().split("\n"):
    req = req.strip()
    if not req: continue
    spec, _, marker = req.partition(";")
    if "win32" in marker and sys.platform != "win32": continue
    if "linux" in marker and not sys.platform.startswith("linux"): continue
    name = re.split(r"[=<>!~ \[]", spec, 1)[0]
    try: version(name)
    except PackageNotFoundError: print(spec.strip())
"""


@dataclass(frozen=True)
class Remote:
    host: Host
    target: SshTarget
    layout: RemoteLayout

    def host_python(self) -> str:
        return "python3"  # the host's own interpreter, only to create the venv


# Each install step's own time limit (seconds); a step that overruns is killed on the host.
STEP_TIMEOUTS = {"copy": 600.0, "venv": 300.0, "check": 180.0, "pip": 1800.0}
INSTALL_WAIT = 1800.0  # how long a second start waits for an install another process runs


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class SshBackend:
    name = "ssh"

    def __init__(
        self,
        pool: SshPool | None = None,
        *,
        stop_grace: float = 10.0,
        say: Say = _stderr,
        install_wait: float = INSTALL_WAIT,
        step_timeouts: dict[str, float] | None = None,
    ) -> None:
        self.pool = pool or default_pool()
        self.stop_grace = stop_grace
        self.say = say  # progress lines (the CLI points this at its stderr)
        self.install_wait = install_wait
        self.step_timeouts = {**STEP_TIMEOUTS, **(step_timeouts or {})}

    # -- where --

    def remote(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> Remote:
        host = host_of(fleet, agent)
        target = SshTarget.from_host(host, paths.state)
        base = host.workdir
        if not base.startswith("/"):
            base = absolute_base(base, self.pool.home(target))
        ident = fleet_identity(fleet.name, paths.root)
        return Remote(host, target, RemoteLayout(base=base, fleet=ident))

    # -- install --

    def ensure_installed(self, r: Remote) -> str:
        """Install (or verify) this relayfleet on the host; returns what it did.

        Idempotent and locked on the host: a second start meanwhile waits for the first (or
        says it is in progress), then finds it "up to date"."""
        lay, t = r.layout, r.target
        files = package_files()
        digest = tree_hash(files)
        if self._installed(r, digest):
            return "up to date"
        lock = HostLock(self.pool, t, lay.install_lock, owner=f"{operator()} pid {os.getpid()}")
        lock.acquire(wait=self.install_wait, say=self.say, what="installing the runner")
        try:
            if self._installed(r, digest):  # the install we waited for did it
                return "up to date"
            self._install(r, files, digest, lock)
        finally:
            lock.release()
        return "installed"

    def _installed(self, r: Remote, digest: str) -> bool:
        marker = self.pool.read(r.target, r.layout.marker)
        return bool(marker) and json.loads(marker or b"{}").get("hash") == digest

    def _install(self, r: Remote, files: dict[str, bytes], digest: str, lock: HostLock) -> None:
        lay, t, to = r.layout, r.target, self.step_timeouts
        progress = Progress(self.say, r.host.name, 4, lock)
        pyexe = r.host_python()

        def step(command: str, what: str, timeout: float, input: str | None = None) -> str:
            try:
                return self.pool.check(
                    t, lock.step_command(command), input=input, what=what, timeout=timeout
                )
            except BackendError:
                lock.kill_step()  # an overrun (or a failure) leaves nothing running there
                raise

        with progress.step(1, "copying the package"):
            self.pool.put_tree(t, files, lay.src, timeout=to["copy"])
        with progress.step(2, "creating the venv"):
            step(
                f"test -x {q(lay.python)} || {pyexe} -m venv {q(lay.venv)} "
                f"|| {pyexe} -m venv --without-pip {q(lay.venv)}",
                "creating the runner venv",
                to["venv"],
            )
        with progress.step(3, "checking dependencies"):
            # The synced source goes on the venv's path with a .pth: an editable install.
            site = step(
                f"{q(lay.python)} -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'",
                "locating site-packages",
                to["check"],
            ).strip()
            self.pool.put(t, (lay.src + "\n").encode(), f"{site}/relayfleet-src.pth")
            missing = step(
                f"{q(lay.python)} -c {q(MISSING_DEPS)}",
                "checking dependencies",
                to["check"],
                input="\n".join(requirements()),
            ).split()
        with progress.step(4, f"installing {len(missing)} dependencies"):
            if missing:
                step(
                    f"{q(lay.python)} -m pip install --quiet {' '.join(q(m) for m in missing)}",
                    "installing the runner's dependencies",
                    to["pip"],
                )
        meta = {"version": __version__, "hash": digest, "installed_at": time.time()}
        self.pool.put(t, json.dumps(meta).encode(), lay.marker)

    def sync_config(self, paths: FleetPaths, r: Remote, agent: Agent) -> None:
        """Copy what the runner reads: fleet.toml, routes.toml, the agent's dir, every agent's
        agent.toml, fleet plugins."""
        files: dict[str, bytes] = {}
        for p in (paths.fleet_toml, paths.routes_toml):
            if p.is_file():
                files[p.name] = p.read_bytes()
        # Every agent's agent.toml: the runner hands off to them and reports on them.
        for other in sorted(paths.fleet.glob("agents/*/agent.toml")):
            files[other.relative_to(paths.fleet).as_posix()] = other.read_bytes()
        for top in (paths.agent_dir(agent.name), paths.plugins):
            if top.is_dir():
                for p in sorted(top.rglob("*")):
                    if p.is_file() and not SKIP_DIRS.intersection(p.parts):
                        files[p.relative_to(paths.fleet).as_posix()] = p.read_bytes()
        self.pool.put_tree(r.target, files, r.layout.fleet_dir)
        self.pool.check(r.target, f"mkdir -p {q(r.layout.agent_state(agent.name))}")

    def push_credentials(
        self, r: Remote, agent: Agent, resolved: Resolved, extra_env: dict[str, str] | None = None
    ) -> str:
        """Credential files with their modes, and the one-shot env file; returns its path.

        `extra_env` (the gateway sentinel and URL) rides in the same 0600 file: never argv.
        """
        secrets = r.layout.secrets(agent.name)
        self.pool.check(r.target, f"mkdir -p {q(secrets)} && chmod 700 {q(secrets)}")
        home = self.pool.home(r.target)
        for f in resolved.files:
            self.pool.put(r.target, f.data, f.path_in(home), mode=f.mode)
        env_file = f"{secrets}/env.json"
        env = {**resolved.env, **(extra_env or {})}
        self.pool.put(r.target, json.dumps(env).encode(), env_file, mode=0o600)
        return env_file

    # -- Backend --

    def start(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus:
        resolved = resolve(agent)  # before touching the host: nothing half-configured
        r = self.remote(paths, fleet, agent)
        if r.host.os == "windows":
            raise BackendError(
                f"host {r.host.name!r} runs Windows; the ssh backend does not start runners "
                "there yet (no tmux: it needs a Scheduled Task runner)",
                hints=["run this agent on a Linux/macOS host, or with the docker backend"],
            )
        st = self.status(paths, fleet, agent, remote=r)
        if st.running:
            st.detail += " already running"
            return st
        self.pool.check(
            r.target, "command -v tmux >/dev/null", what=f"looking for tmux on {r.host.name!r}"
        )
        self.ensure_installed(r)
        self.sync_config(paths, r, agent)
        gateway_env: dict[str, str] = {}
        try:
            if needs_tunnel(fleet, agent):
                # The sentinel is computed here (the secret never leaves this machine) and the
                # reverse tunnel is up before the session's first request.
                from relayfleet.backends.tunnel import remote_gateway_env

                gateway_env = remote_gateway_env(paths, fleet, agent.name, r.host.name)
            env_file = self.push_credentials(r, agent, resolved, gateway_env)
            self._launch(r, agent, env_file)
        except BaseException:
            # A start that fails leaves no secret behind (nor a half-started session).
            self._remove_pushed(r, agent, resolved)
            if needs_tunnel(fleet, agent):
                self._close_idle_tunnel(paths, fleet, r.host.name, agent.name)
            raise
        st = self.status(paths, fleet, agent, remote=r)
        st.detail += " started"
        return st

    def _launch(self, r: Remote, agent: Agent, env_file: str) -> None:
        lay = r.layout
        py = q(lay.python)
        runner = (
            f"cd {q(lay.root)} && PATH={q(lay.venv + '/bin')}:$PATH exec {py} "
            f"-m relayfleet.backends.envexec {q(env_file)} -- "
            f"{py} -m relayfleet.runner {q(lay.root)} {q(agent.name)} "
            f">> {q(lay.agent_state(agent.name) + '/runner.out')} 2>&1"
        )
        self.pool.check(
            r.target,
            f"tmux -L {q(lay.tmux_socket)} new-session -d -s {q(agent.name)} "
            f"-x 200 -y 50 {q(runner)}",
            what="starting the runner in tmux",
        )

    def _remove_pushed(self, r: Remote, agent: Agent, resolved: Resolved) -> None:
        """Undo `push_credentials` and `_launch`: the secrets dir, the credential files, the
        tmux session. Best effort: the start's own error is the one to report."""
        lay = r.layout
        parts = [
            f"tmux -L {q(lay.tmux_socket)} kill-session -t {q('=' + agent.name)} 2>/dev/null",
            f"rm -rf {q(lay.secrets(agent.name))}",
        ]
        try:
            home = self.pool.home(r.target)
            parts += [f"rm -f {q(f.path_in(home))}" for f in resolved.files]
            self.pool.run(r.target, "; ".join(parts) + "; true", step="removing pushed secrets")
        except BackendError:
            pass

    def stop(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> bool:
        r = self.remote(paths, fleet, agent)
        st = self.status(paths, fleet, agent, remote=r)
        lay = r.layout
        sock, name = q(lay.tmux_socket), q("=" + agent.name)
        if st.running and st.pid:
            # TERM first, so the runner ends its session and tools cleanly; then the tmux
            # session goes (which HUPs anything left), then KILL any straggler of the tree.
            script = (
                f"{q(lay.python)} -c {q(STOP_TREE)} {st.pid} {q(lay.root)} {q(agent.name)} "
                f"{self.stop_grace}; tmux -L {sock} kill-session -t {name} 2>/dev/null; true"
            )
            self.pool.run(r.target, script, timeout=self.stop_grace + 30)
        self.pool.run(r.target, f"rm -rf {q(lay.secrets(agent.name))}")
        # This process's inbox worker on the host (restarted by the next append, if any).
        from relayfleet.backends.inboxworker import close_workers

        close_workers(self.pool, r.target)
        if needs_tunnel(fleet, agent):
            self._close_idle_tunnel(paths, fleet, r.host.name, agent.name)
        return st.running

    def workspace(self, paths: FleetPaths, fleet: Fleet, agent: Agent, action: str) -> Any:
        """remove-agent's look at (`check`: what would be lost) or removal of (`remove`) the
        agent's workspace on its host, by runner/workspace.py run there."""
        r = self.remote(paths, fleet, agent)
        lay = r.layout
        nothing = json.dumps({"lost": []} if action == "check" else {"removed": False})
        res = self.pool.run(
            r.target,
            # Never started on this host: no runner installed, so no workspace either.
            f"if [ ! -x {q(lay.python)} ]; then echo {q(nothing)}; exit 0; fi; "
            f"{q(lay.python)} -m relayfleet.runner.workspace {q(lay.root)} {q(agent.name)} "
            f"{q(action)}",
            timeout=120,
            step=f"workspace {action}",
        )
        if not res.ok:
            why = (res.stderr or res.stdout).strip().splitlines()
            raise BackendError(
                f"host {r.host.name!r}: the workspace of {agent.name} could not be"
                f" {'checked' if action == 'check' else 'removed'}: {why[-1] if why else '?'}"
            )
        return json.loads(res.stdout)

    def _close_idle_tunnel(self, paths: FleetPaths, fleet: Fleet, host: str, leaving: str) -> None:
        """The last gateway agent on `host` stopped: nothing there needs the tunnel any more."""
        from relayfleet.backends.tunnel import close_tunnel

        others = [
            a
            for a in fleet.agents.values()
            if a.name != leaving
            and a.runtime.backend == "ssh"
            and a.runtime.host == host
            and needs_tunnel(fleet, a)
        ]
        if others and any(s.running for s in self.status_many(paths, fleet, others).values()):
            return
        close_tunnel(paths, host)

    def status(
        self, paths: FleetPaths, fleet: Fleet, agent: Agent, *, remote: Remote | None = None
    ) -> RunnerStatus:
        r = remote or self.remote(paths, fleet, agent)
        return self._status_batch(paths, r, [agent])[agent.name]

    def status_many(
        self, paths: FleetPaths, fleet: Fleet, agents: list[Agent]
    ) -> dict[str, RunnerStatus]:
        """Every agent's status with ONE remote command per host (not one per agent)."""
        by_host: dict[str, list[Agent]] = {}
        for a in agents:
            by_host.setdefault(a.runtime.host, []).append(a)
        out: dict[str, RunnerStatus] = {}
        for group in by_host.values():
            out.update(self._status_batch(paths, self.remote(paths, fleet, group[0]), group))
        return out

    def _status_batch(
        self, paths: FleetPaths, r: Remote, agents: list[Agent]
    ) -> dict[str, RunnerStatus]:
        """One round trip: the fleet's tmux panes, then each agent's runner.json.

        Plain POSIX sh, `tmux` and `cat` only: no Python start-up on the host, no rc files of
        ours (sshd still starts the user's shell; see docs/remote.md).
        """
        lay = r.layout
        parts = [
            f"tmux -L {q(lay.tmux_socket)} list-panes -a "
            "-F '@pane #{session_name} #{pane_pid} #{pane_dead}' 2>/dev/null"
        ]
        for a in agents:
            status_file = q(lay.agent_state(a.name) + "/runner.json")
            inbox = q(lay.inbox(a.name))
            parts.append(f"echo @lines {q(a.name)} $(cat {inbox} 2>/dev/null | wc -l)")
            parts.append(f"echo @json {q(a.name)}; cat {status_file} 2>/dev/null; echo")
        res = self.pool.run(r.target, "; ".join(parts) + "; true")
        panes, facts = parse_status_output(res.stdout)
        counts = inbox_counts(res.stdout)
        out: dict[str, RunnerStatus] = {}
        for a in agents:
            pid, running = panes.get(a.name, (None, False))
            extra: dict[str, object] = dict(facts.get(a.name, {}))
            if not running or extra.get("pid") not in (None, pid):
                extra = {k: extra[k] for k in ("restarts", "last_delivered") if k in extra}
            extra["remote_root"] = lay.root
            extra["inbox_events"] = counts.get(a.name, 0)
            out[a.name] = RunnerStatus(
                name=a.name,
                running=running,
                backend=self.name,
                pid=pid if running else None,
                host=r.host.name,
                started_at=_float(extra.get("started_at")) if running else None,
                detail=f"[ssh@{r.host.name}]",
                extra=extra,
            )
        return out

    def logs(self, paths: FleetPaths, fleet: Fleet, agent: Agent, lines: int) -> str:
        r = self.remote(paths, fleet, agent)
        res = self.pool.run(
            r.target, f"tail -n {int(lines)} {q(r.layout.session_log(agent.name))} 2>/dev/null"
        )
        return res.stdout


def host_of(fleet: Fleet, agent: Agent) -> Host:
    name = agent.runtime.host
    if not name:
        raise BackendError(
            f"agent {agent.name!r} uses the ssh backend but names no host",
            hints=[
                f'set host = "<host>" under [runtime] in .fleet/agents/{agent.name}/agent.toml',
                "the hosts: gh fleet host list",
            ],
        )
    if name not in fleet.hosts:
        raise BackendError(
            f"agent {agent.name!r}: no host named {name!r} in fleet.toml",
            hints=[f"gh fleet host add {name} --backend ssh --host user@addr"],
        )
    return fleet.hosts[name]


def needs_tunnel(fleet: Fleet, agent: Agent) -> bool:
    """The agent talks to the operator's gateway (at localhost on the host, via a tunnel)."""
    ep = agent.claude.endpoint
    return ep.mode == "gateway" or ep.via_gateway


def parse_status_output(
    text: str,
) -> tuple[dict[str, tuple[int | None, bool]], dict[str, dict[str, Any]]]:
    """`_status_batch`'s output -> ({session: (pane pid, alive)}, {agent: runner.json})."""
    panes: dict[str, tuple[int | None, bool]] = {}
    facts: dict[str, dict[str, Any]] = {}
    current: str | None = None
    buf: list[str] = []

    def flush() -> None:
        if current is None:
            return
        try:
            data = json.loads("\n".join(buf))
        except ValueError:
            data = None
        if isinstance(data, dict):
            facts[current] = data

    for line in text.splitlines():
        if line.startswith("@pane "):
            bits = line.split()
            if len(bits) >= 3 and bits[1] not in panes:  # the session's first pane: the runner
                pid = int(bits[2]) if bits[2].isdigit() else None
                panes[bits[1]] = (pid, len(bits) < 4 or bits[3] != "1")
        elif line.startswith("@json "):
            flush()
            current, buf = line[len("@json ") :].strip(), []
        elif line.startswith("@lines "):
            flush()
            current, buf = None, []
        elif current is not None:
            buf.append(line)
    flush()
    return panes, facts


def inbox_counts(text: str) -> dict[str, int]:
    """`@lines <agent> <n>` lines of `_status_batch`'s output -> {agent: inbox lines}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        bits = line.split()
        if len(bits) == 3 and bits[0] == "@lines" and bits[2].isdigit():
            out[bits[1]] = int(bits[2])
    return out


def _float(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) else None
