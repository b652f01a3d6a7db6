"""`gh fleet router start|stop|restart|status [--json]|run [--once [--dry-run]]`: the one GitHub
poller."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.core.paths import FleetPaths
    from relayfleet.fleet.model import Fleet
    from relayfleet.router.pipeline import RouterConfig
    from relayfleet.router.poller import Poller


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("router", help="the GitHub router: one poller for every watch")
    rsub = p.add_subparsers(dest="router_cmd", metavar="<start|stop|restart|status|run>")
    rsub.required = True
    rsub.add_parser("start", help="start the router in the background").set_defaults(func=run)
    rsub.add_parser("stop", help="stop the router").set_defaults(func=run)
    rsub.add_parser("restart", help="stop, then start the router").set_defaults(func=run)
    st = rsub.add_parser("status", help="running state, last cycle, API cost, broken watches")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=run)
    r = rsub.add_parser(
        "run",
        help="poll in the foreground (`--once`: one real cycle; `--once --dry-run`: only print)",
        description="Poll in the foreground until stopped. --once polls every stream once and "
        "delivers for real (inboxes, cursor and HTTP cache are written, like the router does). "
        "--once --dry-run polls every stream once and prints which agents would get which "
        "items, and through which watch and route, writing nothing at all.",
    )
    r.add_argument("--once", action="store_true", help="one cycle (delivers for real), then exit")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="with --once: print what would be delivered; write no inbox, cursor or cache",
    )
    r.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)
    r.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.router import daemon

    paths = ctx.paths
    cmd = args.router_cmd
    if cmd == "status":
        return _status(ctx, paths, json_out=args.json)
    if cmd == "stop":
        was = daemon.stop(paths)
        print("router stopped" if was else "router was not running", file=ctx.out)
        return 0
    if cmd in ("start", "restart"):
        from relayfleet.router.github import api_host, resolve_api_url, resolve_token

        # Everything that would stop the new router fails here, before a running one is stopped:
        # a broken config or filter, no GitHub token.
        fleet = ctx.load()
        router_config(fleet)
        resolve_token(ctx.env, api_host(resolve_api_url(ctx.env, fleet.api_url)))
        if fleet.webhook.enabled:
            from relayfleet.router.webhook_loop import read_secret

            read_secret(fleet.webhook.secret, ctx.env, paths.fleet)
        if cmd == "restart":
            daemon.stop(paths)
        pid = daemon.start(paths, ctx.env)
        print(f"router running (pid {pid}); log: {paths.rel(paths.router_log)}", file=ctx.out)
        return 0
    if args.dry_run:
        if not args.once:
            from relayfleet.core.errors import UsageError

            raise UsageError("--dry-run goes with --once: `gh fleet router run --once --dry-run`")
        return _dry_run(ctx, paths)
    return _run(ctx, paths, once=args.once, detached=args.detached_child)


def _status(ctx: Context, paths: FleetPaths, *, json_out: bool) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.router import daemon

    st = daemon.status(paths)
    if json_out:
        print_json(ctx.out, st)
        return 0
    ctx.out.write("\n".join(status_lines(st)) + "\n")
    return 0


def status_lines(st: dict[str, Any]) -> list[str]:
    """`router status` as aligned `label: value` lines (the figures of `--json`, readable)."""
    state = f"running (pid {st['pid']})" if st["running"] else "stopped"
    last = st["last_cycle"] or "never"
    if st["last_cycle"] and st.get("last_cycle_age_s") is not None:
        last += f" ({_age(st['last_cycle_age_s'])} ago)"
    rate = "-"
    if st["rate_limit_remaining"] is not None:
        rate = f"{st['rate_limit_remaining']}"
        if st.get("rate_limit_limit") is not None:
            rate += f" of {st['rate_limit_limit']}"
        if st.get("rate_limit_reset"):
            rate += f", resets {st['rate_limit_reset']}"
            if (st.get("rate_limit_reset_in_s") or 0) > 0:
                rate += f" (in {_age(st['rate_limit_reset_in_s'])})"
    paused = "no"
    if st.get("paused_until"):
        paused = f"{st['paused_until']} ({st.get('pause_reason') or 'rate limit'})"
    rows = [
        ("router", state),
        ("last cycle", last),
        ("cursor age", "no cursor yet" if st["cursor_age_s"] is None else _age(st["cursor_age_s"])),
        ("requests (1h)", f"{_n(st['requests_last_hour'])}"
         f" ({_n(st['not_modified_last_hour'])} were 304, free)"),
        ("rate limit left", rate),
        ("paused until", paused),
    ]  # fmt: skip
    governor = st.get("governor") or 1.0
    if governor > 1.0:
        rows.append(("cadence", f"stretched x{governor:g} to stay within the rate limit"))
    for key, b in sorted((st.get("backing_off") or {}).items()):
        why = f": {b['error']}" if b.get("error") else ""
        tries = f"{b.get('failures')} failure(s), next try {b.get('next_due') or '?'}"
        rows.append(("backing off", f"{key}: {tries}{why}"))
    if st.get("catching_up"):
        rows.append(("catching up", catching_up(st)))
    if st["pending"]:
        rows.append(("pending", f"{st['pending']} event(s) waiting for a transport"))
    if st.get("held"):
        rows.append(("quarantine", f"{st['held']} item(s) held (gh fleet quarantine list)"))
    if st["error"]:
        rows.append(("last error", st["error"]))
    if st.get("webhooks"):
        rows.append(("webhooks", st["webhooks"]["summary"]))
    broken = st["broken_watches"]
    rows.append(("broken watches", str(len(broken)) if broken else "none"))
    width = max(len(k) for k, _ in rows) + 2
    lines = [f"{k + ':':<{width}}{v}" for k, v in rows]
    lines += [f"  {w}: {why}" for w, why in sorted(broken.items())]
    return lines


def catching_up(st: dict[str, Any]) -> str:
    """`N pages behind (issues:acme/wms 12, …)`: lists not yet read down to their watermark."""
    streams = st.get("catching_up") or {}
    total = sum(streams.values())
    each = ", ".join(f"{k} {v}" for k, v in sorted(streams.items()))
    return f"{total} page{'s' if total != 1 else ''} behind ({each})"


def _age(s: float | None) -> str:
    if s is None:
        return "-"
    s = abs(s)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def _n(v: Any) -> str:
    return "-" if v is None else str(v)


def _refuse_invalid(paths: FleetPaths) -> None:
    from relayfleet.core.errors import ConfigError
    from relayfleet.fleet.validate import validate

    errors = [p for p in validate(paths) if p.level == "error"]
    if errors:
        raise ConfigError(str(errors[0]))


def router_config(fleet: Fleet) -> RouterConfig:
    """Fleet -> what the poller needs, with every watch's filter parsed (a bad one raises)."""
    from relayfleet.core.errors import ConfigError
    from relayfleet.fleet.filters import parse_filter
    from relayfleet.router.pipeline import QueryLike, RouterConfig

    queries: dict[str, QueryLike] = {}
    for w in fleet.watches:
        try:
            queries[w.name] = parse_filter(w.kind, w.filter)
        except ConfigError as exc:
            raise ConfigError(f"watch {w.name!r}: {exc}", file=".fleet/routes.toml",
                              hints=exc.hints) from exc  # fmt: skip
    return RouterConfig(
        watches=fleet.watches,
        routes=fleet.routes,
        agents=tuple(sorted(fleet.agents)),
        queries=queries,
        allow=fleet.commands.allow,
        command_repos=_command_repos(fleet),
    )


