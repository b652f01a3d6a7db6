"""`gh fleet gateway start|stop|status|routes|stats|run`: the fleet's Claude gateway."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("gateway", help="the credential-swapping Claude gateway (docs/gateway.md)")
    gsub = p.add_subparsers(dest="gateway_cmd", metavar="<subcommand>", parser_class=type(p))
    p.set_defaults(func=run_status, json=False)

    start = gsub.add_parser("start", help="start the gateway in the background")
    start.add_argument("--listen", help="HOST:PORT to bind (default: [gateway] listen)")
    start.set_defaults(func=run_start)
    stop = gsub.add_parser("stop", help="stop the gateway")
    stop.set_defaults(func=run_stop)
    for name, func, text in (
        ("status", run_status, "is it running, where, with which kind of credential"),
        ("routes", run_routes, "sentinel -> upstream, per gateway-routed agent"),
        ("stats", run_stats, "requests and tokens per agent"),
    ):
        sp = gsub.add_parser(name, help=text)
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.set_defaults(func=func)
    fg = gsub.add_parser("run", help="run the gateway in the foreground (what `start` detaches)")
    fg.add_argument("--listen", help="HOST:PORT to bind (default: [gateway] listen)")
    fg.set_defaults(func=run_foreground)


def _secret(ctx: Context, fleet: Any) -> bytes:
    from relayfleet.core.sentinel import load_or_create_secret

    return load_or_create_secret(ctx.paths, ctx.env, fleet.gateway.secret_env)


def run_routes(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table
    from relayfleet.gateway.routes import routes_table

    fleet = ctx.load()
    rows = routes_table(fleet, _secret(ctx, fleet))
    if args.json:
        print_json(ctx.out, rows)
        return 0
    if not rows:
        print('No agent uses the gateway (set [claude.endpoint] mode = "gateway").', file=ctx.out)
        return 0
    print_table(
        ctx.out,
        ["agent", "sentinel", "upstream", "stages"],
        [[r["agent"], r["sentinel"], r["upstream"], ",".join(r["stages"]) or "-"] for r in rows],
    )
    return 0


def _status(ctx: Context) -> dict[str, Any]:
    from relayfleet.core.atomic import read_json
    from relayfleet.core.procs import live_pid
    from relayfleet.gateway.daemon import info_path, pid_path

    state = ctx.paths.state
    rec = live_pid(pid_path(state))
    info = read_json(info_path(state), default=None) if rec else None
    info = info if isinstance(info, dict) else {}
    return {
        "running": rec is not None,
        "pid": rec.pid if rec else None,
        "url": info.get("url"),
        "listen": info.get("listen"),
        "credential": info.get("credential"),
        "started_at": info.get("started_at"),
    }


def run_status(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json

    st = _status(ctx)
    if getattr(args, "json", False):
        print_json(ctx.out, st)
    elif st["running"]:
        print(f"gateway running at {st['url']} (pid {st['pid']}, {st['credential']})", file=ctx.out)
    else:
        print("gateway not running (start it with `gh fleet gateway start`)", file=ctx.out)
    return 0


def run_start(ctx: Context, args: argparse.Namespace) -> int:
    import sys
    import time

    from relayfleet.core.errors import BackendError
    from relayfleet.core.procs import spawn_detached
    from relayfleet.gateway.daemon import log_path, parse_listen

    st = _status(ctx)
    if st["running"]:
        print(f"gateway already running at {st['url']} (pid {st['pid']})", file=ctx.out)
        return 0
    fleet = ctx.load()
    _secret(ctx, fleet)  # made now, so `routes` and the daemon agree from the first second
    listen = args.listen or fleet.gateway.listen
    parse_listen(listen)
    env = dict(ctx.env)
    env["FLEET_ROOT"] = str(ctx.paths.root)
    if args.listen:
        env["RELAYFLEET_GATEWAY_LISTEN"] = args.listen
    log = log_path(ctx.paths.state)
    argv = [sys.executable, "-m", "relayfleet.gateway", str(ctx.paths.root)]
    pid = spawn_detached(argv, log=log, env=env, cwd=ctx.paths.root)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = _status(ctx)
        if st["running"] and st["pid"] == pid and st["url"]:
            print(f"gateway running at {st['url']} (pid {pid}, {st['credential']})", file=ctx.out)
            return 0
        time.sleep(0.05)
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
    raise BackendError("the gateway did not start", hints=[*tail, f"see {log}"])


def run_stop(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.core.procs import live_pid, stop_group
    from relayfleet.gateway.daemon import pid_path

    rec = live_pid(pid_path(ctx.paths.state))
    if rec is None or not stop_group(rec):
        print("gateway not running", file=ctx.out)
        return 0
    print(f"gateway stopped (pid {rec.pid})", file=ctx.out)
    return 0


def run_stats(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table
    from relayfleet.core.atomic import read_json
    from relayfleet.gateway.daemon import stats_path

    data = read_json(stats_path(ctx.paths.state), default=None) or {"rejected": 0, "agents": {}}
    if args.json:
        print_json(ctx.out, data)
        return 0
    rows = [
        [name, r["requests"], r["errors"], r["input_tokens"], r["output_tokens"]]
        for name, r in sorted(data.get("agents", {}).items())
    ]
    print_table(ctx.out, ["agent", "requests", "errors", "input", "output"], rows)
    print(f"rejected (unknown key): {data.get('rejected', 0)}", file=ctx.out)
    return 0


def run_foreground(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.gateway.daemon import run

    fleet = ctx.load()
    secret = _secret(ctx, fleet)
    listen = args.listen or ctx.env.get("RELAYFLEET_GATEWAY_LISTEN") or fleet.gateway.listen
    return run(ctx.paths.state, listen, FleetRoutes(ctx, secret), ctx.env)


class FleetRoutes:
    """The routes of the fleet on disk, reloaded (at most once a second) when a file changes.

    A broken edit keeps the last good table: the gateway never drops every route mid-edit.
    """

    def __init__(self, ctx: Context, secret: bytes) -> None:
        self._ctx, self._secret = ctx, secret
        self._key: tuple[Any, ...] | None = None
        self._checked = 0.0
        self._routes: list[Any] = []

    def _stamp(self) -> tuple[Any, ...]:
        paths = self._ctx.paths
        files = [paths.fleet_toml, *sorted(Path(paths.agents).glob("*/agent.toml"))]
        out = []
        for f in files:
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                continue
        return tuple(out)

    def __call__(self) -> list[Any]:
        import logging
        import time

        from relayfleet.core.errors import FleetError
        from relayfleet.gateway.routes import build_routes

        now = time.monotonic()
        if self._key is not None and now - self._checked < 1.0:
            return self._routes
        self._checked = now
        key = self._stamp()
        if key != self._key:
            try:
                self._routes = build_routes(self._ctx.load(), self._secret)
            except FleetError as exc:
                logging.getLogger("relayfleet.gateway").warning("routes not reloaded: %s", exc)
            self._key = key
        return self._routes
