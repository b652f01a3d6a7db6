"""`init`, `new-agent`, `remove-agent`: create and delete fleet config from templates.

Each function holds the fleet lock from its first read to its commit (`txn`), checks everything
first (names, roles, hosts, a config that parses, pending edits, the tree HEAD will hold), then
writes files atomically, then makes ONE commit of exactly the paths it changed. It returns the
paths it changed.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import write_atomic
from relayfleet.core.errors import FleetError, NotFound
from relayfleet.core.paths import FleetPaths, package_dir
from relayfleet.fleet import txn
from relayfleet.fleet.model import BACKENDS, ENDPOINT_MODES, ROLES, TRANSPORTS, Agent, Fleet
from relayfleet.fleet.schema import REPO_RE
from relayfleet.fleet.txn import EditOptions

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
FIRST_PORT = 8801
TRUSTED = ["OWNER", "MEMBER", "COLLABORATOR"]  # the prompt-injection gate on starter routes


def templates_dir() -> Path:
    return package_dir() / "templates"


def _toml_value(value: Any) -> str:
    import tomlkit

    text: str = tomlkit.item(value).as_string()
    return text


def render(text: str, values: dict[str, Any], *, toml: bool) -> str:
    """Fill `{{key}}` (TOML-encoded in .toml templates) and `{{key_bare}}` (plain, one line)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key.endswith("_bare"):
            return " ".join(str(values[key[:-5]]).split())
        value = values[key]
        return _toml_value(value) if toml else str(value)

    return re.sub(r"\{\{([a-z_]+)\}\}", sub, text)


def _preflight(paths: FleetPaths, commit: bool) -> None:
    """Fail before writing when the commit is bound to fail (a held index.lock)."""
    if commit:
        from relayfleet.fleet.gitops import preflight

        preflight(paths.root)


# -- init -------------------------------------------------------------------------------------


def init_fleet(
    cwd: Path,
    name: str | None = None,
    force: bool = False,
    commit: bool = True,
    edit: EditOptions | None = None,
) -> Path:
    """Create `.fleet/` at the top of the git work tree around `cwd` (git init when there is
    none). Returns the fleet root (the directory holding `.fleet/`)."""
    from relayfleet.fleet.gitops import ensure_repo

    cwd = Path(cwd).resolve()
    if not cwd.is_dir():
        raise NotFound(f"{cwd} is not a directory")
    root = ensure_repo(cwd)
    paths = FleetPaths(root)
    with txn.locked(paths, edit):
        _init_locked(paths, root, name, force, commit, edit)
    return root


def _init_locked(
    paths: FleetPaths,
    root: Path,
    name: str | None,
    force: bool,
    commit: bool,
    edit: EditOptions | None,
) -> None:
    if paths.fleet_toml.exists() and not force:
        raise FleetError(
            f"a fleet already exists at {paths.fleet}",
            hints=["use `gh fleet init --force` to rewrite its fleet.toml and routes.toml"],
        )
    name = name if name is not None else root.name
    if not name.strip() or "\n" in name:
        raise FleetError(f"invalid fleet name {name!r}")
    tpl = templates_dir()
    files = {
        paths.fleet_toml: render((tpl / "fleet.toml").read_text(), {"name": name}, toml=True),
        paths.routes_toml: (tpl / "routes.toml").read_text(),
        paths.fleet / ".gitignore": "# runtime state of the fleet: never committed\nstate/\n",
        paths.agents / ".gitkeep": "",
        paths.plugins / ".gitkeep": "",
    }
    pending: list[str] = []
    if commit:
        pending = txn.refuse_pending(paths, [p for p in files if p.exists()], edit)
        txn.check_head_after(paths, {paths.rel_fleet(p): t for p, t in files.items()})
    _preflight(paths, commit)
    for path, text in files.items():
        if path.name == ".gitkeep" and path.exists():
            continue
        write_atomic(path, text)
    if commit:
        txn.commit(paths, list(files), f"fleet: init {name}", pending)