def _command_repos(fleet: Fleet) -> tuple[str, ...]:
    """Repos whose comments are polled for `/fleet` commands: those issue and PR watches see."""
    repos = {w.repo for w in fleet.watches if w.kind in ("issues", "pulls") and "*" not in w.repo}
    return tuple(sorted(repos))


def transport_factory(paths: FleetPaths, load_fleet: Any) -> Any:
    """agent -> its inbox transport, from the one inbox API (`backends.transports`): the same
    transport `tell`, `inbox` and hand-offs use, behind the durable outbox. One per agent for
    the router's life, so a file inbox is scanned incrementally, not re-read per event."""
    from relayfleet.backends.transports import DeliveringTransport, FileInbox
    from relayfleet.backends.transports import transport_for as backend_transport

    cache: dict[str, Any] = {}

    def transport_for(agent: str) -> Any:
        if agent not in cache:
            fleet = load_fleet()
            cache[agent] = (
                backend_transport(paths, fleet, agent)
                if agent in fleet.agents
                else DeliveringTransport(FileInbox(paths), paths)  # removed since: its file
            )
        return cache[agent]

    return transport_for


def build_poller(
    ctx: Context, paths: FleetPaths, holder: dict[str, Fleet], *, dry_run: bool = False
) -> Poller:
    """The poller, wired: token, API URL, HTTP cache, cursor, transports, outbox draining.
    `holder["fleet"]` is the current fleet (the loop swaps it on reload). `dry_run`: nothing
    that writes is wired in (no transports, no status file, no outbox draining)."""
    from relayfleet.core.visibility import visibility_path
    from relayfleet.fleet.model import ROUTER_MIN_POLL_SEC
    from relayfleet.router.cursor import Cursor
    from relayfleet.router.github import (
        GitHubClient,
        HttpCache,
        api_host,
        resolve_api_url,
        resolve_token,
        token_fingerprint,
    )
    from relayfleet.router.poller import Poller
    from relayfleet.router.quarantine import Quarantine, quarantine_path

    fleet = holder["fleet"]
    api_url = resolve_api_url(ctx.env, fleet.api_url)
    token = resolve_token(ctx.env, api_host(api_url))
    cache = HttpCache.load(paths.http_cache, token_fingerprint(token))
    client = GitHubClient(api_url, token, cache)

    def drain() -> None:
        from relayfleet.backends.relay import collect_relays
        from relayfleet.backends.transports import drain_outboxes

        # Remote runners' hand-offs first (they may queue), then everything that waits.
        collect_relays(paths, holder["fleet"])
        drain_outboxes(paths, holder["fleet"])

    def no_transport(agent: str) -> Any:
        raise AssertionError("a dry run delivers nothing")  # never reached: run_once(dry_run)

    return Poller(
        cadence=_cadence(ctx.env),
        client=client,
        cursor=Cursor.load(paths.cursor),
        transport_for=no_transport
        if dry_run
        else transport_factory(paths, lambda: holder["fleet"]),
        status_path=None if dry_run else paths.router_status,
        min_period=float(ctx.env.get("FLEET_ROUTER_MIN_PERIOD", str(ROUTER_MIN_POLL_SEC))),
        before_cycle=None if dry_run else drain,
        quarantine=Quarantine(quarantine_path(paths)),
        visibility_path=None if dry_run else visibility_path(paths),
    )


