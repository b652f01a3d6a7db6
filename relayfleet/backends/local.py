"""The local backend: each runner is a detached process on this machine.

`start` spawns `python -m relayfleet.runner <root> <agent>` in its own session and process group
and records its PID *with its start time* in `runner.pid`, so a recycled PID is never signalled.
`stop` sends TERM (the runner then stops its session, channel and plugins cleanly), escalates to
KILL after a grace period, and kills whatever is left of the runner's process tree, the session
and its tools included: the PTY child leads its own session, so the runner's process group alone
would not cover it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relayfleet.backends.base import RunnerStatus
from relayfleet.core.atomic import read_json, read_state_dict
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import (
    PidRecord,
    group_processes,
    kill_group,
    live_pid,
    process_tree,
    python_argv,
    recorded_group,
    signal_tree,
    spawn_detached,
    wait_gone,
    write_pidfile,
)
from relayfleet.fleet.model import Agent, Fleet

STOP_GRACE = 10.0
RUNNER_OUT_MAX = 1 << 20  # runner.out only holds start-up tracebacks; cut it back at each start


@dataclass
class LocalCredentials:
    """What a local agent's session gets: `env` (into `EngineSpec.env`) and files in its box.

    The box is a private 0700 directory outside `.fleet/` (`$XDG_RUNTIME_DIR/relayfleet/<fleet>/
    <agent>`, else `/tmp/relayfleet-<uid>/…`); `~/x` and `x` land there, `RELAYFLEET_BOX` names it.
    An absolute `as_file` is refused here: on the operator's own machine it would overwrite a real
    file (`~/.ssh/id_ed25519`). The repr shows names only.
    """

    env: dict[str, str] = field(default_factory=dict, repr=False)
    box: Path | None = None
    files: list[Path] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list, repr=False)

    def cleanup(self) -> None:
        """Remove the files written for this run (the runner calls it when it stops)."""
        for f in self.files:
            with contextlib.suppress(OSError):
                f.unlink()


def _check_local_files(agent: Agent) -> None:
    from relayfleet.core.errors import CredentialError

    for cred in agent.credentials:
        dest = cred.as_file
        if not dest:
            continue
        rel = dest[2:] if dest.startswith("~/") else dest
        if rel.startswith(("/", "~")) or ".." in Path(rel).parts or not rel.strip("/"):
            raise CredentialError(
                f"agent {agent.name!r}: credential {cred.name!r}: as_file {dest!r} must be a "
                "file path relative to the agent's box (or ~/…) for a local agent: it is "
                "written there, never over a file of this machine"
            )


def prepare_credentials(fleet: Fleet, agent: Agent, env: Mapping[str, str]) -> LocalCredentials:
    """Resolve everything `agent` declares and place its files; all or nothing (CredentialError).

    The runner calls this at start (both `gh fleet start` and `gh fleet up` run it), so the values
    are fresh at every start and live only in the runner's memory, the session's environment and
    the box files.
    """
    from relayfleet.backends.credentials import box_dir, place_files, resolve

    if agent.runtime.backend in ("ssh", "docker"):
        # The backend resolved them on the operator's machine and already delivered them (env
        # via envexec, files with their modes): re-resolving here would look for the sources
        # on the wrong machine. They are handed on to the session by name (its environment
        # is an allowlist: what is not declared does not reach it), and masked in its log.
        names = [c.as_env or c.from_env for c in agent.credentials if c.as_env or c.from_env]
        given = {n: env[n] for n in names if env.get(n)}
        return LocalCredentials(env=given, secrets=list(given.values()))
    _check_local_files(agent)
    resolved = resolve(agent, env)
    out = LocalCredentials(env=dict(resolved.env), secrets=resolved.values())
    if agent.credentials:
        out.box = box_dir(fleet.name, agent.name)
        out.env["RELAYFLEET_BOX"] = str(out.box)
    if resolved.files:
        assert out.box is not None
        out.files = place_files(resolved, out.box)
    return out


def runner_out(paths: FleetPaths, agent: str) -> Path:
    """stdout/stderr of the detached runner (start-up tracebacks land here, not in runner.log)."""
    return paths.agent_state(agent) / "runner.out"


def stop_tree(
    rec: PidRecord, *, grace: float = STOP_GRACE, extra: Sequence[PidRecord] = ()
) -> bool:
    """TERM the runner, wait `grace`, then KILL the runner and every process it left behind."""
    if not rec.alive():
        # The runner is gone, but a session it recorded may have outlived it (kill -9).
        leftovers = [r for r in extra if r.alive()]
        signal_tree(leftovers, signal.SIGKILL)
        wait_gone(leftovers)
        return False
    tree = process_tree(rec.pid) + [r for r in extra if r.alive()]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(rec.pid, signal.SIGTERM)  # the runner shuts its session down itself
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and rec.alive():
        time.sleep(0.05)
    # Anything still alive now (a hung runner, a session that ignored TERM, a stray tool).
    tree += [r for r in process_tree(rec.pid) if r not in tree]
    signal_tree(tree, signal.SIGKILL)
    wait_gone(tree)
    return True


def session_record(paths: FleetPaths, agent: str) -> list[PidRecord]:
    """What is alive of the session group the agent's runner.json records (and its leader)."""
    st = read_json(paths.runner_status(agent), {}) or {}
    group = recorded_group(st)
    out = group_processes(group) if group is not None else []
    pid, start = st.get("session_pid"), st.get("session_pid_start")
    if isinstance(pid, int) and start and all(r.pid != pid for r in out):
        out.append(PidRecord(pid=pid, start=str(start), started_at=0.0))
    return out