# -- new-agent --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Starter:
    """A starter watch and the route that sends its items to the new agent."""

    watch: dict[str, Any]
    comment: str


# Words a `/fleet <word>` comment uses for itself, so no agent may be called that.
RESERVED_NAMES = ("ok",)


def check_agent_name(name: str) -> None:
    if name in RESERVED_NAMES:
        raise FleetError(
            f"agent name {name!r} is reserved: a `/fleet {name}` comment releases a held item "
            "(gh fleet quarantine)"
        )
    if not NAME_RE.match(name or ""):
        raise FleetError(
            f"invalid agent name {name!r}: use lowercase letters, digits and '-', starting with "
            "a letter or digit, at most 63 characters (it names a directory and a git path)"
        )


def check_repo(repo: str) -> None:
    if not REPO_RE.match(repo):
        raise FleetError(f"invalid repo {repo!r}: expected owner/name, e.g. acme/widgets")


def next_port(fleet: Fleet) -> int:
    """The lowest port from 8801 up that no agent of the fleet uses."""
    used = {a.port for a in fleet.agents.values()}
    port = FIRST_PORT
    while port in used:
        port += 1
    if port > 65535:
        raise FleetError("no free port left for a new agent")
    return port


def starters(name: str, role: str, repo: str) -> list[Starter]:
    """The starter watches of a role. `@me` is the account whose token the router uses: give
    the fleet its own bot account and "assigned to the bot" means "assigned to the fleet"."""
    if role == "coder":
        return [
            Starter(
                {
                    "name": f"{name}-assigned",
                    "kind": "issues",
                    "repo": repo,
                    "filter": "--search assignee:@me --state open",
                    "poll_sec": 240,
                },
                f"# {name}: open issues of {repo} assigned to the fleet's account (@me = the\n"
                "# account of the router's token). Several coders on one repo: add\n"
                '# label = "agent:<name>" to each route below to split the work.\n',
            )
        ]
    if role == "reviewer":
        return [
            Starter(
                {
                    "name": f"{name}-prs",
                    "kind": "pulls",
                    "repo": repo,
                    "filter": "--state open",
                    "poll_sec": 240,
                },
                f"# {name}: every open pull request of {repo} (new ones and new pushes).\n",
            )
        ]
    if role == "manager":
        return [
            Starter(
                {
                    "name": f"{name}-mentions",
                    "kind": "notifications",
                    "repo": repo,
                    "filter": "--reason mention",
                    "poll_sec": 240,
                },
                f"# {name}: mentions of the fleet's account in {repo}.\n",
            ),
            Starter(
                {
                    "name": f"{name}-needs-human",
                    "kind": "issues",
                    "repo": repo,
                    "filter": "--label needs-human --state open",
                    "poll_sec": 300,
                },
                f"# {name}: issues of {repo} labelled needs-human (escalations).\n",
            ),
        ]
    return []


def _route_comment(name: str, role: str) -> str:
    return (
        f"# -> {name}, only items written by trusted authors (the prompt-injection gate).\n"
        "# Items by anyone else are held, not delivered: `gh fleet quarantine list`, then\n"
        "# `release <id>` or a `/fleet ok` comment by a trusted author on the item.\n"
    )


def new_agent(
    paths: FleetPaths,
    name: str,
    role: str,
    repo: str | None = None,
    model: str | None = None,
    route: bool = True,
    remote: bool = True,
    force: bool = False,
    backend: str | None = None,
    host: str | None = None,
    inbox_transport: str | None = None,
    endpoint: str = "default",
    endpoint_url: str | None = None,
    commit: bool = True,
    edit: EditOptions | None = None,
) -> list[Path]:
    """Scaffold `agents/<name>/agent.toml` + `CLAUDE.md`, allocate a port, and (coder, reviewer,
    manager with a repo, unless `route=False`) add starter watches and a route. The port is
    chosen under the fleet lock, so parallel calls never share one."""
    check_agent_name(name)
    if role not in ROLES:
        raise FleetError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    repo = repo or ""
    if repo:
        check_repo(repo)
    with txn.locked(paths, edit):
        return _new_agent_locked(
            paths,
            name,
            role,
            repo,
            model,
            route,
            remote,
            force,
            backend,
            host,
            inbox_transport,
            endpoint,
            endpoint_url,
            commit,
            edit,
        )