def _cadence(env: Any) -> Any:
    """FLEET_ROUTER_IDLE_STRETCH caps idle stretching (x poll_sec; 1 turns it off; default 4)."""
    from relayfleet.core.errors import ConfigError
    from relayfleet.router.schedule import Cadence

    raw = env.get("FLEET_ROUTER_IDLE_STRETCH", "4")
    try:
        factor = float(raw)
    except ValueError:
        raise ConfigError(f"FLEET_ROUTER_IDLE_STRETCH must be a number >= 1, not {raw!r}") from None
    return Cadence(idle_max_factor=max(1.0, factor))


def _dry_run(ctx: Context, paths: FleetPaths) -> int:
    """One cycle that writes nothing: no lock file, no log file, no inbox, cursor or cache."""
    from relayfleet.router import daemon

    fleet = ctx.load()
    config = router_config(fleet)
    daemon.setup_logging(paths, foreground=True)  # warnings to stderr, never into router.log
    poller = build_poller(ctx, paths, {"fleet": fleet}, dry_run=True)
    report = poller.run_once(config, force=True, dry_run=True)
    out = ctx.out
    print("dry run: nothing was written (no inbox, cursor or HTTP cache)", file=out)
    print(f"polled {len(report.polled)} stream(s), {len(report.not_modified)} unchanged (304); "
          f"would deliver {len(report.would)} event(s)", file=out)  # fmt: skip
    for w in report.would:
        what = f"{w.kind} {w.ref}" + (f" {w.change}" if w.change else "")
        print(f"  -> {w.agent}: {what} (watch {w.watch}, route #{w.route})", file=out)
    for _, ref in report.held:
        print(f"  would hold {ref}: its author is outside a route's gate (untrusted = \"hold\")",
              file=out)  # fmt: skip
    for name in report.snapshots:
        print(f"  watch {name}: first poll, a snapshot (its current items are not news)", file=out)
    catching = poller.catching_up()
    if catching:
        print(f"  catching up: {catching_up({'catching_up': catching})}", file=out)
    for err in report.errors:
        print(f"  ! {err}", file=ctx.err)
    if report.errors and not (report.polled or report.not_modified):
        from relayfleet.core.errors import GitHubError

        raise GitHubError(f"{len(report.errors)} stream(s) failed: {report.errors[0]}")
    return 0


