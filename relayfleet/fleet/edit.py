"""Edits of routes.toml (watches, routes) and fleet.toml (hosts) that keep the user's comments.

Each edit, under the fleet lock (`txn`): load the current fleet (a broken file stops here and is
never overwritten), check the request against it, change the text (routes.toml through
`toml_splice`, which re-parses only the entries around the change; fleet.toml as a whole tomlkit
document), re-check the whole fleet as it would be on disk and as HEAD will hold it, write the
file, then make one commit `fleet: <what changed>` (ARCHITECTURE 3.4) unless told not to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.errors import ConfigError, FleetError, NotFound
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import KINDS, MATCH_KEYS, ROUTER_MIN_POLL_SEC, Fleet, Route
from relayfleet.fleet.schema import ASSOCIATIONS, REPO_RE
from relayfleet.fleet.schema import WATCH_NAME_RE as NAME_RE
from relayfleet.fleet.txn import EditOptions

ITEM_STATES = ("open", "closed", "merged", "all")
HOST_BACKENDS = ("ssh", "docker")
HOST_OS = ("linux", "windows")
MIN_POLL_SEC = ROUTER_MIN_POLL_SEC  # the router's floor (fleet/model.py)
ROUTES = ".fleet/routes.toml"
FLEET = ".fleet/fleet.toml"


@dataclass(frozen=True)
class EditResult:
    """What an edit did: the commit subject, the files written, the commit (None: not made)."""

    message: str
    files: tuple[Path, ...]
    commit: str | None
    warnings: tuple[str, ...] = ()

    @property
    def sentence(self) -> str:
        """`fleet: add watch x (…)` -> `Added watch x (…)`, for the command's output."""
        text = self.message.removeprefix("fleet: ")
        verb, _, rest = text.partition(" ")
        done = {"add": "Added", "remove": "Removed"}.get(verb, verb[:1].upper() + verb[1:])
        return f"{done} {rest}".strip()


# -- checks on input ---------------------------------------------------------------------------


def check_name(what: str, name: str) -> None:
    if not NAME_RE.match(name or "") or name in (".", ".."):
        raise FleetError(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 100, starting with a letter or digit)"
        )


def check_repo(repo: str) -> None:
    if not REPO_RE.match(repo or ""):
        raise FleetError(f"invalid repo {repo!r}: expected owner/name")


def _values(raw: str | Sequence[str]) -> list[str]:
    """`--label a,b --label c` -> [a, b, c] (strings and repeated flags both accepted)."""
    items = [raw] if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for item in items:
        out += [v.strip() for v in item.split(",") if v.strip()]
    return out


