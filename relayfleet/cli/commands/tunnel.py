"""`gh fleet tunnel open|status|close`: reverse SSH tunnels to hosts (the gateway at localhost)."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tunnel", help="reverse SSH tunnels so hosts reach the gateway")
    tsub = p.add_subparsers(dest="tunnel_cmd", metavar="<subcommand>", parser_class=type(p))
    p.set_defaults(func=run_status, json=False)

    op = tsub.add_parser("open", help="open (and keep open) a reverse tunnel to a host")
    op.add_argument("host", help="a host from `gh fleet host list`")
    op.add_argument(
        "--port",
        action="append",
        default=[],
        help="P or REMOTE:LOCAL: a local port to expose on the host (default: the gateway's)",
    )
    op.set_defaults(func=run_open)

    st = tsub.add_parser("status", help="show tunnels")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=run_status)

    cl = tsub.add_parser("close", help="close a host's tunnel")
    cl.add_argument("host", help="a host from `gh fleet host list`")
    cl.set_defaults(func=run_close)


def run_open(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.tunnel import open_tunnel

    st = open_tunnel(ctx.paths, ctx.load(), args.host, args.port or None)
    ports = ", ".join(f"localhost:{str(p).split(':')[0]}" for p in st["ports"])
    print(
        f"tunnel to {args.host} open (pid {st['pid']}): on the host, {ports} reaches this machine",
        file=ctx.out,
    )
    return 0


def run_status(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.tunnel import tunnel_status
    from relayfleet.cli.output import print_json, print_table

    fleet = ctx.load()
    rows = [
        tunnel_status(ctx.paths, h)
        for h, host in sorted(fleet.hosts.items())
        if host.backend == "ssh"
    ]
    if getattr(args, "json", False):
        print_json(ctx.out, rows)
        return 0
    print_table(
        ctx.out,
        ["host", "state", "pid", "ports", "reconnects", "last error"],
        [
            [
                r["host"],
                "connected" if r["connected"] else ("retrying" if r["running"] else "closed"),
                r["pid"] or "",
                ",".join(map(str, r["ports"])),
                r["reconnects"],
                r["last_error"],
            ]
            for r in rows
        ],
    )
    return 0


def run_close(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.tunnel import close_tunnel

    closed = close_tunnel(ctx.paths, args.host)
    if not closed:
        # A removed host's tunnel can still be closed; a typo must not read as success.
        from relayfleet.core.errors import NotFound

        hosts = ctx.load().hosts
        if args.host not in hosts:
            known = ", ".join(sorted(hosts)) or "none"
            raise NotFound(f"no host named {args.host!r} (hosts: {known})")
    print(f"tunnel to {args.host} {'closed' if closed else 'was not open'}", file=ctx.out)
    return 0
