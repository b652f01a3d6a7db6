"""`gh fleet route` (the gate: watches + routes, checked), `route add|remove|test`, and
`watch add|remove`."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context
from relayfleet.cli.edit_flags import add_edit_flags, edit_options
from relayfleet.cli.output import report_edit

if TYPE_CHECKING:
    from relayfleet.fleet.model import Fleet

# flag dest -> match key (ARCHITECTURE 5.1)
MATCH_FLAGS = (
    ("watch", "watch"),
    ("repo", "repo"),
    ("kind", "kind"),
    ("label", "label"),
    ("author", "author"),
    ("state", "state"),
    ("title_contains", "title_contains"),
    ("association", "association"),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "route",
        help="show the gate (every watch and route), checked; add, remove or test routes",
        description="Without a subcommand: print every watch and route, then the problems "
        "(catch-all routes, routes to unknown agents or watches). Exit 1 on any error.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_show)
    rsub = p.add_subparsers(dest="route_cmd", metavar="<subcommand>", parser_class=type(p))

    add = rsub.add_parser("add", help="append a route to routes.toml")
    add.add_argument("--to", required=True, action="append", help="agent(s), comma-separated")
    _match_flags(add, "match items ")
    add.add_argument(
        "--untrusted",
        choices=("drop", "hold"),
        help="items by authors outside --association: drop (default) or hold in the quarantine",
    )
    add.add_argument("--no-commit", action="store_true", help="write the file but do not commit")
    add_edit_flags(add)
    add.set_defaults(func=run_add)

    rm = rsub.add_parser("remove", help="remove a route by its number in `gh fleet route`")
    rm.add_argument("index", type=int, help="1-based route number")
    rm.add_argument("--no-commit", action="store_true", help="write the file but do not commit")
    add_edit_flags(rm)
    rm.set_defaults(func=run_remove)

    test = rsub.add_parser(
        "test",
        help="which routes match an item, which agents would get it, and why",
        description="Give the item as --item FILE.json (a GitHub REST issue/PR/run JSON, or "
        '{"repo","kind","number","title","labels","author","association","state","watch"}), '
        "or with flags. Flags given with --item override its fields; state defaults to open. "
        "It works out which watches would fetch the item (kind, repo and filter, evaluated "
        "locally as the router does; @me is assumed to be you) and matches the routes for "
        "each, as the router would. --watch NAME tests one watch: it must exist and see the "
        "item.",
    )
    test.add_argument("--item", metavar="FILE.json", help="the item as JSON ('-' for stdin)")
    _match_flags(test, "the item's ", single=True)
    test.add_argument("--title", help="the item's title")
    test.add_argument("--number", type=int, help="the item's number")
    test.add_argument("--json", action="store_true", help="print JSON")
    test.set_defaults(func=run_test)

    w = sub.add_parser("watch", help="add or remove a watch (one GitHub query) in routes.toml")
    wsub = w.add_subparsers(dest="watch_cmd", metavar="<subcommand>", parser_class=type(p))
    w.set_defaults(func=lambda ctx, args: _need_sub(w, ctx))
    wa = wsub.add_parser("add", help="add a watch")
    wa.add_argument("name", help="a unique name for the watch (routes match on it)")
    wa.add_argument(
        "--kind",
        required=True,
        choices=("issues", "pulls", "runs", "notifications"),
        help="what to poll",
    )
    wa.add_argument("--repo", default="", help="owner/name")
    wa.add_argument("--filter", default="", help='gh-style flags, e.g. "--label bug --state open"')
    wa.add_argument("--poll-sec", type=int, help="seconds between polls (default 240)")
    wa.add_argument("--no-commit", action="store_true", help="write the file but do not commit")
    add_edit_flags(wa)
    wa.set_defaults(func=run_watch_add)
    wr = wsub.add_parser("remove", help="remove a watch (refuses while routes use it)")
    wr.add_argument("name", help="the watch to remove (see `gh fleet route`)")
    wr.add_argument(
        "--prune-routes", action="store_true", help="also remove the routes that use it"
    )
    wr.add_argument("--no-commit", action="store_true", help="write the file but do not commit")
    add_edit_flags(wr)
    wr.set_defaults(func=run_watch_remove)


def _match_flags(p: argparse.ArgumentParser, what: str, single: bool = False) -> None:
    many = "append"
    p.add_argument("--watch", action="store" if single else many, help=f"{what}watch name")
    p.add_argument("--repo", action="store" if single else many, help=f"{what}repo (owner/name)")
    p.add_argument("--kind", action="store" if single else many, help=f"{what}kind")
    p.add_argument("--label", action="append", help=f"{what}label (repeatable)")
    p.add_argument("--author", action="store" if single else many, help=f"{what}author login")
    p.add_argument("--state", action="store" if single else many, help=f"{what}state")
    if not single:
        p.add_argument("--title-contains", action="append", help="title substring")
    p.add_argument(
        "--association",
        action="store" if single else many,
        help=f"{what}author association (OWNER, MEMBER, COLLABORATOR, …)",
    )


def _need_sub(p: argparse.ArgumentParser, ctx: Context) -> int:
    from relayfleet.core.errors import UsageError

    raise UsageError(f"`{p.prog}` needs a subcommand (see `{p.prog} --help`)")


# -- show --------------------------------------------------------------------------------------


def route_problems(
    fleet: Fleet, texts: dict[str, str] | None = None, public: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The gate's problems (validate's routes.toml checks): dangling references are errors,
    catch-all routes, watches that feed no route and ungated routes on a public repository
    (`public`, as the router recorded it) are warnings. `texts` add line numbers."""
    from relayfleet.fleet.schema import ROUTES_TOML, display
    from relayfleet.fleet.validate import check_fleet

    mine = display(ROUTES_TOML)
    return [
        {"level": p.level, "message": p.message, "file": p.file, "line": p.line}
        for p in check_fleet(fleet, texts, public=public)
        if p.file == mine
    ]