def _store(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def normalize_match(fleet: Fleet, raw: Mapping[str, str | Sequence[str] | None]) -> dict[str, Any]:
    """Flag values -> the `[route.match]` table, checking each key against the fleet."""
    match: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or value == [] or value == "":
            continue
        if key not in MATCH_KEYS:
            raise FleetError(f"unknown match key {key!r} (known: {', '.join(MATCH_KEYS)})")
        # title_contains is a substring: commas in it are literal.
        vals = [value] if key == "title_contains" and isinstance(value, str) else _values(value)
        if key == "title_contains" and not isinstance(value, str):
            vals = [v for v in value if v]
        if key == "watch":
            known = {w.name for w in fleet.watches}
            for v in vals:
                if v not in known:
                    raise NotFound(
                        f"no watch named {v!r} (watches: {', '.join(sorted(known)) or 'none'})",
                        hints=["add it first: gh fleet watch add <name> --kind K --repo R"],
                    )
        elif key == "kind":
            for v in vals:
                if v not in KINDS:
                    raise FleetError(f"invalid kind {v!r} (kinds: {', '.join(KINDS)})")
        elif key == "repo":
            for v in vals:
                check_repo(v)
        elif key == "state":
            vals = [v.lower() for v in vals]
            for v in vals:
                if v not in ITEM_STATES:
                    raise FleetError(f"invalid state {v!r} (states: {', '.join(ITEM_STATES)})")
        elif key == "association":
            vals = [v.upper() for v in vals]
            for v in vals:
                if v not in ASSOCIATIONS:
                    raise FleetError(
                        f"invalid association {v!r} (one of: {', '.join(ASSOCIATIONS)})"
                    )
        match[key] = _store(vals)
    return match


def describe_match(match: Mapping[str, Any]) -> str:
    parts = [f"{k}={v if isinstance(v, str) else ','.join(v)}" for k, v in match.items()]
    return " ".join(parts) or "(catch-all)"


# -- the edit pipeline -------------------------------------------------------------------------


def _apply(
    paths: FleetPaths,
    target: Path,
    rel: str,
    change: Callable[[str, Fleet], tuple[str, str]],
    *,
    commit: bool,
    warnings: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    """Under the fleet lock: load the fleet and `target`'s text, let `change` edit it
    (returning the new text and the message), re-check the whole fleet as it would be (on disk,
    and as HEAD will hold it), write, and commit exactly `target` (`txn` has the why of each
    step)."""
    from relayfleet.core.atomic import write_atomic
    from relayfleet.fleet import txn
    from relayfleet.fleet.load import read_texts
    from relayfleet.fleet.schema import load_fleet_from_texts

    with txn.locked(paths, edit):
        key = target.relative_to(paths.fleet).as_posix()
        texts = read_texts(paths)
        fleet = load_fleet_from_texts(texts)  # a broken file stops here, never overwritten
        text, message = change(texts.get(key, ""), fleet)
        if text.endswith("\n\n"):  # a removal at the end leaves the blank line that preceded it
            text = text.rstrip("\n") + "\n"
        texts[key] = text
        load_fleet_from_texts(texts)  # raises ConfigError before anything is written
        pending: list[str] = []
        if commit:
            from relayfleet.fleet.gitops import preflight

            pending = txn.refuse_pending(paths, [target], edit)
            txn.check_head_after(paths, {key: text})
            preflight(paths.root)  # a commit bound to fail must not leave the file changed
        write_atomic(target, text)
        sha = txn.commit(paths, [target], message, pending, env) if commit else None
    return EditResult(
        message=txn.subject(message, pending),
        files=(target,),
        commit=sha,
        warnings=tuple(warnings),
    )


def _whole(
    rel: str, change: Callable[[Any, Fleet], str]
) -> Callable[[str, Fleet], tuple[str, str]]:
    """A change of the whole tomlkit document as a text change (for small files)."""
    from relayfleet.fleet.toml_io import dump_doc, parse_doc

    def on_text(text: str, fleet: Fleet) -> tuple[str, str]:
        doc = parse_doc(text, rel)
        message = change(doc, fleet)
        return dump_doc(doc), message

    return on_text


def _table(values: Mapping[str, Any]) -> Any:
    import tomlkit

    t = tomlkit.table()
    for k, v in values.items():
        if isinstance(v, Mapping):
            t[k] = _table(v)
        else:
            t[k] = v
    return t


# -- watches -----------------------------------------------------------------------------------


def add_watch(
    paths: FleetPaths,
    name: str,
    *,
    kind: str,
    repo: str,
    filter: str = "",
    poll_sec: int | None = None,
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    from relayfleet.fleet import toml_splice
    from relayfleet.fleet.filters import parse_filter

    check_name("watch", name)
    if kind not in KINDS:
        raise FleetError(f"invalid kind {kind!r} (kinds: {', '.join(KINDS)})")
    if repo or kind != "notifications":
        check_repo(repo)
    if filter:
        parse_filter(kind, filter)  # ConfigError naming the bad flag
    if poll_sec is not None and poll_sec < MIN_POLL_SEC:
        raise FleetError(
            f"--poll-sec must be at least {MIN_POLL_SEC} (got {poll_sec}): "
            f"the router never polls faster than {MIN_POLL_SEC} s"
        )

    def change(text: str, fleet: Fleet) -> tuple[str, str]:
        if fleet.watch(name) is not None:
            raise ConfigError(f"a watch named {name!r} already exists", file=ROUTES)
        values: dict[str, Any] = {"name": name, "kind": kind, "repo": repo}
        if filter:
            values["filter"] = filter
        if poll_sec is not None:
            values["poll_sec"] = poll_sec
        where = f"{kind} {repo}".strip()
        text = toml_splice.append(text, ROUTES, "watch", _table(values))
        return text, f"fleet: add watch {name} ({where})"

    return _apply(paths, paths.routes_toml, ROUTES, change, commit=commit, env=env, edit=edit)


def routes_using_watch(fleet: Fleet, name: str) -> list[Route]:
    return [r for r in fleet.routes if name in r.match.get("watch", ())]


def remove_watch(
    paths: FleetPaths,
    name: str,
    *,
    prune_routes: bool = False,
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    from relayfleet.fleet import toml_splice

    def change(text: str, fleet: Fleet) -> tuple[str, str]:
        if fleet.watch(name) is None:
            known = ", ".join(w.name for w in fleet.watches) or "none"
            raise NotFound(f"no watch named {name!r} (watches: {known})")
        users = routes_using_watch(fleet, name)
        if users and not prune_routes:
            listed = ", ".join(f"#{r.index}" for r in users)
            raise ConfigError(
                f"watch {name!r} is used by route {listed}",
                file=ROUTES,
                hints=[
                    "remove those routes first (gh fleet route remove <index>)",
                    "or pass --prune-routes to remove them (and the watch) together",
                ],
            )
        text, pruned = _prune_watch_from_routes(text, users, name)
        for i in reversed([i for i, w in enumerate(fleet.watches) if w.name == name]):
            text = toml_splice.remove(text, ROUTES, "watch", i)
        suffix = f" and route {', '.join(f'#{i}' for i in pruned)}" if pruned else ""
        return text, f"fleet: remove watch {name}{suffix}"

    return _apply(paths, paths.routes_toml, ROUTES, change, commit=commit, env=env, edit=edit)


def _prune_watch_from_routes(text: str, users: list[Route], name: str) -> tuple[str, list[int]]:
    """Drop `name` from the watch lists of `users`; remove routes left with no watch. Returns
    the new text and the 1-based indexes of the routes removed."""
    from relayfleet.fleet import toml_splice

    removed: list[int] = []
    for r in sorted(users, key=lambda r: -r.index):  # from the end: indexes stay valid
        kept = [w for w in r.match.get("watch", ()) if w != name]
        if not kept:
            text = toml_splice.remove(text, ROUTES, "route", r.index - 1)
            removed.append(r.index)
            continue

        def narrow(table: Any, kept: list[str] = kept) -> None:
            table["match"]["watch"] = _store(kept)

        text = toml_splice.update(text, ROUTES, "route", r.index - 1, narrow)
    return text, sorted(removed)


# -- routes ------------------------------------------------------------------------------------


def _public_watched(paths: FleetPaths, fleet: Fleet, table: Mapping[str, Any]) -> list[str]:
    """The public repositories (as the router recorded them) of the watches a new route with
    this match would take items from (issues, pulls and notifications watches)."""
    from relayfleet.core.visibility import public_repos

    public = public_repos(paths)
    if not public:
        return []
    names = set(_values(table.get("watch") or [])) or {w.name for w in fleet.watches}
    watched = [w for w in fleet.watches if w.name in names and w.kind != "runs"]
    return sorted({w.repo for w in watched if w.repo.lower() in public})


def add_route(
    paths: FleetPaths,
    *,
    to: Sequence[str],
    match: Mapping[str, str | Sequence[str] | None],
    untrusted: str | None = None,
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    """Append a route; `match` holds flag values (lists or comma-separated strings).
    `untrusted` ("drop" | "hold"): what happens to items from authors outside the gate."""
    from relayfleet.fleet import toml_splice

    agents = _values(to)
    if not agents:
        raise FleetError("a route needs at least one recipient (--to agent[,agent…])")
    warnings: list[str] = []

    def change(text: str, fleet: Fleet) -> tuple[str, str]:
        unknown = [a for a in agents if a not in fleet.agents]
        if unknown:
            known = ", ".join(sorted(fleet.agents)) or "none yet"
            raise NotFound(f"no agent named {', '.join(map(repr, unknown))} (agents: {known})")
        table = normalize_match(fleet, match)
        for route in fleet.routes:
            same = {k: tuple(_values(v)) for k, v in table.items()} == dict(route.match)
            if same and set(route.to) == set(agents):
                raise ConfigError(f"route #{route.index} already does that", file=ROUTES)
        if not table:
            warnings.append(
                "this route is a catch-all: every item of every watch goes to " + ", ".join(agents)
            )
        if untrusted == "hold" and "association" not in table:
            raise FleetError("--untrusted hold needs --association (the gate it holds for)")
        if "association" not in table:
            exposed = _public_watched(paths, fleet, table)
            if exposed:
                warnings.append(
                    f"no --association gate, and {', '.join(exposed)} is public: anyone's issue, "
                    "PR or comment reaches "
                    + ", ".join(agents)
                    + " (add --association OWNER,MEMBER,COLLABORATOR --untrusted hold)"
                )
        values: dict[str, Any] = {"to": list(dict.fromkeys(agents))}
        if untrusted:
            values["untrusted"] = untrusted
        values["match"] = table
        text = toml_splice.append(text, ROUTES, "route", _table(values))
        index = len(fleet.routes) + 1
        return text, f"fleet: add route #{index} ({describe_match(table)} → {', '.join(agents)})"

    return _apply(
        paths,
        paths.routes_toml,
        ROUTES,
        change,
        commit=commit,
        warnings=warnings,
        env=env,
        edit=edit,
    )


def remove_route(
    paths: FleetPaths,
    index: int,
    *,
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    from relayfleet.fleet import toml_splice

    def change(text: str, fleet: Fleet) -> tuple[str, str]:
        count = len(fleet.routes)
        if not 1 <= index <= count:
            raise NotFound(
                f"no route #{index} (there {'is' if count == 1 else 'are'} {count}; "
                "see `gh fleet route`)"
            )
        route = fleet.routes[index - 1]
        text = toml_splice.remove(text, ROUTES, "route", index - 1)
        plain = {k: list(v) for k, v in route.match.items()}
        to = ", ".join(route.to)
        return text, f"fleet: remove route #{index} ({describe_match(plain)} → {to})"

    return _apply(paths, paths.routes_toml, ROUTES, change, commit=commit, env=env, edit=edit)


# -- hosts -------------------------------------------------------------------------------------


def add_host(
    paths: FleetPaths,
    name: str,
    *,
    backend: str,
    host: str = "",
    port: int | None = None,
    workdir: str = "",
    os: str = "linux",
    key: str = "",
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    check_name("host", name)
    if backend not in HOST_BACKENDS:
        raise FleetError(f"invalid backend {backend!r} for a host (one of: ssh, docker)")
    if backend == "ssh" and not re.match(r"^([^@\s]+@)?[^@\s:/]+$", host or ""):
        raise FleetError(f"--host must be user@address for ssh (got {host!r})")
    if backend == "docker" and host and not re.match(r"^(unix|tcp|ssh|npipe)://\S+$", host):
        raise FleetError(f"--host for docker must be a DOCKER_HOST url (got {host!r})")
    if port is not None and not 1 <= port <= 65535:
        raise FleetError(f"--port must be 1-65535 (got {port})")
    if os not in HOST_OS:
        raise FleetError(f"invalid --os {os!r} (one of: {', '.join(HOST_OS)})")
    if key and ("BEGIN" in key or "\n" in key):
        raise FleetError("--key takes the path of a private key file, never the key itself")

    def change(doc: Any, fleet: Fleet) -> str:
        import tomlkit

        if name in fleet.hosts:
            raise ConfigError(f"a host named {name!r} already exists", file=FLEET)
        values: dict[str, Any] = {"backend": backend}
        if host:
            values["host"] = host
        if port is not None:
            values["port"] = port
        if workdir:
            values["workdir"] = workdir
        values["os"] = os
        if key:
            values["key"] = key
        if "hosts" not in doc:
            doc["hosts"] = tomlkit.table(is_super_table=True)
        doc["hosts"][name] = _table(values)
        return f"fleet: add host {name} ({backend} {host or 'local engine'})"

    return _apply(
        paths, paths.fleet_toml, FLEET, _whole(FLEET, change), commit=commit, env=env, edit=edit
    )


def agents_on_host(fleet: Fleet, name: str) -> list[str]:
    return sorted(a.name for a in fleet.agents.values() if a.runtime.host == name)


def remove_host(
    paths: FleetPaths,
    name: str,
    *,
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    edit: EditOptions | None = None,
) -> EditResult:
    def change(doc: Any, fleet: Fleet) -> str:
        if name not in fleet.hosts:
            known = ", ".join(sorted(fleet.hosts)) or "none"
            raise NotFound(f"no host named {name!r} (hosts: {known})")
        users = agents_on_host(fleet, name)
        if users:
            raise ConfigError(
                f"host {name!r} is used by agent {', '.join(users)}",
                file=FLEET,
                hints=["move or remove those agents first (gh fleet remove-agent <name>)"],
            )
        del doc["hosts"][name]
        if not len(doc["hosts"]):
            del doc["hosts"]
        return f"fleet: remove host {name}"

    return _apply(
        paths, paths.fleet_toml, FLEET, _whole(FLEET, change), commit=commit, env=env, edit=edit
    )
