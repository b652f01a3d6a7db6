"""`gh fleet route test`: build an item from a JSON file or flags, and explain the routing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from relayfleet.core.errors import FleetError

if TYPE_CHECKING:
    from relayfleet.cli.context import Context
    from relayfleet.fleet.model import Fleet
    from relayfleet.router.items import Item

KINDS = ("issues", "pulls", "runs", "notifications")


def _read_json(ctx: Context, spec: str) -> Any:
    if spec == "-":
        text = sys.stdin.read()
        where = "stdin"
    else:
        path = Path(spec) if Path(spec).is_absolute() else ctx.cwd / spec
        where = spec
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FleetError(f"--item {spec}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FleetError(f"--item {spec}: cannot read it ({exc})") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FleetError(f"--item {where}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(obj, dict):
        raise FleetError(f"--item {where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _rest_kind(obj: dict[str, Any]) -> str | None:
    """The kind of a raw GitHub REST object, or None when it is our simple shape."""
    if "kind" in obj:
        return None
    if "subject" in obj and "reason" in obj:
        return "notifications"
    if "head_sha" in obj and "status" in obj:
        return "runs"
    if "number" in obj and ("user" in obj or "html_url" in obj or "node_id" in obj):
        return "pulls" if ("pull_request" in obj or "head" in obj) else "issues"
    return None


def item_from_args(ctx: Context, args: argparse.Namespace) -> Item:
    from relayfleet.router.items import item_from_dict, item_from_rest

    overrides: dict[str, Any] = {}
    for key in ("repo", "kind", "author", "state", "association", "watch", "title", "number"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "label", None):
        overrides["labels"] = [x.strip() for v in args.label for x in v.split(",") if x.strip()]
    if "repo" in overrides:
        from relayfleet.fleet.schema import REPO_RE

        if not REPO_RE.match(str(overrides["repo"])):
            raise FleetError(f"invalid --repo {overrides['repo']!r}: expected owner/name")
    if "kind" in overrides and overrides["kind"] not in KINDS:
        raise FleetError(f"invalid --kind {overrides['kind']!r} (kinds: {', '.join(KINDS)})")
    if "association" in overrides:
        overrides["association"] = str(overrides["association"]).upper()

    if args.item:
        obj = _read_json(ctx, args.item)
        kind = _rest_kind(obj)
        try:
            if kind is None:
                item = item_from_dict(obj)
            else:
                obj.setdefault("updated_at", "")
                item = item_from_rest(kind, str(overrides.get("repo", "")), obj)
        except (ValueError, TypeError) as exc:
            raise FleetError(f"--item {args.item}: {exc}") from exc
        fields = {f.name for f in dataclasses.fields(item)}
        changes: dict[str, Any] = {
            k: (tuple(v) if k == "labels" else v) for k, v in overrides.items()
        }
        return dataclasses.replace(item, **{k: v for k, v in changes.items() if k in fields})
    if not overrides:
        raise FleetError(
            "route test needs an item: --item FILE.json, or flags such as "
            "--repo owner/name --kind issues --label bug"
        )
    try:
        return item_from_dict(overrides)
    except (ValueError, TypeError) as exc:
        raise FleetError(f"route test: {exc}") from exc


def explain_item(fleet: Fleet, item: Item) -> dict[str, Any]:
    from relayfleet.router.match import explain, recipients, route_matches

    routes = []
    for r in fleet.routes:
        checks = [{"key": k, "ok": ok, "why": why} for k, ok, why in explain(r, item)]
        routes.append(
            {
                "index": r.index,
                "match": {k: list(v) for k, v in r.match.items()},
                "to": list(r.to),
                "matched": route_matches(r, item),
                "checks": checks,
            }
        )
    got = recipients(item, fleet.routes)
    unknown = sorted(a for a in got if a not in fleet.agents)
    return {
        "item": {
            "kind": item.kind,
            "repo": item.repo,
            "number": item.number,
            "title": item.title,
            "state": item.state,
            "labels": list(item.labels),
            "author": item.author,
            "association": item.association,
            "watch": item.watch,
        },
        "routes": routes,
        "recipients": sorted(got),
        "unknown_recipients": unknown,
    }


def print_explained(out: TextIO, report: dict[str, Any]) -> None:
    it = report["item"]
    ref = f"{it['kind']} {it['repo'] or '(no repo)'}#{it['number']}"
    print(f"Item: {ref} {json.dumps(it['title'], ensure_ascii=False)}", file=out)
    details = [
        f"state={it['state'] or '-'}",
        f"labels={','.join(it['labels']) or '-'}",
        f"author={it['author'] or '-'}",
        f"association={it['association'] or '-'}",
        f"watch={it['watch'] or '-'}",
    ]
    print("      " + " ".join(details), file=out)
    print(file=out)
    if not report["routes"]:
        print("No routes in routes.toml.", file=out)
    for r in report["routes"]:
        mark = "✓" if r["matched"] else "✗"
        verdict = "matches" if r["matched"] else "no match"
        print(f"{mark} route #{r['index']} → {', '.join(r['to'])}: {verdict}", file=out)
        for c in r["checks"]:
            print(f"    {'✓' if c['ok'] else '✗'} {c['key']}: {c['why']}", file=out)
    print(file=out)
    got = report["recipients"]
    print(f"Recipients: {', '.join(got) if got else '(none: no route matches)'}", file=out)
    if report["unknown_recipients"]:
        names = ", ".join(report["unknown_recipients"])
        print(f"! not agents of this fleet: {names}", file=out)
    if not it["watch"] and any("watch" in r["match"] for r in report["routes"]):
        print(
            "! the item came through no watch (--watch): routes on a watch cannot match", file=out
        )
