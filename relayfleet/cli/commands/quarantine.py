"""`gh fleet quarantine list [--json] | release <id> | drop <id>`: items from authors outside a
route's gate, held (routes.toml `untrusted = "hold"`) until a person decides."""

from __future__ import annotations

import argparse
from typing import Any

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "quarantine",
        help="items from untrusted authors held for a decision: list, release, drop",
        description='A route with untrusted = "hold" keeps items whose author is outside its '
        "association gate here instead of dropping them. Release one to deliver it once to the "
        "agents it was held for (marked released by @operator), or drop it. A `/fleet ok` "
        "comment on the item by a trusted author ([commands] allow) releases it too.",
    )
    qsub = p.add_subparsers(dest="quarantine_cmd", metavar="<list|release|drop>")
    qsub.required = True
    ls = qsub.add_parser("list", help="what is held: author, association, item, agents, why")
    ls.add_argument("--json", action="store_true", help="print the held items as JSON")
    ls.add_argument("--all", action="store_true", help="also released and dropped items")
    ls.set_defaults(func=run)
    rel = qsub.add_parser("release", help="deliver a held item once to the agents it was for")
    rel.add_argument("id", help="the item's quarantine id (see `gh fleet quarantine list`)")
    rel.set_defaults(func=run)
    drop = qsub.add_parser("drop", help="discard a held item")
    drop.add_argument("id", help="the item's quarantine id (see `gh fleet quarantine list`)")
    drop.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.router.quarantine import Quarantine, quarantine_path

    store = Quarantine(quarantine_path(ctx.paths))
    if args.quarantine_cmd == "list":
        return _list(ctx, store, json_out=args.json, everything=args.all)
    if args.quarantine_cmd == "drop":
        entry = store.drop(args.id, "operator", now=_now())
        print(f"dropped {entry['id']} ({_ref(entry)})", file=ctx.out)
        return 0
    return _release(ctx, store, args.id)


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(entry: dict[str, Any]) -> str:
    from relayfleet.router.quarantine import summary

    return str(summary(entry)["ref"])


def _list(ctx: Context, store: Any, *, json_out: bool, everything: bool) -> int:
    from relayfleet.cli.output import print_json, print_table
    from relayfleet.router.quarantine import summary

    rows = [summary(e) for e in store.entries(None if everything else "held")]
    if json_out:
        print_json(ctx.out, rows)
        return 0
    if not rows:
        print("nothing held", file=ctx.out)
        return 0
    table = []
    for r in rows:
        hidden = ", ".join(f"{k} {v}" for k, v in r["hygiene"].items())
        title = r["title"] + (f" [hidden: {hidden}]" if hidden else "")
        author = f"@{r['author']} ({r['association'] or '?'})"
        table.append([r["id"], r["status"], r["ref"], author, title, ", ".join(r["agents"])])
    print_table(ctx.out, ["id", "status", "item", "author", "title", "for"], table)
    for r in rows:
        for why in r["why"]:
            print(f"  {r['id']}: {why}", file=ctx.out)
    return 0


def _release(ctx: Context, store: Any, entry_id: str) -> int:
    from relayfleet.backends.transports import transport_for

    fleet = ctx.load()
    entry = store.get(entry_id)
    gone = sorted(set(entry.get("agents") or {}) - set(fleet.agents))
    queued: list[str] = []

    def deliver(agent: str, event: dict[str, Any]) -> None:
        # The agent's own transport behind its durable outbox, as `tell` uses: an unreachable
        # host queues the event; its id is the router's, so it lands once whatever happens.
        if transport_for(ctx.paths, fleet, fleet.agent(agent)).append(agent, event) is False:
            queued.append(agent)

    done = store.release(entry_id, "operator", deliver, now=_now(), agents=fleet.agents)
    to = ", ".join(done.get("delivered_to") or []) or "no agent"
    print(f"released {done['id']} ({_ref(done)}) to {to}", file=ctx.out)
    for agent in queued:
        print(f"  {agent}: its inbox is unreachable right now; queued", file=ctx.out)
    for agent in gone:
        print(f"gh fleet: warning: {agent} is no longer in the fleet; not delivered", file=ctx.err)
    return 0
