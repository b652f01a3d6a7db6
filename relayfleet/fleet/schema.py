"""Plain TOML dicts -> the frozen model of `fleet/model.py`, strictly (pure: no I/O).

Unknown keys, wrong types and bad enum values are ConfigErrors that name the file, the line when
it can be found, and the path, e.g.
`.fleet/routes.toml:14: route[2].match.kind: "pull" is not one of issues, pulls, runs, …`.
Indexes of `[[watch]]` / `[[route]]` are shown 1-based, as `gh fleet route` numbers them.

By default the first problem raises; pass `problems=[]` to collect them all and get a best-effort
Fleet back (what `validate` does). Cross-file checks (dangling references, duplicate ports) are
`fleet.validate`'s job: a route to an unknown agent must still load, so `route` can flag it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from relayfleet.core.addresses import listen_ok
from relayfleet.core.errors import ConfigError
from relayfleet.fleet.model import (
    BACKENDS,
    COMMAND_ALLOW_DEFAULT,
    DEFAULT_CLONE_URL,
    ENDPOINT_MODES,
    ENGINES,
    FETCH_MODES,
    KINDS,
    MATCH_KEYS,
    ROLES,
    TRANSPORTS,
    UNTRUSTED,
    WORKSPACE_MODES,
    Agent,
    Budget,
    ClaudeConfig,
    CommandsConfig,
    Credential,
    Endpoint,
    Fleet,
    GatewayConfig,
    Host,
    Permissions,
    Route,
    Runtime,
    SecretRef,
    Watch,
    WebhookConfig,
    Workspace,
)
from relayfleet.fleet.toml_read import line_of, parse_plain

FLEET_TOML = "fleet.toml"
ROUTES_TOML = "routes.toml"
AGENT_FILE = re.compile(r"^agents/([^/]+)/agent\.toml$")
# GitHub owners are letters, digits and '-'; repo names add '.' and '_' but are never . or ..
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/(?!\.\.?\Z)[A-Za-z0-9_.-]+\Z")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
WATCH_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
ASSOCIATIONS = (
    "OWNER",
    "MEMBER",
    "COLLABORATOR",
    "CONTRIBUTOR",
    "FIRST_TIME_CONTRIBUTOR",
    "FIRST_TIMER",
    "MANNEQUIN",
    "NONE",
)
HOST_BACKENDS = ("ssh", "docker")

Path_ = tuple[str | int, ...]


def display(rel: str) -> str:
    """How a file under `.fleet/` is named in messages."""
    return f".fleet/{rel}"


def dotted(path: Path_) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p + 1}]"
        else:
            out += f".{p}" if out else p
    return out


class _Missing:
    pass


MISSING: Any = _Missing()


class Reporter:
    """Raises the first problem, or collects every one when given a list."""

    def __init__(
        self, texts: Mapping[str, str] | None = None, problems: list[ConfigError] | None = None
    ) -> None:
        self.texts = texts or {}
        self.problems = problems

    def error(self, rel: str, path: Path_, message: str) -> None:
        line = line_of(self.texts[rel], path) if rel in self.texts and path else None
        where = dotted(path)
        exc = ConfigError(f"{where}: {message}" if where else message, file=display(rel), line=line)
        if self.problems is None:
            raise exc
        self.problems.append(exc)


class _Reader:
    """Typed access to one file's dict, reporting problems against `rel` and a key path."""

    def __init__(self, rep: Reporter, rel: str) -> None:
        self.rep = rep
        self.rel = rel

    def err(self, path: Path_, message: str) -> None:
        self.rep.error(self.rel, path, message)

    def keys(self, path: Path_, d: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for k in d:
            if k not in allowed:
                self.err((*path, k), f"unknown key (expected one of {', '.join(allowed)})")

    def table(self, path: Path_, value: Any) -> dict[str, Any]:
        if value is MISSING:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"must be a table, not {_typename(value)}")
            return {}
        return value

    def get(
        self,
        d: Mapping[str, Any],
        path: Path_,
        key: str,
        check: Callable[[Any], bool],
        want: str,
        default: Any,
        *,
        required: bool = False,
    ) -> Any:
        value = d.get(key, MISSING)
        if value is MISSING:
            if required:
                self.err((*path, key), f"missing (required: {want})")
            return default
        if not check(value):
            self.err((*path, key), f"must be {want}, not {_show(value)}")
            return default
        return value

    def str_(
        self, d: Mapping[str, Any], path: Path_, key: str, default: str = "", **kw: Any
    ) -> str:
        value: str = self.get(d, path, key, lambda v: isinstance(v, str), "a string", default, **kw)
        return value

    def int_(
        self, d: Mapping[str, Any], path: Path_, key: str, default: int, lo: int, hi: int, **kw: Any
    ) -> int:
        def ok(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

        value: int = self.get(d, path, key, ok, f"an integer from {lo} to {hi}", default, **kw)
        return value

    def num(self, d: Mapping[str, Any], path: Path_, key: str, default: float) -> float:
        def ok(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0

        return float(self.get(d, path, key, ok, "a non-negative number", default))

    def bool_(self, d: Mapping[str, Any], path: Path_, key: str, default: bool) -> bool:
        value: bool = self.get(
            d, path, key, lambda v: isinstance(v, bool), "true or false", default
        )
        return value

    def enum(
        self,
        d: Mapping[str, Any],
        path: Path_,
        key: str,
        choices: tuple[str, ...],
        default: str,
        **kw: Any,
    ) -> str:
        value = self.str_(d, path, key, MISSING, **kw)
        if value is MISSING:
            return default
        if value not in choices:
            self.err((*path, key), f"{_show(value)} is not one of {', '.join(choices)}")
            return default
        return value

    def strs(
        self,
        d: Mapping[str, Any],
        path: Path_,
        key: str,
        default: tuple[str, ...] = (),
        *,
        single_ok: bool = False,
        nonempty: bool = False,
        **kw: Any,
    ) -> tuple[str, ...]:
        value = d.get(key, MISSING)
        if value is MISSING:
            if kw.get("required"):
                self.err((*path, key), "missing (required: a list of strings)")
            return default
        if single_ok and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            want = "a string or a list of strings" if single_ok else "a list of strings"
            self.err((*path, key), f"must be {want}, not {_show(value)}")
            return default
        if nonempty and (not value or not all(v.strip() for v in value)):
            self.err((*path, key), "must not be empty")
            return default
        return tuple(value)


def _typename(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _typename(value)


# -- fleet.toml -------------------------------------------------------------------------------

FLEET_KEYS = ("fleet", "github", "defaults", "hosts", "gateway", "webhook", "commands", "budget")
PRICE_KEYS = ("input", "output", "cache_write", "cache_read")  # $ per million tokens


def _budget(r: _Reader, data: Mapping[str, Any], *, prices: bool) -> Budget:
    p: Path_ = ("budget",)
    b = r.table(p, data.get("budget", MISSING))
    r.keys(p, b, ("tokens_per_day", "prices") if prices else ("tokens_per_day",))
    table: dict[str, float] = {}
    if prices:
        pp: Path_ = (*p, "prices")
        pt = r.table(pp, b.get("prices", MISSING))
        r.keys(pp, pt, PRICE_KEYS)
        table = {k: r.num(pt, pp, k, 0.0) for k in PRICE_KEYS if k in pt}
    return Budget(tokens_per_day=r.int_(b, p, "tokens_per_day", 0, 0, 10**12), prices=table)


def fleet_settings(data: Mapping[str, Any], rep: Reporter) -> dict[str, Any]:
    """`fleet.toml` -> keyword arguments of `Fleet` (all but agents, watches and routes)."""
    r = _Reader(rep, FLEET_TOML)
    r.keys((), data, FLEET_KEYS)
    f = r.table(("fleet",), data.get("fleet", MISSING))
    r.keys(("fleet",), f, ("name", "description"))
    name = r.str_(f, ("fleet",), "name", "", required=True)
    r.str_(f, ("fleet",), "description")
    gh = r.table(("github",), data.get("github", MISSING))
    r.keys(("github",), gh, ("api_url", "clone_url"))
    api_url = r.str_(gh, ("github",), "api_url", "https://api.github.com")
    if api_url and not api_url.startswith(("http://", "https://")):
        r.err(("github", "api_url"), f"{_show(api_url)} is not an http(s) URL")
    clone_url = r.str_(gh, ("github",), "clone_url", DEFAULT_CLONE_URL) or DEFAULT_CLONE_URL
    if "{repo}" not in clone_url:
        r.err(("github", "clone_url"), f"{_show(clone_url)} has no {{repo}} (owner/name) in it")
    de = r.table(("defaults",), data.get("defaults", MISSING))
    r.keys(("defaults",), de, ("model", "backend"))
    model = r.str_(de, ("defaults",), "model", "sonnet") or "sonnet"
    backend = r.enum(de, ("defaults",), "backend", BACKENDS, "local")
    hosts: dict[str, Host] = {}
    for hname, raw in r.table(("hosts",), data.get("hosts", MISSING)).items():
        p: Path_ = ("hosts", hname)
        h = r.table(p, raw)
        r.keys(p, h, ("backend", "host", "port", "workdir", "os", "key"))
        hosts[hname] = Host(
            name=hname,
            backend=r.enum(h, p, "backend", HOST_BACKENDS, "ssh", required=True),
            host=r.str_(h, p, "host"),
            port=r.int_(h, p, "port", 22, 1, 65535),
            workdir=r.str_(h, p, "workdir"),
            os=r.enum(h, p, "os", ("linux", "macos", "windows"), "linux"),
            key=r.str_(h, p, "key"),
        )
    g = r.table(("gateway",), data.get("gateway", MISSING))
    r.keys(("gateway",), g, ("enabled", "listen", "secret_env", "upstream", "stages"))
    dflt = GatewayConfig()
    stages: dict[str, str] = {}
    for sname, url in r.table(("gateway", "stages"), g.get("stages", MISSING)).items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            r.err(("gateway", "stages", sname), f"must be an http(s) URL, not {_show(url)}")
            continue
        stages[sname] = url
    gateway = GatewayConfig(
        enabled=r.bool_(g, ("gateway",), "enabled", dflt.enabled),
        listen=r.str_(g, ("gateway",), "listen", dflt.listen),
        secret_env=r.str_(g, ("gateway",), "secret_env", dflt.secret_env),
        upstream=r.str_(g, ("gateway",), "upstream", dflt.upstream),
        stages=stages,
    )
    return {
        "name": name,
        "api_url": api_url,
        "clone_url": clone_url,
        "default_model": model,
        "default_backend": backend,
        "hosts": hosts,
        "gateway": gateway,
        "webhook": _webhook(r, data),
        "commands": _commands(r, data),
        "budget": _budget(r, data, prices=True),
    }


def _webhook(r: _Reader, data: Mapping[str, Any]) -> WebhookConfig:
    p: Path_ = ("webhook",)
    w = r.table(p, data.get("webhook", MISSING))
    r.keys(p, w, ("enabled", "listen", "secret", "reconcile_sec"))
    dflt = WebhookConfig()
    listen = r.str_(w, p, "listen", dflt.listen)
    if not listen_ok(listen):
        r.err((*p, "listen"), f"{_show(listen)} is not host:port (e.g. 127.0.0.1:8790)")
    sp: Path_ = (*p, "secret")
    raw = w.get("secret", MISSING)
    literal = isinstance(raw, str)
    if literal:
        # The value itself would end up in git: only references are accepted.
        r.err(sp, "must be a reference like { from_env = \"FLEET_WEBHOOK_SECRET\" }, "
                  "never the secret itself")  # fmt: skip
        raw = MISSING
    s = r.table(sp, raw)
    r.keys(sp, s, ("from_env", "from_file", "from_command"))
    secret = SecretRef(
        from_env=r.str_(s, sp, "from_env"),
        from_file=r.str_(s, sp, "from_file"),
        from_command=r.strs(s, sp, "from_command"),
    )
    if s and len([x for x in (secret.from_env, secret.from_file, secret.from_command) if x]) != 1:
        r.err(sp, "needs exactly one of from_env, from_file, from_command")
    enabled = r.bool_(w, p, "enabled", dflt.enabled)
    if enabled and secret.empty and not literal:  # (a literal was refused above)
        r.err(sp, "missing: an enabled receiver needs a secret, "
                  "e.g. secret = { from_env = \"FLEET_WEBHOOK_SECRET\" }")  # fmt: skip
    return WebhookConfig(
        enabled=enabled,
        listen=listen,
        secret=secret,
        reconcile_sec=r.int_(w, p, "reconcile_sec", dflt.reconcile_sec, 10, 86_400),
    )


def _commands(r: _Reader, data: Mapping[str, Any]) -> CommandsConfig:
    p: Path_ = ("commands",)
    c = r.table(p, data.get("commands", MISSING))
    r.keys(p, c, ("allow",))
    allow = r.strs(c, p, "allow", COMMAND_ALLOW_DEFAULT)
    bad = [a for a in allow if a.upper() not in ASSOCIATIONS]
    if bad:
        r.err((*p, "allow"), f"{_show(bad[0])} is not one of {', '.join(ASSOCIATIONS)}")
    return CommandsConfig(allow=tuple(a.upper() for a in allow))


# -- routes.toml ------------------------------------------------------------------------------


def routes_from(
    data: Mapping[str, Any], rep: Reporter
) -> tuple[tuple[Watch, ...], tuple[Route, ...]]:
    r = _Reader(rep, ROUTES_TOML)
    r.keys((), data, ("watch", "route"))
    watches: list[Watch] = []
    for i, raw in enumerate(_aot(r, "watch", data)):
        p: Path_ = ("watch", i)
        w = r.table(p, raw)
        r.keys(p, w, ("name", "kind", "repo", "filter", "poll_sec"))
        name = r.str_(w, p, "name", f"watch-{i + 1}", required=True)
        if "name" in w and isinstance(w["name"], str) and not WATCH_NAME_RE.match(name):
            r.err((*p, "name"), f"{_show(name)} is not a valid watch name (letters, digits, -_.)")
        kind = r.enum(w, p, "kind", KINDS, "issues", required=True)
        repo = r.str_(w, p, "repo", "", required=kind != "notifications")
        if repo and not REPO_RE.match(repo):
            r.err((*p, "repo"), f"{_show(repo)} is not owner/name")
        watches.append(
            Watch(
                name=name,
                kind=kind,
                repo=repo,
                filter=r.str_(w, p, "filter"),
                poll_sec=r.int_(w, p, "poll_sec", 240, 1, 86400),
            )
        )
    routes: list[Route] = []
    for i, raw in enumerate(_aot(r, "route", data)):
        p = ("route", i)
        t = r.table(p, raw)
        r.keys(p, t, ("to", "match", "untrusted"))
        to = r.strs(t, p, "to", (), single_ok=True, nonempty=True, required=True)
        untrusted = r.enum(t, p, "untrusted", UNTRUSTED, "drop")
        m = r.table((*p, "match"), t.get("match", MISSING))
        r.keys((*p, "match"), m, MATCH_KEYS)
        match: dict[str, tuple[str, ...]] = {}
        for key in MATCH_KEYS:
            if key not in m:
                continue
            values = r.strs(m, (*p, "match"), key, MISSING, single_ok=True, nonempty=True)
            if values is MISSING:
                continue
            bad = _bad_match_values(key, values)
            if bad:
                r.err((*p, "match", key), bad)
                continue
            match[key] = values
        routes.append(Route(index=i + 1, match=match, to=to, untrusted=untrusted))
    return tuple(watches), tuple(routes)


def _aot(r: _Reader, key: str, data: Mapping[str, Any]) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        r.err((key,), f"must be an array of tables ([[{key}]]), not {_typename(value)}")
        return []
    return value


def _bad_match_values(key: str, values: tuple[str, ...]) -> str:
    choices = {"kind": KINDS, "association": ASSOCIATIONS}.get(key)
    if choices:
        for v in values:
            if v not in choices:
                return f"{_show(v)} is not one of {', '.join(choices)}"
    if key == "repo":
        for v in values:
            if not REPO_RE.match(v):
                return f"{_show(v)} is not owner/name"
    return ""


# -- agents/<name>/agent.toml -----------------------------------------------------------------

AGENT_KEYS = (
    "name",
    "role",
    "description",
    "repo",
    "model",
    "port",
    "plugins",
    "ack_timeout_sec",
    "runtime",
    "claude",
    "credentials",
    "workspace",
    "budget",
    "permissions",
    "plugin",  # [plugin.<name>]: each plugin's own settings, free-form (runner/plugins.py)
)


def agent_from(
    data: Mapping[str, Any], dirname: str, settings: Mapping[str, Any], rep: Reporter
) -> Agent:
    rel = f"agents/{dirname}/agent.toml"
    r = _Reader(rep, rel)
    r.keys((), data, AGENT_KEYS)
    name = r.str_(data, (), "name", dirname)
    if name != dirname:
        r.err(("name",), f"{_show(name)} does not match its directory agents/{dirname}/")
        name = dirname
    if not NAME_RE.match(dirname):
        r.err((), f"agents/{dirname}/ is not a valid agent name (a-z, 0-9, -; up to 63)")
    r.str_(data, (), "description")
    repo = r.str_(data, (), "repo")
    if repo and not REPO_RE.match(repo):
        r.err(("repo",), f"{_show(repo)} is not owner/name")
    rt = r.table(("runtime",), data.get("runtime", MISSING))
    rp: Path_ = ("runtime",)
    r.keys(
        rp,
        rt,
        (
            "backend",
            "host",
            "inbox_transport",
            "image",
            "shared_path",
            "cpus",
            "memory",
            "coalesce_max",
            "idle_stop_min",
        ),
    )
    runtime = Runtime(
        backend=r.enum(rt, rp, "backend", BACKENDS, settings.get("default_backend", "local")),
        host=r.str_(rt, rp, "host"),
        inbox_transport=r.enum(rt, rp, "inbox_transport", TRANSPORTS, "file"),
        image=r.str_(rt, rp, "image"),
        shared_path=r.str_(rt, rp, "shared_path"),
        cpus=r.num(rt, rp, "cpus", 0.0),
        memory=r.str_(rt, rp, "memory"),
        coalesce_max=r.int_(rt, rp, "coalesce_max", 20, 1, 200),
        idle_stop_min=r.int_(rt, rp, "idle_stop_min", 0, 0, 7 * 24 * 60),
    )
    return Agent(
        name=name,
        role=r.enum(data, (), "role", ROLES, "base", required=True),
        repo=repo,
        model=r.str_(data, (), "model", settings.get("default_model", "sonnet")) or "sonnet",
        port=r.int_(data, (), "port", 0, 1, 65535, required=True),
        plugins=r.strs(data, (), "plugins", ("inbox",)),
        runtime=runtime,
        claude=_claude(r, data),
        credentials=_credentials(r, data),
        ack_timeout_sec=r.int_(data, (), "ack_timeout_sec", 600, 1, 7 * 86400),
        workspace=_workspace(r, data, repo),
        budget=_budget(r, data, prices=False),
        permissions=_permissions(r, data),
    )


PERMISSION_RULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_*-]*(\(.+\))?$")


def _permissions(r: _Reader, data: Mapping[str, Any]) -> Permissions:
    p: Path_ = ("permissions",)
    t = r.table(p, data.get("permissions", MISSING))
    r.keys(p, t, ("mode", "allow", "deny", "ask", "ask_timeout_min"))
    lists = {k: r.strs(t, p, k, ()) for k in ("allow", "deny", "ask")}
    for key, rules in lists.items():
        for rule in rules:
            if not PERMISSION_RULE_RE.match(rule):
                r.err((*p, key), f"{_show(rule)} is not a rule (Tool or Tool(specifier))")
    return Permissions(
        mode=r.enum(t, p, "mode", ("policy", "default"), "default"),
        allow=lists["allow"],
        deny=lists["deny"],
        ask=lists["ask"],
        ask_timeout_min=r.int_(t, p, "ask_timeout_min", 30, 1, 7 * 24 * 60),
    )


# A branch prefix is the start of a git ref name: no spaces, no `..`, none of ~^:?*[\ .
BRANCH_PREFIX_RE = re.compile(r"^(?![/.-])(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+/\Z")


def _workspace(r: _Reader, data: Mapping[str, Any], agent_repo: str) -> Workspace:
    p: Path_ = ("workspace",)
    w = r.table(p, data.get("workspace", MISSING))
    r.keys(p, w, ("mode", "repo", "branch_prefix", "fetch"))
    ws = Workspace(
        mode=r.enum(w, p, "mode", WORKSPACE_MODES, "none"),
        repo=r.str_(w, p, "repo"),
        branch_prefix=r.str_(w, p, "branch_prefix"),
        fetch=r.enum(w, p, "fetch", FETCH_MODES, "on-event"),
    )
    if ws.repo and not REPO_RE.match(ws.repo):
        r.err((*p, "repo"), f"{_show(ws.repo)} is not owner/name")
    if ws.branch_prefix and not BRANCH_PREFIX_RE.match(ws.branch_prefix):
        r.err(
            (*p, "branch_prefix"),
            f'{_show(ws.branch_prefix)} is not a branch prefix like "fleet/<agent>/"'
            " (letters, digits, . _ - /, ending in /)",
        )
    if ws.mode == "clone" and not (ws.repo or agent_repo):
        r.err((*p, "repo"), 'required when mode = "clone" and the agent has no repo')
    return ws


def _claude(r: _Reader, data: Mapping[str, Any]) -> ClaudeConfig:
    p: Path_ = ("claude",)
    c = r.table(p, data.get("claude", MISSING))
    r.keys(
        p,
        c,
        (
            "engine",
            "command",
            "args",
            "remote_control",
            "isolate_config",
            "inherit_auth",
            "endpoint",
        ),
    )
    d = ClaudeConfig()
    command = r.strs(c, p, "command", d.command, nonempty=True)
    ep = r.table((*p, "endpoint"), c.get("endpoint", MISSING))
    epp: Path_ = (*p, "endpoint")
    r.keys(epp, ep, ("mode", "url", "via_gateway", "stages"))
    endpoint = Endpoint(
        mode=r.enum(ep, epp, "mode", ENDPOINT_MODES, "default"),
        url=r.str_(ep, epp, "url"),
        via_gateway=r.bool_(ep, epp, "via_gateway", False),
        stages=r.strs(ep, epp, "stages"),
    )
    if endpoint.mode == "custom" and not endpoint.url:
        r.err((*epp, "url"), 'required when mode = "custom"')
    if endpoint.url and not endpoint.url.startswith(("http://", "https://")):
        r.err((*epp, "url"), f"{_show(endpoint.url)} is not an http(s) URL")
    return ClaudeConfig(
        engine=r.enum(c, p, "engine", ENGINES, d.engine),
        command=command,
        args=r.strs(c, p, "args"),
        remote_control=r.bool_(c, p, "remote_control", d.remote_control),
        isolate_config=r.bool_(c, p, "isolate_config", d.isolate_config),
        inherit_auth=r.bool_(c, p, "inherit_auth", d.inherit_auth),
        endpoint=endpoint,
    )


def _credentials(r: _Reader, data: Mapping[str, Any]) -> tuple[Credential, ...]:
    out: list[Credential] = []
    for cname, raw in r.table(("credentials",), data.get("credentials", MISSING)).items():
        p: Path_ = ("credentials", cname)
        c = r.table(p, raw)
        r.keys(p, c, ("from_env", "from_file", "from_command", "as_env", "as_file", "mode"))
        cred = Credential(
            name=cname,
            from_env=r.str_(c, p, "from_env"),
            from_file=r.str_(c, p, "from_file"),
            from_command=r.strs(c, p, "from_command"),
            as_env=r.str_(c, p, "as_env"),
            as_file=r.str_(c, p, "as_file"),
            mode=r.str_(c, p, "mode", "0600"),
        )
        sources = [s for s in (cred.from_env, cred.from_file, cred.from_command) if s]
        if len(sources) != 1 and c:
            r.err(p, "needs exactly one of from_env, from_file, from_command")
        if not (cred.as_env or cred.as_file) and c:
            r.err(p, "needs as_env or as_file (where the agent receives it)")
        if not re.fullmatch(r"0?[0-7]{3}", cred.mode):
            r.err((*p, "mode"), f"{_show(cred.mode)} is not an octal file mode like 0600")
        out.append(cred)
    return tuple(out)


# -- the whole fleet --------------------------------------------------------------------------


def build_fleet(
    docs: Mapping[str, Mapping[str, Any]],
    texts: Mapping[str, str] | None = None,
    problems: list[ConfigError] | None = None,
    broken: frozenset[str] = frozenset(),
) -> Fleet:
    """Dicts keyed by path relative to `.fleet/` -> Fleet. `texts` (same keys) give line numbers.
    Files in `broken` (already reported as unparseable) are not checked again."""
    rep = Reporter(texts, problems)
    if FLEET_TOML not in docs:
        rep.error(FLEET_TOML, (), "missing (run `gh fleet init`)")
    quiet = Reporter(None, [])
    settings = fleet_settings(docs.get(FLEET_TOML, {}), quiet if FLEET_TOML in broken else rep)
    watches, routes = routes_from(docs.get(ROUTES_TOML, {}), rep)
    agents: dict[str, Agent] = {}
    for rel in sorted(docs):
        m = AGENT_FILE.match(rel)
        if not m:
            continue
        if rel in broken:  # keep the name known so routes to it are not flagged as dangling
            agents[m.group(1)] = Agent(name=m.group(1), role="base")
            continue
        agent = agent_from(docs[rel], m.group(1), settings, rep)
        agents[agent.name] = agent
    return Fleet(**settings, agents=agents, watches=watches, routes=routes)


# One command loads the same texts several times (the working tree, the tree HEAD will hold, the
# report): parse each text once. The model never mutates these dicts.
_parse = functools.lru_cache(maxsize=4096)(parse_plain)


def load_fleet_from_texts(
    texts: Mapping[str, str], problems: list[ConfigError] | None = None
) -> Fleet:
    """TOML texts keyed by path relative to `.fleet/` ("fleet.toml", "routes.toml",
    "agents/<n>/agent.toml") -> Fleet. Works for any git revision (semantic diffs)."""
    docs: dict[str, dict[str, Any]] = {}
    broken: set[str] = set()
    for rel, text in texts.items():
        if rel not in (FLEET_TOML, ROUTES_TOML) and not AGENT_FILE.match(rel):
            continue
        try:
            docs[rel] = _parse(text, display(rel))
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(exc)
            docs[rel] = {}
            broken.add(rel)
    return build_fleet(docs, texts, problems, frozenset(broken))
