"""`gh fleet import <seed-dir>`: a fleet of the seed tool (JSON) becomes `.fleet/` (TOML).

The seed keeps `fleet.json` (name, defaults, hosts, gateway), `routes.json` (`watches` and
`routes`), `agents/<name>/config.json` + `CLAUDE.md`, and shared plugins in `plugins/`.

    plan = plan_import(seed_dir)       # pure: the files to write, and what could not be carried
    result = import_seed(cwd, seed_dir) # writes them and makes ONE commit

Everything the seed says that has a place here is carried over; everything else is named in
`plan.notes`, never dropped in silence. A route with a match key this fleet does not know is
left out whole (dropping only the key would widen it to more items than it was meant for).
Runtime state (inboxes, logs, the router's cursor) is not imported: the first poll is a snapshot.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayfleet.core.atomic import write_atomic
from relayfleet.core.errors import ConfigError, FleetError, NotFound
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import MATCH_KEYS

if TYPE_CHECKING:
    from relayfleet.fleet.txn import EditOptions

BUNDLED = {"inbox", "_template"}  # the seed's own copies of what this tool bundles
FIRST_PORT = 8801

FLEET_MAP = {"name", "description", "defaults", "model", "backend", "github", "api_url"}
FLEET_MAP |= {"hosts", "gateway"}
HOST_KEYS = ("backend", "host", "port", "workdir", "os", "key")
GATEWAY_KEYS = ("enabled", "listen", "secret_env", "upstream", "stages")
WATCH_KEYS = ("name", "kind", "repo", "filter", "poll_sec")
AGENT_TOP = ("name", "role", "description", "repo", "model", "port", "plugins", "ack_timeout_sec")
RUNTIME_KEYS = ("backend", "host", "inbox_transport", "image", "shared_path", "cpus", "memory")
CLAUDE_KEYS = ("engine", "command", "args", "remote_control", "isolate_config", "inherit_auth")
ENDPOINT_KEYS = ("mode", "url", "via_gateway", "stages")
CRED_KEYS = ("from_env", "from_file", "from_command", "as_env", "as_file", "mode")


@dataclass
class Plan:
    name: str
    files: dict[str, str] = field(default_factory=dict)  # path under .fleet/ -> text
    copies: dict[str, Path] = field(default_factory=dict)  # path under .fleet/ -> seed file
    notes: list[str] = field(default_factory=list)  # what could not be carried over
    agents: list[str] = field(default_factory=list)
    watches: int = 0
    routes: int = 0


@dataclass(frozen=True)
class ImportResult:
    root: Path
    plan: Plan
    commit: str | None


def _read_json(path: Path, what: str, required: bool) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise NotFound(f"{path} not found: is this a seed fleet ({what})?") from None
        return None
    except OSError as exc:
        raise FleetError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _leftover(notes: list[str], where: str, data: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in sorted(set(data) - set(known)):
        notes.append(f"{where}: `{key}` has no counterpart here; not carried over")


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data and data[k] is not None}


def _listen(url: str) -> str:
    """The seed's gateway `url` ("http://127.0.0.1:8799") as a listen address."""
    return url.split("://", 1)[-1].rstrip("/")


def plan_import(seed: Path) -> Plan:
    """Read a seed fleet and decide every file of `.fleet/` (pure apart from reading)."""
    seed = Path(seed)
    if not seed.is_dir():
        raise NotFound(f"{seed} is not a directory")
    fleet_json = _dict(_read_json(seed / "fleet.json", "fleet.json", required=True))
    routes_json = _dict(_read_json(seed / "routes.json", "routes.json", required=False))
    plan = Plan(name=str(fleet_json.get("name") or seed.resolve().name))
    plan.files["fleet.toml"] = _fleet_toml(fleet_json, plan)
    plan.files[".gitignore"] = "# runtime state of the fleet: never committed\nstate/\n"
    plan.files["agents/.gitkeep"] = ""
    plan.files["plugins/.gitkeep"] = ""
    if not (seed / "routes.json").exists():
        plan.notes.append("routes.json: not found; the fleet has no watches or routes yet")
    plan.files["routes.toml"] = _routes_toml(routes_json, plan)
    _agents(seed, plan)
    _plugins(seed, plan)
    if (seed / "state").is_dir():
        plan.notes.append(
            "state/: the router's cursor is not imported (the first poll here is a snapshot, "
            "so nothing is replayed)"
        )
    return plan


