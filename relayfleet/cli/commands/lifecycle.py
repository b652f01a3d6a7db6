"""`gh fleet start|stop|restart [agent …|--all]`: run agents' runners through their backends."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from relayfleet.cli.context import Context

if TYPE_CHECKING:  # typing only: command modules stay light at import time
    from relayfleet.backends.base import RunnerStatus
    from relayfleet.core.paths import FleetPaths
    from relayfleet.fleet.model import Agent

START_TIMEOUT = 60.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for verb, help_ in (
        ("start", "start agents' runners (detached; a running one is left alone)"),
        (
            "stop",
            "stop agents' runners and their sessions (TERM, then KILL after a grace); "
            "while `gh fleet up` runs, it holds them stopped until `start`",
        ),
        ("restart", "stop, then start agents' runners (the session resumes its conversation)"),
    ):
        p = sub.add_parser(verb, help=help_)
        p.add_argument("agents", nargs="*", metavar="agent", help="agents to act on (or --all)")
        p.add_argument("--all", action="store_true", help="every agent of the fleet")
        if verb != "stop":
            p.add_argument(
                "--no-wait", action="store_true", help="return without waiting for the session"
            )
            p.add_argument("--timeout", type=float, default=START_TIMEOUT, help=argparse.SUPPRESS)
        p.set_defaults(func=run, verb=verb)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.registry import backend_for
    from relayfleet.cli.agent_facts import select_agents
    from relayfleet.cli.up_requests import start_via_up, stop_via_up
    from relayfleet.core.errors import FleetError
    from relayfleet.up.control import managed, running_up

    paths = ctx.paths
    fleet = ctx.load()
    agents = select_agents(fleet, args.agents, args.all)
    total = len(agents)
    # Every agent is tried: one that cannot start (no docker engine, a credential error) must not
    # keep the others down. Failures are reported per agent and counted at the end.
    failed: dict[str, FleetError] = {}

    def report(name: str, exc: FleetError) -> None:
        if total == 1:
            raise exc  # one agent: its error is the command's error
        failed[name] = exc
        print(f"{name}: {exc}", file=ctx.err)
        for hint in exc.hints:
            print(f"  hint: {hint}", file=ctx.err)

    up = running_up(paths)
    # What a running `gh fleet up` manages is asked of it (it would restart what we stop).
    via_up = [a.name for a in agents if up and a.name in managed(up)]
    agents = [a for a in agents if a.name not in via_up]
    if up and via_up and args.verb in ("stop", "restart"):
        stop_via_up(paths, up, via_up, ctx.out)
        up = running_up(paths) or up
    if args.verb in ("stop", "restart") and agents:
        from concurrent.futures import ThreadPoolExecutor

        def stop(a: Agent) -> bool | FleetError:
            try:
                return backend_for(a, fleet).stop(paths, fleet, a)
            except FleetError as exc:
                return exc

        # In parallel: each stop may wait out a grace period; 20 agents should not take 20x.
        with ThreadPoolExecutor(max_workers=min(16, len(agents) or 1)) as pool:
            results = list(pool.map(stop, agents))
        for a, was in zip(agents, results, strict=True):
            if isinstance(was, FleetError):
                report(a.name, was)
            else:
                print(f"{a.name}: {'stopped' if was else 'not running'}", file=ctx.out)
    up_rc = 0
    if up and via_up and args.verb in ("start", "restart"):
        up_rc = start_via_up(
            paths, up, via_up, ctx.out, ctx.err, wait=not args.no_wait, timeout=args.timeout
        )
    if args.verb in ("start", "restart") and agents:
        started: list[tuple[Agent, RunnerStatus]] = []
        for a in agents:
            if a.name in failed:
                continue  # a runner that would not stop is not started twice
            backend = backend_for(a, fleet)
            if hasattr(backend, "say"):  # remote installs report progress on stderr
                backend.say = lambda line: print(line, file=ctx.err, flush=True)
            try:
                st = backend.start(paths, fleet, a)
            except FleetError as exc:
                report(a.name, exc)
                continue
            reaped = st.extra.get("reaped")
            if reaped:
                print(
                    f"{a.name}: killed {reaped} process(es) left by its previous session",
                    file=ctx.out,
                )
            # Every backend ends the detail with "already running" for a runner it left alone.
            if st.detail.endswith("already running"):
                print(f"{a.name}: already running (pid {st.pid})", file=ctx.out)
            else:
                started.append((a, st))
        if args.no_wait:
            for a, st in started:
                print(f"{a.name}: started (pid {st.pid})", file=ctx.out)
        else:
            for name in _wait_ready(ctx, paths, started, args.timeout):
                failed.setdefault(name, FleetError("the session did not come up"))
    if not failed:
        return up_rc
    if total == 1:
        return 1  # the agent's own line already said why
    raise FleetError(f"{len(failed)} of {total} agents failed: {', '.join(sorted(failed))}")


def _wait_ready(
    ctx: Context, paths: FleetPaths, started: list[tuple[Agent, RunnerStatus]], timeout: float
) -> list[str]:
    """Wait until each new runner reports its session up (or died trying): fail loudly, early.
    Returns the names that did not come up."""
    from relayfleet.core.atomic import read_json
    from relayfleet.core.procs import PidRecord

    deadline = time.monotonic() + timeout
    todo = {a.name: (a, st) for a, st in started}
    failed: list[str] = []
    while todo:
        for name, (_a, st) in list(todo.items()):
            facts = read_json(paths.runner_status(name), {}) or {}
            alive = st.pid is None or PidRecord(st.pid, None, 0).alive()
            if st.backend == "local" and not alive:
                print(f"{name}: the runner exited during start-up", file=ctx.err)
                _hint_logs(ctx, paths, name)
                failed.append(name)
                del todo[name]
            elif facts.get("pid") == st.pid and facts.get("session") == "blocked":
                # A dialog the runner must not answer: say which and how, rather than time out.
                print(f"{name}: {facts.get('error') or 'blocked by a dialog'}", file=ctx.err)
                failed.append(name)
                del todo[name]
            elif (facts.get("pid") == st.pid and facts.get("session") == "up") or (
                st.backend != "local" and st.running
            ):
                how = facts.get("delivery") or st.detail
                print(f"{name}: started (pid {st.pid}, delivery {how})", file=ctx.out)
                del todo[name]
        if not todo:
            break
        if time.monotonic() > deadline:
            for name in todo:
                print(f"{name}: started, but the session is not up yet", file=ctx.err)
                _hint_logs(ctx, paths, name)
                failed.append(name)
            break
        time.sleep(0.05)
    return failed


def _hint_logs(ctx: Context, paths: FleetPaths, name: str) -> None:
    from relayfleet.backends.local import runner_out
    from relayfleet.backends.logtail import tail_lines

    for p in (runner_out(paths, name), paths.runner_log(name)):
        text = tail_lines(p, 5).strip()
        if text:
            for line in text.splitlines():
                print(f"  {p.name}: {line}", file=ctx.err)
    print(f"  hint: gh fleet logs {name} --runner", file=ctx.err)
