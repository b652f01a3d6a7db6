"""What changed between two fleets, as lines a reviewer reads (pure).

    +agent wms-coder (coder)            ~agent x: model sonnet→opus
    +watch wms-prs (pulls acme/WMS)     ~route #2 to: +manager
    +host vm1 (ssh you@10.0.0.5)        ~fleet: name a→b

Agents, watches and hosts are matched by name. Routes have no names, so they are aligned as a
sequence (difflib): an inserted route in the middle reads as one `+route`, not as every later
route changing; a route edited in place reads as `~route #N`.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from relayfleet.fleet.model import Fleet, Route

ARROW = "→"


def diff_fleets(
    old: Fleet | None, new: Fleet, *, old_partial: bool = False, new_partial: bool = False
) -> list[str]:
    """Readable lines for everything that differs from `old` to `new` (old None: all is new).

    A partial fleet is one whose tree has agent or route files but no `fleet.toml` (a commit of
    `new-agent` after `init --no-commit`): its name and fleet-wide settings are unknown, so
    they are neither shown nor compared, and the fleet itself is only `+fleet` once its
    `fleet.toml` arrives."""
    blank = Fleet(name=new.name)
    lines: list[str] = []
    if new_partial:
        if old is not None and not old_partial:
            lines.append(f"-fleet {old.name} (fleet.toml removed)")
    elif old is None or old_partial:
        lines.append(f"+fleet {new.name}")
        lines += _settings(blank, new)
    else:
        lines += _settings(old, new)
    if old is None:
        old = blank
    lines += _named("host", old.hosts, new.hosts, _host_label)
    lines += _named("agent", old.agents, new.agents, lambda a: a.role)
    lines += _named(
        "watch",
        {w.name: w for w in old.watches},
        {w.name: w for w in new.watches},
        lambda w: f"{w.kind} {w.repo}",
    )
    lines += _routes(old.routes, new.routes)
    return lines


# -- values ------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A dataclass as dotted keys (runtime.backend, claude.endpoint.mode, …)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(_flatten(value, key + "."))
        elif f.name == "credentials" or (
            isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0])
        ):
            # A collection of named records: membership by name, then each record's own fields.
            out[key] = tuple(getattr(item, "name", "?") for item in value)
            for item in value:
                sub = getattr(item, "name", "")
                out.update(_flatten(item, f"{key}.{sub}."))
        elif isinstance(value, dict):
            continue  # nested registries are diffed on their own (hosts, agents)
        else:
            out[key] = value
    return out


def _changes(old: Any, new: Any, skip: tuple[str, ...] = ("name",)) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    parts: list[str] = []
    for key in list(a) + [k for k in b if k not in a]:
        if key in skip:
            continue
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if va is None or vb is None:
            continue  # a field of a record added or removed: its name's delta says it all
        if isinstance(va, tuple) and isinstance(vb, tuple):
            parts.append(f"{key}: {_set_delta(va, vb)}")
        else:
            parts.append(f"{key} {_show(va)}{ARROW}{_show(vb)}")
    return parts


def _set_delta(old: tuple[Any, ...], new: tuple[Any, ...]) -> str:
    added = [f"+{_show(v)}" for v in new if v not in old]
    removed = [f"-{_show(v)}" for v in old if v not in new]
    if not added and not removed:  # same members, new order
        return f"{_show(old)}{ARROW}{_show(new)}"
    return " ".join(added + removed)


# -- sections ----------------------------------------------------------------------------------


def _settings(old: Fleet, new: Fleet) -> list[str]:
    lines: list[str] = []
    fleet_parts = []
    for key in ("name", "api_url", "default_model", "default_backend"):
        va, vb = getattr(old, key), getattr(new, key)
        if va != vb:
            fleet_parts.append(f"{key} {_show(va)}{ARROW}{_show(vb)}")
    if fleet_parts:
        lines.append("~fleet: " + ", ".join(fleet_parts))
    gateway = _changes(old.gateway, new.gateway, skip=())
    if gateway:
        lines.append("~gateway: " + ", ".join(gateway))
    return lines


def _host_label(host: Any) -> str:
    where = host.host or "local engine"
    return f"{host.backend} {where}"


def _named(kind: str, old: dict[str, Any], new: dict[str, Any], label: Any) -> list[str]:
    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            lines.append(f"+{kind} {name} ({label(new[name])})")
        elif name not in new:
            lines.append(f"-{kind} {name}")
        elif old[name] != new[name]:
            parts = _changes(old[name], new[name])
            if parts:
                lines.append(f"~{kind} {name}: " + ", ".join(parts))
    return lines


def describe_route(route: Route) -> str:
    """`watch=wms-prs label=bug → wms-reviewer` (or `(catch-all) → …`)."""
    match = " ".join(f"{k}={','.join(_show(x) for x in v)}" for k, v in route.match.items())
    held = " (untrusted: hold)" if route.untrusted == "hold" else ""
    return f"{match or '(catch-all)'} {ARROW} {', '.join(route.to)}{held}"


def _route_key(route: Route) -> tuple[Any, ...]:
    return (tuple(sorted(route.match.items())), route.to, route.untrusted)


def _routes(old: tuple[Route, ...], new: tuple[Route, ...]) -> list[str]:
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(
        a=[_route_key(r) for r in old], b=[_route_key(r) for r in new], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        olds, news = list(old[i1:i2]), list(new[j1:j2])
        paired = min(len(olds), len(news)) if op == "replace" else 0
        for a, b in zip(olds[:paired], news[:paired], strict=True):
            lines.append(f"~route #{b.index} " + "; ".join(_route_changes(a, b)))
        for a in olds[paired:]:
            lines.append(f"-route #{a.index} ({describe_route(a)})")
        for b in news[paired:]:
            lines.append(f"+route #{b.index} ({describe_route(b)})")
    return lines


def _route_changes(old: Route, new: Route) -> list[str]:
    parts: list[str] = []
    if old.to != new.to:
        parts.append(f"to: {_set_delta(old.to, new.to)}")
    match: list[str] = []
    for key in list(old.match) + [k for k in new.match if k not in old.match]:
        va, vb = old.match.get(key), new.match.get(key)
        if va == vb:
            continue
        if va is None:
            match.append(f"+{key}={_show(_one(vb))}")
        elif vb is None:
            match.append(f"-{key}={_show(_one(va))}")
        else:
            match.append(f"{key} {_show(_one(va))}{ARROW}{_show(_one(vb))}")
    if match:
        parts.append("match: " + ", ".join(match))
    if old.untrusted != new.untrusted:
        parts.append(f"untrusted {old.untrusted}{ARROW}{new.untrusted}")
    return parts or ["to: reordered"]


def _one(values: tuple[str, ...] | None) -> Any:
    if values is None:
        return ""
    return values[0] if len(values) == 1 else values