def reap_leftovers(paths: FleetPaths, agent: str) -> int:
    """Kill what a dead runner left of its session (runner.json records its group): how many.

    Only when the recorded runner is gone; a group whose id was recycled is never touched."""
    if live_pid(paths.runner_pid(agent)) is not None:
        return 0
    leftovers = [r for r in session_record(paths, agent) if r.alive()]
    if not leftovers:
        return 0
    st = read_json(paths.runner_status(agent), {}) or {}
    kill_group(recorded_group(st))
    rest = [r for r in leftovers if r.alive()]  # a session recorded by pid only (older runner)
    signal_tree(rest, signal.SIGKILL)
    wait_gone(rest)
    return len({r.pid for r in leftovers})


class LocalBackend:
    name = "local"

    def __init__(self, *, python: list[str] | None = None, grace: float = STOP_GRACE) -> None:
        self.python = python  # argv prefix to run the runner (default: this interpreter)
        self.grace = grace

    def start(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus:
        running = live_pid(paths.runner_pid(agent.name))
        if running is not None:
            return self._status(paths, agent, running, detail="already running")
        # A runner killed hard may have left its session running: never start a second one.
        reaped = reap_leftovers(paths, agent.name)
        # Fail here, in the operator's terminal, before anything starts: the runner resolves the
        # credentials again itself at start (it is the one that hands them to the session).
        from relayfleet.backends.credentials import resolve

        _check_local_files(agent)
        resolve(agent, os.environ)
        out = runner_out(paths, agent.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(out.parent, 0o700)  # session text lives here (the runner tightens the rest)
        with contextlib.suppress(OSError):
            if out.stat().st_size > RUNNER_OUT_MAX:
                os.replace(out, out.with_name(out.name + ".1"))
        argv = [
            *(self.python or python_argv()),
            "-m",
            "relayfleet.runner",
            str(paths.root),
            agent.name,
        ]
        env = dict(os.environ)
        env.pop("FLEET_ROOT", None)  # the runner is told its root explicitly
        try:
            pid = spawn_detached(argv, log=out, env=env, cwd=paths.root)
        except OSError as exc:
            raise BackendError(f"could not start the runner for {agent.name}: {exc}") from exc
        rec = write_pidfile(paths.runner_pid(agent.name), pid)
        st = self._status(paths, agent, rec, detail="started")
        if reaped:
            st.extra["reaped"] = reaped
        return st

    def stop(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> bool:
        rec = live_pid(paths.runner_pid(agent.name))
        if rec is None:  # the runner is gone; a session it left behind is not
            return reap_leftovers(paths, agent.name) > 0
        return stop_tree(rec, grace=self.grace, extra=session_record(paths, agent.name))

    def status(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus:
        rec = live_pid(paths.runner_pid(agent.name))
        return self._status(paths, agent, rec)

    def logs(self, paths: FleetPaths, fleet: Fleet, agent: Agent, lines: int) -> str:
        from relayfleet.backends.logtail import tail_lines

        return tail_lines(paths.session_log(agent.name), lines)

    def _status(
        self, paths: FleetPaths, agent: Agent, rec: PidRecord | None, detail: str = ""
    ) -> RunnerStatus:
        extra = read_state_dict(paths.runner_status(agent.name))
        if rec is None or extra.get("pid") not in (None, rec.pid):
            extra = {
                k: extra[k]
                for k in ("restarts", "last_delivered", "last_delivered_at", "error")
                if k in extra
            }
        return RunnerStatus(
            name=agent.name,
            running=rec is not None,
            backend=self.name,
            pid=rec.pid if rec else None,
            started_at=rec.started_at if rec else None,
            detail=detail or "[local]",
            extra=extra,
        )
