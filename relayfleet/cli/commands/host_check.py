"""`gh fleet host check <name>` and `gh fleet host trust <name>` (registered under `host`)."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context


def register_under(hsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chk = hsub.add_parser("check", help="reachable? python, workdir, tmux, runner version")
    chk.add_argument("name", help="the host to check (see `gh fleet host list`)")
    chk.add_argument("--json", action="store_true", help="print JSON")
    chk.set_defaults(func=run_check)

    tr = hsub.add_parser("trust", help="add an ssh host's key to the fleet's known_hosts")
    tr.add_argument("name", help="the host whose key to trust (see `gh fleet host list`)")
    tr.set_defaults(func=run_trust)


def run_check(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.hostcheck import check_host
    from relayfleet.cli.commands.doctor import MARKS
    from relayfleet.cli.output import print_json

    items = check_host(ctx.paths, ctx.load(), args.name)
    if args.json:
        print_json(ctx.out, [i.__dict__ for i in items])
    else:
        for i in items:
            print(f"{MARKS[i.status]} {i.name}: {i.detail}", file=ctx.out)
            for h in i.hints:
                print(f"    hint: {h}", file=ctx.out)
    return 1 if any(i.status == "fail" for i in items) else 0


def run_trust(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.backends.hostcheck import trust_host

    line, fingerprint = trust_host(ctx.paths, ctx.load(), args.name)
    print(f"trusted {args.name}: {fingerprint}", file=ctx.out)
    print(
        f"  (added to .fleet/state/known_hosts: {line.split(' ')[0]} {line.split(' ')[1]})",
        file=ctx.out,
    )
    return 0
