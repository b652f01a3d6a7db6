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


def _repo_of(obj: dict[str, Any]) -> str:
    """owner/name of a raw REST object: its repository, its base repo, or its API URL."""
    for holder in (obj.get("repository"), (obj.get("base") or {}).get("repo")):
        if isinstance(holder, dict) and isinstance(holder.get("full_name"), str):
            return str(holder["full_name"])
    for key in ("repository_url", "url"):
        parts = str(obj.get(key) or "").split("/repos/", 1)
        if len(parts) == 2 and parts[1].count("/") >= 1:
            owner, name = parts[1].split("/")[:2]
            return f"{owner}/{name}"
    return ""


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
                repo = str(overrides.get("repo") or _repo_of(obj))
                item = item_from_rest(kind, repo, obj)
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


_STREAM_OF = {"issues": "issues", "pulls": "issues", "runs": "runs",
              "notifications": "notifications"}  # fmt: skip
_ME_FIELDS = ("assignee", "author", "mention", "review_requested", "involves", "user")


def _offline(query: Any) -> Any:
    """The query with its `@me` conditions dropped: without GitHub the login is not known, so
    `route test` assumes the item is yours (it says so)."""
    relaxed = {f: "" for f in _ME_FIELDS if getattr(query, f, "") == "@me"}
    return dataclasses.replace(query, **relaxed) if relaxed else query


def watch_sees(w: Any, item: Item) -> tuple[bool, str]:
    """Whether watch `w` fetches `item`, judged as the router does: its stream (kind and repo),
    then its filter evaluated locally. Returns (fetches, why)."""
    from relayfleet.core.errors import ConfigError
    from relayfleet.fleet.filters import parse_filter

    try:
        query = parse_filter(w.kind, w.filter)
    except ConfigError as exc:
        return False, f"its filter does not parse: {exc.detail}"
    why: list[str] = []
    same_stream = _STREAM_OF.get(w.kind) == _STREAM_OF.get(item.kind)
    if not same_stream or (w.kind != item.kind and getattr(query, "is_pr", None) is None):
        article = "an" if w.kind[0] in "aeiou" else "a"
        why.append(f"{article} {w.kind} watch never sees {item.kind}")
    where = item.repo or "(no repo)"
    if w.kind != "notifications" and w.repo.lower() != item.repo.lower():
        why.append(f"it watches {w.repo}, the item is in {where}")
    if (
        w.kind == "notifications"
        and w.repo not in ("", "*")
        and w.repo.lower() != item.repo.lower()
    ):
        why.append(f"it takes notifications of {w.repo} only, the item is in {where}")
    if why:
        return False, "; ".join(why)
    if not _offline(query).matches(item):
        return False, f"its filter {w.filter!r} does not keep the item"
    note = " (@me assumed to be you)" if "@me" in w.filter else ""
    shown = f"filter {w.filter!r}" if w.filter else "no filter"
    return True, f"{w.kind} {w.repo or '*'}, {shown} keeps it{note}"


def explain_item(fleet: Fleet, item: Item, watch: str | None = None) -> dict[str, Any]:
    """Which watches fetch `item`, which routes match each sighting, and who gets it: the
    router's own order (per agent the first watch, then the first route, that sends it)."""
    from relayfleet.router.match import explain, route_matches
    from relayfleet.router.quarantine import held_by

    watch = watch or item.watch or None
    seen = [(w, *watch_sees(w, item)) for w in fleet.watches]
    if watch is not None:
        named = [row for row in seen if row[0].name == watch]
        if not named:
            known = ", ".join(w.name for w in fleet.watches) or "none"
            raise FleetError(f"no watch named {watch!r} (known: {known})")
        _, ok, why = named[0]
        if not ok:
            raise FleetError(
                f"watch {watch!r} cannot see {item.kind} {item.repo or '(no repo)'}"
                f"#{item.number}: {why}",
                hints=["leave out --watch to see which watches fetch it"],
            )
        seen = named
    fetching = [w.name for w, ok, _ in seen if ok]
    sightings = [dataclasses.replace(item, watch=name) for name in fetching]
    routes = []
    held_to: set[str] = set()
    deliveries: dict[str, dict[str, Any]] = {}
    for r in fleet.routes:
        hit = next((s for s in sightings if route_matches(r, s)), None)
        hold = None if hit else next((s for s in sightings if held_by(r, s)), None)
        via = hit or hold
        shown = via or (sightings[0] if sightings else item)
        checks = [{"key": k, "ok": ok, "why": why} for k, ok, why in explain(r, shown)]
        routes.append({"index": r.index, "match": {k: list(v) for k, v in r.match.items()},
                       "to": list(r.to), "matched": hit is not None, "held": hold is not None,
                       "watch": via.watch if via else None, "checks": checks})  # fmt: skip
        if hold is not None:
            held_to.update(r.to)
    for s in sightings:  # per agent: its first watch, then that watch's first route
        for r in fleet.routes:
            if route_matches(r, s):
                for agent in r.to:
                    deliveries.setdefault(agent, {"agent": agent, "watch": s.watch,
                                                  "route": r.index})  # fmt: skip
    got = sorted(deliveries)
    unknown = sorted(a for a in got if a not in fleet.agents)
    held = sorted(held_to - set(got))
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
            "watch": watch or "",
        },
        "watches": [{"name": w.name, "fetches": ok, "why": why} for w, ok, why in seen],
        "fetched_by": fetching,
        "routes": routes,
        "recipients": got,
        "deliveries": [deliveries[a] for a in got],
        "unknown_recipients": unknown,
        "held_for": held,  # untrusted = "hold": the quarantine keeps it for these agents
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
    ]
    print("      " + " ".join(details), file=out)
    print(file=out)
    for w in report["watches"]:
        mark = "✓" if w["fetches"] else "✗"
        verdict = "fetches it" if w["fetches"] else "does not fetch it"
        print(f"{mark} watch {w['name']} {verdict}: {w['why']}", file=out)
    if not report["watches"]:
        print("No watches in routes.toml: the router fetches nothing.", file=out)
    print(file=out)
    if not report["routes"]:
        print("No routes in routes.toml.", file=out)
    for r in report["routes"]:
        mark = "✓" if r["matched"] else "✗"
        verdict = f"matches (via watch {r['watch']})" if r["matched"] else "no match"
        if r.get("held"):
            verdict = 'held: the author is outside its gate (untrusted = "hold")'
        print(f"{mark} route #{r['index']} → {', '.join(r['to'])}: {verdict}", file=out)
        for c in r["checks"]:
            print(f"    {'✓' if c['ok'] else '✗'} {c['key']}: {c['why']}", file=out)
    print(file=out)
    if report["deliveries"]:
        for d in report["deliveries"]:
            print(f"  {d['agent']}: via watch {d['watch']}, route #{d['route']}", file=out)
    if not report["fetched_by"]:
        print("! no watch fetches this item, so the router never delivers it", file=out)
    if report["unknown_recipients"]:
        names = ", ".join(report["unknown_recipients"])
        print(f"! not agents of this fleet: {names}", file=out)
    got = report["recipients"]
    print(f"Recipients: {', '.join(got) if got else '(none)'}", file=out)
    if report.get("held_for"):
        print(f"Held for: {', '.join(report['held_for'])} (until released: "
              "`gh fleet quarantine`, or a trusted `/fleet ok`)", file=out)  # fmt: skip