def _doc(header: str) -> Any:
    import tomlkit

    doc = tomlkit.document()
    for line in header.splitlines():
        doc.add(tomlkit.comment(line))
    return doc


def _fleet_toml(data: dict[str, Any], plan: Plan) -> str:
    import tomlkit

    notes = plan.notes
    doc = _doc("Imported from a seed fleet's fleet.json by `gh fleet import`.")
    fleet = {"name": plan.name} | _pick(data, ("description",))
    doc["fleet"] = fleet
    api_url = _dict(data.get("github")).get("api_url") or data.get("api_url")
    if api_url:
        doc["github"] = {"api_url": str(api_url)}
    _leftover(notes, "fleet.json github", _dict(data.get("github")), ("api_url",))
    defaults = _pick(_dict(data.get("defaults")), ("model", "backend"))
    defaults |= {k: data[k] for k in ("model", "backend") if isinstance(data.get(k), str)}
    if defaults:
        doc["defaults"] = defaults
    _leftover(notes, "fleet.json defaults", _dict(data.get("defaults")), ("model", "backend"))
    hosts = tomlkit.table(is_super_table=True)
    for hname, raw in sorted(_dict(data.get("hosts")).items()):
        h = _dict(raw)
        hosts[hname] = _pick(h, HOST_KEYS)
        _leftover(notes, f"fleet.json hosts.{hname}", h, HOST_KEYS)
    if hosts:
        doc["hosts"] = hosts
    g = _dict(data.get("gateway"))
    if g:
        gateway = _pick(g, GATEWAY_KEYS)
        if "url" in g and "listen" not in g:
            gateway["listen"] = _listen(str(g["url"]))
        doc["gateway"] = gateway
        _leftover(notes, "fleet.json gateway", g, (*GATEWAY_KEYS, "url"))
    _leftover(notes, "fleet.json", data, tuple(FLEET_MAP))
    return tomlkit.dumps(doc)


def _routes_toml(data: dict[str, Any], plan: Plan) -> str:
    import tomlkit

    notes = plan.notes
    doc = _doc("Imported from a seed fleet's routes.json by `gh fleet import`: the gate.")
    watches = tomlkit.aot()
    for i, raw in enumerate(data.get("watches") or []):
        w = _dict(raw)
        where = f"routes.json watches[{i}] ({w.get('name', '?')})"
        watches.append(tomlkit.item(_pick(w, WATCH_KEYS)))
        _leftover(notes, where, w, WATCH_KEYS)
    routes = tomlkit.aot()
    for i, raw in enumerate(data.get("routes") or []):
        r = _dict(raw)
        where = f"routes.json routes[{i}]"
        match = _dict(r.get("match"))
        unknown = sorted(set(match) - set(MATCH_KEYS))
        if unknown:
            keys = ", ".join(f"`{k}`" for k in unknown)
            notes.append(
                f"{where}: match key {keys} is not known here; the route was LEFT OUT "
                "(without it, the route would match more than it was meant to)"
            )
            continue
        to = r.get("to")
        route = tomlkit.table()
        route["to"] = [to] if isinstance(to, str) else list(to or [])
        if match:
            route["match"] = match
        routes.append(route)
        _leftover(notes, where, r, ("to", "match"))
    if watches:
        doc["watch"] = watches
    if routes:
        doc["route"] = routes
    _leftover(notes, "routes.json", data, ("watches", "routes"))
    plan.watches, plan.routes = len(watches), len(routes)
    return tomlkit.dumps(doc)