def _new_agent_locked(
    paths: FleetPaths,
    name: str,
    role: str,
    repo: str,
    model: str | None,
    route: bool,
    remote: bool,
    force: bool,
    backend: str | None,
    host: str | None,
    inbox_transport: str | None,
    endpoint: str,
    endpoint_url: str | None,
    commit: bool,
    edit: EditOptions | None,
) -> list[Path]:
    from relayfleet.fleet import toml_splice
    from relayfleet.fleet.load import load_fleet
    from relayfleet.fleet.toml_read import parse_plain

    fleet = load_fleet(paths)  # a config that does not load is never edited further
    existing: Agent | None = fleet.agents.get(name)
    if (existing or paths.agent_dir(name).exists()) and not force:
        raise FleetError(
            f"agent {name!r} already exists ({paths.rel(paths.agent_dir(name))}/)",
            hints=["pick another name, or re-scaffold it with --force"],
        )
    backend, host, transport = _runtime(fleet, backend, host, inbox_transport)
    endpoint, url = _endpoint(endpoint, endpoint_url)
    port = existing.port if existing and existing.port else next_port(fleet)
    values = {
        "name": name,
        "role": role,
        "repo": repo,
        "model": model or fleet.default_model,
        "port": port,
        "backend": backend,
        "host": host,
        "inbox_transport": transport,
        "remote_control": remote,
        "endpoint": endpoint,
        "endpoint_url": url,
        "via_gateway": endpoint == "gateway",
        "workspace_mode": workspace_mode(role, repo),
        "branch_prefix": f"fleet/{name}/",
    }
    tpl = templates_dir()
    agent_text = render((tpl / "agent.toml").read_text(), values, toml=True)
    persona = persona_text(name, role, repo)

    routes_text: str | None = None
    if route and repo and starters(name, role, repo):
        rel = paths.rel(paths.routes_toml)
        text = paths.routes_toml.read_text(encoding="utf-8") if paths.routes_toml.exists() else ""

        def append(_doc: Any, key: str, table: Any) -> None:
            nonlocal text  # an edit of the entries around the end, not a whole-file re-parse
            text = toml_splice.append(text, rel, key, table)

        if _add_starters(None, fleet, name, role, repo, append):
            routes_text = text
    changed = [paths.agent_toml(name), paths.persona(name)]
    overrides = {paths.rel_fleet(paths.agent_toml(name)): agent_text}
    if routes_text is not None:
        parse_plain(routes_text, paths.rel(paths.routes_toml))  # never write what cannot be read
        changed.append(paths.routes_toml)
        overrides[paths.rel_fleet(paths.routes_toml)] = routes_text
    pending: list[str] = []
    if commit:
        targets = [paths.agent_dir(name), *changed[2:]]
        pending = txn.refuse_pending(paths, targets, edit)
        txn.check_head_after(paths, overrides)
    _preflight(paths, commit)
    write_atomic(paths.agent_toml(name), agent_text)
    write_atomic(paths.persona(name), persona)
    if routes_text is not None:
        write_atomic(paths.routes_toml, routes_text)
    if commit:
        what = "re-scaffold" if existing else "+agent"
        txn.commit(paths, changed, f"fleet: {what} {name} ({role})", pending)
    return changed


def workspace_mode(role: str, repo: str) -> str:
    """What new-agent scaffolds: coders and reviewers get a clone of their repo, the
    orchestrator a worktree of the fleet's own repository, everyone else an empty directory."""
    if role in ("coder", "reviewer") and repo:
        return "clone"
    if role == "orchestrator":
        return "worktree"
    return "none"