def _run(ctx: Context, paths: FleetPaths, *, once: bool, detached: bool) -> int:
    from relayfleet.router import daemon

    fleet = ctx.load()
    config = router_config(fleet)
    with daemon.instance_lock(paths):
        # One cycle reports its outcome itself; its log lines go to router.log, not the terminal.
        daemon.setup_logging(paths, foreground=not detached and not once)
        holder = {"fleet": fleet}
        poller = build_poller(ctx, paths, holder)
        if once:
            hooks = _webhooks(ctx, paths, fleet, poller, listen=False)
            if hooks is not None:
                _on_wake(poller, hooks)(config)  # what a stopped router left in the spool
            report = poller.run_once(config, force=True)
            print(
                f"polled {len(report.polled)} stream(s), {len(report.not_modified)} unchanged "
                f"(304); delivered {len(report.delivered)} event(s)",
                file=ctx.out,
            )
            for agent, evt in report.delivered:
                print(f"  -> {agent}: {evt}", file=ctx.out)
            if poller.catching_up():
                behind = catching_up({"catching_up": poller.catching_up()})
                print(f"  catching up: {behind} (the next cycles read the rest)", file=ctx.out)
            for qid, ref in report.held:
                print(f"  held {ref} as {qid} (`gh fleet quarantine list`)", file=ctx.out)
            if report.errors and not (report.polled or report.not_modified):
                # Nothing got through (no token, GitHub unreachable, paused): the cycle failed.
                from relayfleet.core.errors import GitHubError

                first, *rest = (str(e) for e in report.errors)
                raise GitHubError(
                    f"{len(report.errors)} stream(s) failed: {first}",
                    hints=[*rest, f"details: {paths.rel(paths.router_log)}"],
                )
            for err in report.errors:  # some streams worked: the rest are warnings
                print(f"  ! {err}", file=ctx.err)
            return 0
        hooks = _webhooks(ctx, paths, fleet, poller)  # (a taken port fails before the PID file)
        daemon.mark_running(paths)

        def load() -> RouterConfig:
            fresh = ctx.load()
            _refuse_invalid(paths)  # the same verdict as `validate` and `up`: a route to an
            # unknown agent is refused too, so the last good config keeps delivering
            config = router_config(fresh)  # parse before swapping: a bad edit changes nothing
            holder["fleet"] = fresh
            return config

        stop = daemon.Stop()
        stop.install()
        try:
            return daemon.run_loop(
                poller,
                load,
                lambda: daemon.config_stamp(paths),
                stop=stop,
                wake=hooks.wake if hooks else None,
                on_wake=_on_wake(poller, hooks) if hooks else None,
            )
        finally:
            import contextlib

            if hooks is not None:
                hooks.stop()
            with contextlib.suppress(FileNotFoundError):
                paths.router_pid.unlink()


def _webhooks(
    ctx: Context, paths: FleetPaths, fleet: Fleet, poller: Poller, *, listen: bool = True
) -> Any:
    """The receiver when `[webhook] enabled` (listening unless `listen` is false: a one-shot
    cycle only drains the spool); None otherwise."""
    if not fleet.webhook.enabled:
        return None
    from relayfleet.core.atomic import read_state_dict
    from relayfleet.router.webhook_loop import WebhookIntake, read_secret

    secret = read_secret(fleet.webhook.secret, ctx.env, paths.fleet) if listen else b""
    prev = read_state_dict(paths.router_status).get("webhook")
    hooks = WebhookIntake(paths.router_state, fleet.webhook, secret,
                          previous=prev if isinstance(prev, dict) else None)  # fmt: skip
    if listen:
        try:
            hooks.start()
        except OSError as exc:
            from relayfleet.core.errors import BackendError

            raise BackendError(
                f"the webhook receiver cannot listen on {fleet.webhook.listen}: {exc.strerror}",
                hints=["another process has the port? change [webhook] listen in fleet.toml"],
            ) from None
    poller.reconcile_sec = float(fleet.webhook.reconcile_sec)
    poller.extra_status = hooks.status
    return hooks


def _on_wake(poller: Poller, hooks: Any) -> Any:
    """Drain the spool into the pipeline; streams of repos with healthy webhooks reconcile."""
    shown = [0.0]  # when a drain last wrote the status file

    def on_wake(config: RouterConfig) -> None:
        def deliver(intake: Any) -> None:
            poller.intake(intake.items, intake.comments, config, partial=intake.partial,
                          save=False)  # fmt: skip

        # One cursor save per batch, after the appends (they are idempotent by event id).
        if hooks.drain(deliver, lambda: poller.cursor.save(poller.clock())):
            now = poller.clock()
            if now - shown[0] >= 1.0:  # `status` sees the delivery now, not at the next cycle
                shown[0] = now
                poller.write_status()
        poller.reconcile_repos = hooks.healthy(w.repo for w in config.watches if w.repo)

    return on_wake