def _agents(seed: Path, plan: Plan) -> None:
    from relayfleet.fleet.schema import NAME_RE

    top = seed / "agents"
    dirs = sorted(p for p in top.iterdir() if p.is_dir()) if top.is_dir() else []
    used: set[int] = set()
    agents: dict[str, dict[str, Any]] = {}
    pending_port: list[dict[str, Any]] = []
    for d in dirs:
        raw = _read_json(d / "config.json", "config.json", required=False)
        if raw is None:
            plan.notes.append(f"agents/{d.name}/: no config.json; not an agent, skipped")
            continue
        name = d.name
        if not NAME_RE.match(name):
            plan.notes.append(f"agents/{name}/: not a valid agent name here (a-z, 0-9, -); skipped")
            continue
        cfg = _dict(raw)
        agent = _agent(name, cfg, plan.notes)
        port = agent.get("port")
        if isinstance(port, int) and port not in used:
            used.add(port)
        else:
            if port is not None:
                plan.notes.append(f"agents/{name}: port {port} is taken; a new one is allocated")
            pending_port.append(agent)
        plan.agents.append(name)
        agents[name] = agent
        persona = d / "CLAUDE.md"
        if persona.is_file():
            plan.copies[f"agents/{name}/CLAUDE.md"] = persona
        else:
            from relayfleet.fleet.scaffold import persona_text

            plan.notes.append(f"agents/{name}: no CLAUDE.md; its role's persona was written")
            plan.files[f"agents/{name}/CLAUDE.md"] = persona_text(
                name, str(agent.get("role", "base")), str(agent.get("repo", ""))
            )
        if (d / "state").is_dir():
            plan.notes.append(f"agents/{name}/state/: its inbox and logs are not imported")
    port = FIRST_PORT  # ports are allocated once every given one is known
    for agent in pending_port:
        while port in used:
            port += 1
        agent["port"] = port
        used.add(port)
    for name, agent in agents.items():
        plan.files[f"agents/{name}/agent.toml"] = _agent_toml(name, agent)


