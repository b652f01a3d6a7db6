"""`gh fleet host add|list|remove`: the hosts registry in fleet.toml (`[hosts.<name>]`)."""

from __future__ import annotations

import argparse
from typing import Any

from relayfleet.cli.context import Context
from relayfleet.cli.edit_flags import add_edit_flags, edit_options
from relayfleet.cli.output import report_edit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("host", help="the hosts that docker/ssh agents run on (fleet.toml)")
    hsub = p.add_subparsers(dest="host_cmd", metavar="<subcommand>", parser_class=type(p))
    p.set_defaults(func=run_list, json=False)

    add = hsub.add_parser("add", help="register a host")
    add.add_argument("name", help="a name for the host, used by `new-agent --host`")
    add.add_argument(
        "--backend", required=True, choices=("ssh", "docker"), help="how runners reach it"
    )
    add.add_argument("--host", default="", help="ssh: user@address; docker: a DOCKER_HOST url")
    add.add_argument("--port", type=int, help="ssh port (default 22)")
    add.add_argument("--workdir", default="", help="where runners live on the host")
    add.add_argument(
        "--os", default="linux", choices=("linux", "windows"), help="its OS (default linux)"
    )
    add.add_argument("--key", default="", help="path of the private key to use (never the key)")
    add.add_argument("--no-commit", action="store_true", help="write the file but do not commit")
    add_edit_flags(add)
    add.set_defaults(func=run_add)

    ls = hsub.add_parser("list", help="list hosts")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)

    rm = hsub.add_parser("remove", help="remove a host (refuses while agents use it)")
    rm.add_argument("name", help="the host to remove (see `gh fleet host list`)")
    rm.add_argument("--no-commit", action="store_true", help="write the file but do not commit")
    add_edit_flags(rm)
    rm.set_defaults(func=run_remove)

    # Further subcommands (`host check`, added with the backends) register here, next to these.
    from relayfleet.cli.commands.host_check import register_under

    register_under(hsub)


def hosts_json(fleet: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": h.name,
            "backend": h.backend,
            "host": h.host,
            "port": h.port,
            "workdir": h.workdir,
            "os": h.os,
        }
        for h in sorted(fleet.hosts.values(), key=lambda h: h.name)
    ]


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table

    fleet = ctx.load()
    rows = hosts_json(fleet)
    if args.json:
        print_json(ctx.out, rows)
        return 0
    if not rows:
        print(
            "No hosts. Add one: gh fleet host add <name> --backend ssh --host user@addr",
            file=ctx.out,
        )
        return 0
    users: dict[str, list[str]] = {}
    for a in fleet.agents.values():
        if a.runtime.host:
            users.setdefault(a.runtime.host, []).append(a.name)
    print_table(
        ctx.out,
        ("name", "backend", "host", "port", "workdir", "os", "agents"),
        [
            (
                h["name"],
                h["backend"],
                h["host"] or "-",
                h["port"],
                h["workdir"] or "-",
                h["os"],
                ", ".join(sorted(users.get(h["name"], []))) or "-",
            )
            for h in rows
        ],
    )
    return 0


def run_add(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.edit import add_host

    result = add_host(
        ctx.paths,
        args.name,
        backend=args.backend,
        host=args.host,
        port=args.port,
        workdir=args.workdir,
        os=args.os,
        key=args.key,
        commit=not args.no_commit,
        edit=edit_options(ctx, args),
        env=ctx.env,
    )
    return report_edit(ctx, result)


def run_remove(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.edit import remove_host

    return report_edit(
        ctx,
        remove_host(
            ctx.paths,
            args.name,
            commit=not args.no_commit,
            edit=edit_options(ctx, args),
            env=ctx.env,
        ),
    )
