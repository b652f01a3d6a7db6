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
        ("stop", "stop agents' runners and their sessions (TERM, then KILL after a grace)"),
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

    paths = ctx.paths
    fleet = ctx.load()
    agents = select_agents(fleet, args.agents, args.all)
    rc = 0
    if args.verb in ("stop", "restart"):
        from concurrent.futures import ThreadPoolExecutor

        # In parallel: each stop may wait out a grace period; 20 agents should not take 20x.
        with ThreadPoolExecutor(max_workers=min(16, len(agents) or 1)) as pool:
            results = list(pool.map(lambda a: backend_for(a, fleet).stop(paths, fleet, a), agents))
        for a, was in zip(agents, results, strict=True):
            print(f"{a.name}: {'stopped' if was else 'not running'}", file=ctx.out)
    if args.verb in ("start", "restart"):
        started: list[tuple[Agent, RunnerStatus]] = []
        for a in agents:
            st = backend_for(a, fleet).start(paths, fleet, a)
            if st.detail == "already running":
                print(f"{a.name}: already running (pid {st.pid})", file=ctx.out)
            else:
                started.append((a, st))
        if args.no_wait:
            for a, st in started:
                print(f"{a.name}: started (pid {st.pid})", file=ctx.out)
            return 0
        rc = _wait_ready(ctx, paths, started, args.timeout)
    return rc


def _wait_ready(
    ctx: Context, paths: FleetPaths, started: list[tuple[Agent, RunnerStatus]], timeout: float
) -> int:
    """Wait until each new runner reports its session up (or died trying): fail loudly, early."""
    from relayfleet.core.atomic import read_json
    from relayfleet.core.procs import PidRecord

    deadline = time.monotonic() + timeout
    todo = {a.name: (a, st) for a, st in started}
    rc = 0
    while todo:
        for name, (_a, st) in list(todo.items()):
            facts = read_json(paths.runner_status(name), {}) or {}
            alive = st.pid is None or PidRecord(st.pid, None, 0).alive()
            if st.backend == "local" and not alive:
                print(f"{name}: the runner exited during start-up", file=ctx.err)
                _hint_logs(ctx, paths, name)
                rc = 1
                del todo[name]
            elif facts.get("pid") == st.pid and facts.get("session") == "blocked":
                # A dialog the runner must not answer: say which and how, rather than time out.
                print(f"{name}: {facts.get('error') or 'blocked by a dialog'}", file=ctx.err)
                rc = 1
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
            return 1
        time.sleep(0.05)
    return rc


def _hint_logs(ctx: Context, paths: FleetPaths, name: str) -> None:
    from relayfleet.backends.local import runner_out
    from relayfleet.backends.logtail import tail_lines

    for p in (runner_out(paths, name), paths.runner_log(name)):
        text = tail_lines(p, 5).strip()
        if text:
            for line in text.splitlines():
                print(f"  {p.name}: {line}", file=ctx.err)
    print(f"  hint: gh fleet logs {name} --runner", file=ctx.err)
