"""`gh fleet host check <name>` and `gh fleet host trust <name>` (registered under `host`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.cli.commands.doctor import Doctor, Result


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


def doctor_check_hosts(doc: Doctor) -> list[Result]:
    """doctor: `host check` for every host in fleet.toml."""
    from relayfleet.backends.hostcheck import check_host
    from relayfleet.cli.commands.doctor import Result

    fleet = doc.fleet
    if fleet is None or doc.paths is None:
        return []
    out = []
    for name in sorted(fleet.hosts):
        for i in check_host(doc.paths, fleet, name):
            out.append(Result(i.status, f"host {name}: {i.name}", i.detail, i.hints))
    return out