def persona_text(name: str, role: str, repo: str) -> str:
    tpl = templates_dir() / "roles"
    values = {"name": name, "role": role, "repo": repo or "(no repo yet)"}
    base = (tpl / "base.md").read_text()
    if role == "base":
        head = f"# {name}\n\nYou are **{name}**, a general-purpose agent of this fleet.\n\n"
        return render(head + base, values, toml=False)
    return render((tpl / f"{role}.md").read_text() + base, values, toml=False)


def _runtime(
    fleet: Fleet, backend: str | None, host: str | None, transport: str | None
) -> tuple[str, str, str]:
    if host:
        if host not in fleet.hosts:
            known = ", ".join(sorted(fleet.hosts)) or "none yet"
            raise FleetError(
                f"unknown host {host!r} (hosts: {known})",
                hints=["add it first: gh fleet host add <name> --backend ssh --host user@addr"],
            )
        host_backend = fleet.hosts[host].backend
        if backend and backend != host_backend:
            raise FleetError(f"host {host!r} is a {host_backend} host, not {backend}")
        backend = host_backend
    backend = backend or fleet.default_backend
    if backend not in BACKENDS:
        raise FleetError(f"unknown backend {backend!r} (backends: {', '.join(BACKENDS)})")
    if backend == "ssh" and not host:
        raise FleetError("--backend ssh needs --host (a host added with `gh fleet host add`)")
    transport = transport or ("ssh" if backend == "ssh" else "file")
    if transport not in TRANSPORTS:
        raise FleetError(
            f"unknown inbox transport {transport!r} (transports: {', '.join(TRANSPORTS)})"
        )
    if transport == "shared":
        raise FleetError(
            "--inbox-transport shared needs a shared_path: scaffold with another transport, then"
            " set [runtime] inbox_transport and shared_path in the agent.toml"
        )
    return backend, host or "", transport


def _endpoint(mode: str | None, url: str | None) -> tuple[str, str]:
    mode = mode or "default"
    if mode not in ENDPOINT_MODES:
        raise FleetError(f"unknown endpoint {mode!r} (endpoints: {', '.join(ENDPOINT_MODES)})")
    url = url or ""
    if mode == "custom" and not url:
        raise FleetError("--endpoint custom needs --endpoint-url URL")
    if mode == "default" and url:
        raise FleetError("--endpoint-url needs --endpoint custom or --endpoint gateway")
    if url and not url.startswith(("http://", "https://")):
        raise FleetError(f"--endpoint-url {url!r} is not an http(s) URL")
    return mode, url


def _add_starters(doc: Any, fleet: Fleet, name: str, role: str, repo: str, append: Any) -> bool:
    """Append the role's starter watches and one route to them; skip what already exists."""
    import tomlkit

    names = {w.name for w in fleet.watches}
    wanted = starters(name, role, repo)
    added = False
    for st in wanted:
        if st.watch["name"] in names:
            continue
        t = tomlkit.table()
        for k, v in st.watch.items():
            t[k] = v
        t.trivia.indent = st.comment
        append(doc, "watch", t)
        added = True
    watch_names = [st.watch["name"] for st in wanted]
    covered = any(
        name in r.to and set(watch_names) <= set(r.match.get("watch", ())) for r in fleet.routes
    )
    if covered:
        return added
    r = tomlkit.table()
    r["to"] = [name]
    # Every starter route is gated, the manager's too (an outsider's @mention is an item like
    # any other), and holds what the gate stops for a person to decide on.
    r["untrusted"] = "hold"
    m = tomlkit.table()
    m["watch"] = watch_names[0] if len(watch_names) == 1 else watch_names
    arr = tomlkit.array()
    arr.extend(TRUSTED)
    m["association"] = arr
    r["match"] = m
    r.trivia.indent = _route_comment(name, role)
    append(doc, "route", r)
    return True