def _agent(name: str, cfg: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    where = f"agents/{name}/config.json"
    if cfg.get("name") not in (None, name):
        notes.append(f"{where}: name {cfg['name']!r} differs from its folder; {name!r} is used")
    out: dict[str, Any] = {"name": name} | _pick(cfg, AGENT_TOP[1:])
    runtime = _dict(cfg.get("runtime"))
    _leftover(notes, f"{where} runtime", runtime, RUNTIME_KEYS)
    out["runtime"] = _pick(runtime, RUNTIME_KEYS)
    claude = _dict(cfg.get("claude"))
    c = {"engine": "claude", "command": ["claude"]} | _pick(claude, CLAUDE_KEYS)
    # Some seed configs keep these at the top level.
    for key in ("remote_control", "isolate_config", "inherit_auth"):
        if key in cfg and key not in claude:
            c[key] = cfg[key]
    endpoint = _dict(claude.get("endpoint") or cfg.get("endpoint"))
    _leftover(notes, f"{where} claude", claude, (*CLAUDE_KEYS, "endpoint"))
    _leftover(notes, f"{where} claude.endpoint", endpoint, ENDPOINT_KEYS)
    if endpoint:
        c["endpoint"] = _pick(endpoint, ENDPOINT_KEYS)
    out["claude"] = c
    creds: dict[str, Any] = {}
    for cname, raw in sorted(_dict(cfg.get("credentials")).items()):
        cred = _pick(_dict(raw), CRED_KEYS)
        _leftover(notes, f"{where} credentials.{cname}", _dict(raw), CRED_KEYS)
        if cred.get("from_env") and not cred.get("as_env") and not cred.get("as_file"):
            cred["as_env"] = cred["from_env"]  # the seed's rule: it keeps its variable name
        creds[cname] = cred
    if creds:
        out["credentials"] = creds
    known: tuple[str, ...] = (*AGENT_TOP, "runtime", "claude", "credentials", "endpoint")
    known = (*known, "remote_control", "isolate_config", "inherit_auth")
    _leftover(notes, where, cfg, known)
    return out


def _agent_toml(name: str, agent: dict[str, Any]) -> str:
    import tomlkit

    doc = _doc(
        f"Agent {name}, imported from a seed fleet by `gh fleet import`. Its persona is\n"
        "CLAUDE.md next to this file."
    )
    for key in AGENT_TOP:
        if key in agent:
            doc[key] = agent[key]
    for section in ("runtime", "claude", "credentials"):
        if agent.get(section):
            doc[section] = agent[section]
    return tomlkit.dumps(doc)


def _plugins(seed: Path, plan: Plan) -> None:
    top = seed / "plugins"
    if not top.is_dir():
        return
    for d in sorted(p for p in top.iterdir() if p.is_dir()):
        if d.name in BUNDLED or d.name.startswith((".", "__")):
            continue
        for f in sorted(d.rglob("*")):
            rel = f.relative_to(top)
            if f.is_file() and "__pycache__" not in rel.parts and f.suffix != ".pyc":
                plan.copies[f"plugins/{rel.as_posix()}"] = f
        plan.notes.append(
            f"plugins/{d.name}: copied to .fleet/plugins/{d.name}/; check it against "
            "docs/plugins.md before enabling it"
        )


def check_plan(plan: Plan) -> list[str]:
    """Errors the imported fleet would have (`gh fleet validate`'s), as lines."""
    from relayfleet.fleet.schema import load_fleet_from_texts
    from relayfleet.fleet.validate import check_fleet

    texts = {k: v for k, v in plan.files.items() if k.endswith(".toml")}
    problems: list[ConfigError] = []
    fleet = load_fleet_from_texts(texts, problems)
    errors = [str(p) for p in problems]
    if not errors:
        errors = [str(p) for p in check_fleet(fleet, texts) if p.level == "error"]
    return errors


def import_seed(
    cwd: Path, seed: Path, *, commit: bool = True, edit: EditOptions | None = None
) -> ImportResult:
    """Write the seed fleet as `.fleet/` in the git work tree around `cwd`, in one commit."""
    from relayfleet.fleet import txn

    plan = plan_import(seed)
    errors = check_plan(plan)
    if errors:
        raise ConfigError(
            f"the seed fleet would not be valid here ({len(errors)} error(s)): {errors[0]}",
            hints=[*errors[1:4], "fix the seed's JSON (or import, then edit .fleet/ by hand)"],
        )
    from relayfleet.fleet.gitops import ensure_repo

    root = ensure_repo(Path(cwd).resolve())
    paths = FleetPaths(root)
    # Under the fleet lock, as `init` is: two imports (or an import and an init) never interleave.
    with txn.locked(paths, edit):
        return _import_locked(paths, plan, commit)


def _import_locked(paths: FleetPaths, plan: Plan, commit: bool) -> ImportResult:
    from relayfleet.fleet.gitops import commit_fleet, preflight

    root = paths.root
    if paths.fleet_toml.exists():
        raise FleetError(
            f"a fleet already exists at {paths.fleet}",
            hints=["import into a repository without .fleet/ (or remove it first)"],
        )
    if commit:
        preflight(root)
    written: list[Path] = []
    for rel, text in plan.files.items():
        dest = paths.fleet / rel
        write_atomic(dest, text)
        written.append(dest)
    for rel, src in plan.copies.items():
        dest = paths.fleet / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        written.append(dest)
    sha = None
    if commit:
        what = f"{len(plan.agents)} agents, {plan.watches} watches, {plan.routes} routes"
        sha = commit_fleet(root, written, f"fleet: import seed fleet {plan.name} ({what})")
    return ImportResult(root, plan, sha)