def _p(level: str, message: str) -> dict[str, str]:
    return {"level": level, "message": message}


def gate_json(
    fleet: Fleet, texts: dict[str, str] | None = None, public: Collection[str] = ()
) -> dict[str, Any]:
    return {
        "watches": [
            {
                "name": w.name,
                "kind": w.kind,
                "repo": w.repo,
                "filter": w.filter,
                "poll_sec": w.poll_sec,
            }
            for w in fleet.watches
        ],
        "routes": [
            {
                "index": r.index,
                "match": {k: list(v) for k, v in r.match.items()},
                "to": list(r.to),
                "untrusted": r.untrusted,
            }
            for r in fleet.routes
        ],
        "problems": route_problems(fleet, texts, public),
    }


def run_show(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table
    from relayfleet.core.errors import ConfigError
    from relayfleet.fleet.fallback import committed_fleet
    from relayfleet.fleet.load import read_texts
    from relayfleet.fleet.schema import load_fleet_from_texts
    from relayfleet.fleet.semantic import describe_route

    texts = read_texts(ctx.paths)
    try:
        fleet = load_fleet_from_texts(texts)
    except ConfigError as exc:
        found = committed_fleet(ctx.paths, exc)  # show the gate `up` still runs
        if found is None:
            raise
        print(found.warning, file=ctx.err)
        fleet, texts = found.fleet, found.texts
    from relayfleet.core.visibility import public_repos

    gate = gate_json(fleet, texts, public_repos(ctx.paths))
    failed = any(p["level"] == "error" for p in gate["problems"])
    if args.json:
        print_json(ctx.out, gate)
        return 1 if failed else 0
    out = ctx.out
    print(f"Watches ({len(fleet.watches)})", file=out)
    if fleet.watches:
        rows = [(w.name, w.kind, w.repo, f"{w.poll_sec}s", w.filter) for w in fleet.watches]
        print_table(out, ("name", "kind", "repo", "poll", "filter"), rows)
    print(file=out)
    print(f"Routes ({len(fleet.routes)})", file=out)
    for r in fleet.routes:
        print(f"  #{r.index}  {describe_route(r)}", file=out)
    print(file=out)
    if not gate["problems"]:
        print("✓ no problems", file=out)
    for p in gate["problems"]:
        mark = "✗" if p["level"] == "error" else "!"
        where = f"{p['file']}:{p['line']}: " if p["line"] else ""
        print(f"{mark} {where}{p['level']}: {p['message']}", file=out)
    return 1 if failed else 0


# -- add / remove ------------------------------------------------------------------------------


def _match_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, dest, None) for dest, key in MATCH_FLAGS}


def run_add(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.edit import add_route

    result = add_route(
        ctx.paths,
        to=args.to,
        match=_match_from_args(args),
        untrusted=args.untrusted,
        commit=not args.no_commit,
        edit=edit_options(ctx, args),
        env=ctx.env,
    )
    return report_edit(ctx, result)


def run_remove(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.edit import remove_route

    return report_edit(
        ctx,
        remove_route(
            ctx.paths,
            args.index,
            commit=not args.no_commit,
            edit=edit_options(ctx, args),
            env=ctx.env,
        ),
    )


def run_watch_add(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.edit import add_watch

    result = add_watch(
        ctx.paths,
        args.name,
        kind=args.kind,
        repo=args.repo,
        filter=args.filter,
        poll_sec=args.poll_sec,
        commit=not args.no_commit,
        edit=edit_options(ctx, args),
        env=ctx.env,
    )
    return report_edit(ctx, result)


def run_watch_remove(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.edit import remove_watch

    result = remove_watch(
        ctx.paths,
        args.name,
        prune_routes=args.prune_routes,
        commit=not args.no_commit,
        edit=edit_options(ctx, args),
        env=ctx.env,
    )
    return report_edit(ctx, result)


# -- test --------------------------------------------------------------------------------------


def run_test(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.cli.route_explain import explain_item, item_from_args, print_explained

    fleet = ctx.load(fallback=True)
    item = item_from_args(ctx, args)
    report = explain_item(fleet, item, args.watch)
    if args.json:
        print_json(ctx.out, report)
    else:
        print_explained(ctx.out, report)
    return 0