# -- remove-agent -----------------------------------------------------------------------------


def remove_agent(
    paths: FleetPaths,
    name: str,
    prune_routes: bool = False,
    commit: bool = True,
    edit: EditOptions | None = None,
) -> list[Path]:
    """Delete `agents/<name>/`. Routes naming it make this refuse (listing them) unless
    `prune_routes`: then it leaves their `to`, routes left empty go, and so do the watches only
    those routes used."""
    check_agent_name(name)
    with txn.locked(paths, edit):
        return _remove_agent_locked(paths, name, prune_routes, commit, edit)


def _remove_agent_locked(
    paths: FleetPaths, name: str, prune_routes: bool, commit: bool, edit: EditOptions | None
) -> list[Path]:
    from relayfleet.fleet.load import load_fleet
    from relayfleet.fleet.toml_read import parse_plain

    fleet = load_fleet(paths)
    if name not in fleet.agents:
        fleet.agent(name)  # raises NotFound listing the agents
    using = [r for r in fleet.routes if name in r.to]
    if using and not prune_routes:
        listed = ", ".join(f"#{r.index}" for r in using)
        raise FleetError(
            f"agent {name!r} is named in route {listed} of .fleet/routes.toml",
            hints=[
                "re-run with --prune-routes to remove it from those routes too",
                "or edit them first: gh fleet route remove <n>",
            ],
        )
    changed: list[Path] = [paths.agent_dir(name)]
    overrides: dict[str, str | None] = {paths.rel_fleet(paths.agent_dir(name)) + "/": None}
    routes_text: str | None = None
    if using:
        routes_text = _prune(paths, fleet, name)
        parse_plain(routes_text, paths.rel(paths.routes_toml))  # never write what cannot be read
        changed.append(paths.routes_toml)
        overrides[paths.rel_fleet(paths.routes_toml)] = routes_text
    pending: list[str] = []
    if commit:
        pending = txn.refuse_pending(paths, changed, edit)
        txn.check_head_after(paths, overrides)
    _preflight(paths, commit)
    if routes_text is not None:
        write_atomic(paths.routes_toml, routes_text)
    shutil.rmtree(paths.agent_dir(name))
    if commit:
        role = fleet.agents[name].role
        txn.commit(paths, changed, f"fleet: -agent {name} ({role})", pending)
    return changed


def _prune(paths: FleetPaths, fleet: Fleet, name: str) -> str:
    """routes.toml with `name` taken out of every route, routes left with nobody dropped, and
    the watches only those routes used dropped too. Each change edits the entries around it."""
    from relayfleet.fleet import toml_splice

    rel = paths.rel(paths.routes_toml)
    text = paths.routes_toml.read_text(encoding="utf-8")
    emptied: set[int] = set()
    for r in sorted(fleet.routes, key=lambda r: -r.index):  # from the end: indexes stay valid
        if name not in r.to:
            continue
        if all(a == name for a in r.to):
            emptied.add(r.index - 1)
            text = toml_splice.remove(text, rel, "route", r.index - 1)
            continue

        def leave(table: Any) -> None:
            to = table["to"]
            while name in to:
                del to[[str(x) for x in to].index(name)]

        text = toml_splice.update(text, rel, "route", r.index - 1, leave)
    dropped = [r for r in fleet.routes if r.index - 1 in emptied]
    kept = [r for r in fleet.routes if r.index - 1 not in emptied]
    if not dropped or any("watch" not in r.match for r in kept):
        return text  # a route without a watch key uses every watch
    still_used = {w for r in kept for w in r.match.get("watch", ())}
    orphans = {w for r in dropped for w in r.match.get("watch", ())} - still_used
    for i in reversed([i for i, w in enumerate(fleet.watches) if w.name in orphans]):
        text = toml_splice.remove(text, rel, "watch", i)
    return text


__all__ = [
    "check_agent_name",
    "init_fleet",
    "new_agent",
    "next_port",
    "remove_agent",
]
