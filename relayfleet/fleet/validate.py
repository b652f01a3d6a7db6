"""`gh fleet validate`: every file under `.fleet/` against the schema and against each other.

Collects every problem (never stops at the first): TOML syntax, types, unknown keys, dangling
references, duplicates, unparseable watch filters, catch-all routes, missing personas.
`check_fleet` is the cross-file half, usable on any loaded Fleet (`route` and `doctor` use it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from relayfleet.core.addresses import is_loopback, listen_ok, split_listen
from relayfleet.core.errors import ConfigError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.visibility import public_repos
from relayfleet.fleet.model import ROUTER_MIN_POLL_SEC, Fleet, Route
from relayfleet.fleet.schema import (
    FLEET_TOML,
    ROUTES_TOML,
    display,
    dotted,
    load_fleet_from_texts,
)
from relayfleet.fleet.toml_read import line_of

MIN_POLL_SEC = 60  # below this a watch burns the hourly budget for little gain


@dataclass(frozen=True)
class Problem:
    level: str  # "error" | "warning"
    message: str
    file: str = ""  # e.g. ".fleet/routes.toml"
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file
        return (
            f"{where}: {self.level}: {self.message}" if where else f"{self.level}: {self.message}"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def from_error(exc: ConfigError) -> Problem:
    return Problem("error", exc.detail, exc.file or "", exc.line)


class _Sink:
    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = texts
        self.out: list[Problem] = []

    def add(self, level: str, rel: str, path: tuple[str | int, ...], message: str) -> None:
        line = line_of(self.texts[rel], path) if rel in self.texts and path else None
        where = dotted(path)
        self.out.append(
            Problem(level, f"{where}: {message}" if where else message, display(rel), line)
        )


def check_fleet(
    fleet: Fleet,
    texts: Mapping[str, str] | None = None,
    recency: Mapping[str, float] | None = None,
    public: Collection[str] = (),
) -> list[Problem]:
    """Cross-file checks on a loaded fleet (pure). `texts` (keyed like `load_fleet_from_texts`)
    only add line numbers; `recency` (same keys, higher = changed later) decides which file of
    a collision is reported: the one changed last, naming the other. `public`: repositories
    (owner/name, lower case) known to be public, whose ungated routes are flagged."""
    from relayfleet.fleet.filters import parse_filter

    s = _Sink(texts or {})
    seen: dict[str, int] = {}
    for i, w in enumerate(fleet.watches):
        if w.name in seen:
            s.add(
                "error",
                ROUTES_TOML,
                ("watch", i, "name"),
                f"duplicate watch name {w.name!r} (also watch[{seen[w.name] + 1}])",
            )
        seen.setdefault(w.name, i)
        try:
            parse_filter(w.kind, w.filter)
        except ConfigError as exc:
            s.add("error", ROUTES_TOML, ("watch", i, "filter"), exc.detail)
        if w.poll_sec < ROUTER_MIN_POLL_SEC:
            s.add(
                "warning",
                ROUTES_TOML,
                ("watch", i, "poll_sec"),
                f"poll_sec = {w.poll_sec} is raised to {ROUTER_MIN_POLL_SEC} s, the router's "
                "minimum (`watch add` refuses it)",
            )
        elif w.poll_sec < MIN_POLL_SEC:
            s.add(
                "warning",
                ROUTES_TOML,
                ("watch", i, "poll_sec"),
                f"{w.poll_sec} s is very frequent; {MIN_POLL_SEC} s or more keeps the rate "
                "limit healthy",
            )
    used: set[str] = set()
    for r in fleet.routes:
        i = r.index - 1
        if r.catch_all:
            s.add(
                "warning",
                ROUTES_TOML,
                ("route", i),
                "catch-all route (empty match): every item of every watch goes to "
                + ", ".join(r.to),
            )
        for name in r.match.get("watch", ()):
            used.add(name)
            if name not in seen:
                s.add(
                    "error",
                    ROUTES_TOML,
                    ("route", i, "match", "watch"),
                    f"no watch named {name!r}" + _known(seen),
                )
        if "watch" not in r.match:
            used.update(seen)
        for name in r.to:
            if name not in fleet.agents:
                s.add(
                    "error",
                    ROUTES_TOML,
                    ("route", i, "to"),
                    f"no agent named {name!r}" + _known(fleet.agents),
                )
        if len(set(r.to)) != len(r.to):
            s.add("warning", ROUTES_TOML, ("route", i, "to"), "lists an agent twice")
        _gate_checks(s, fleet, r, public)
    for i, w in enumerate(fleet.watches):
        if w.name not in used:
            s.add(
                "warning",
                ROUTES_TOML,
                ("watch", i),
                f"watch {w.name!r} is polled but no route delivers its items",
            )
    ports: dict[int, str] = {}
    when = recency or {}

    def changed_last(name: str) -> tuple[float, str]:
        return (when.get(f"agents/{name}/agent.toml", 0.0), name)

    for name in sorted(fleet.agents, key=changed_last):
        a = fleet.agents[name]
        rel = f"agents/{name}/agent.toml"
        if a.port and a.port in ports:
            other = ports[a.port]
            s.add(
                "error",
                rel,
                ("port",),
                f"port {a.port} is also used by {other} ({display(f'agents/{other}/agent.toml')})",
            )
        elif a.port:
            ports[a.port] = name
        rt = a.runtime
        if rt.host and rt.host not in fleet.hosts:
            s.add(
                "error",
                rel,
                ("runtime", "host"),
                f"no host named {rt.host!r}"
                + _known(fleet.hosts)
                + " (add it with `gh fleet host add`)",
            )
        elif rt.host and fleet.hosts[rt.host].backend != rt.backend:
            s.add(
                "error",
                rel,
                ("runtime", "backend"),
                f"{rt.backend!r} but host {rt.host!r} is a {fleet.hosts[rt.host].backend} host",
            )
        if rt.backend == "ssh" and not rt.host:
            s.add("error", rel, ("runtime", "host"), 'required when backend = "ssh"')
        if rt.inbox_transport == "shared" and not rt.shared_path:
            s.add(
                "error", rel, ("runtime", "shared_path"), 'required when inbox_transport = "shared"'
            )
        ep = a.claude.endpoint
        if (ep.mode == "gateway" or ep.via_gateway) and not fleet.gateway.enabled:
            s.add(
                "warning",
                rel,
                ("claude", "endpoint", "mode"),
                "routes through the gateway, but [gateway] enabled = false in fleet.toml",
            )
        for stage in ep.stages:
            if stage not in fleet.gateway.stages:
                s.add(
                    "error",
                    rel,
                    ("claude", "endpoint", "stages"),
                    f"no gateway stage named {stage!r}" + _known(fleet.gateway.stages),
                )
        if a.claude.engine == "claude" and not a.claude.command:
            s.add("error", rel, ("claude", "command"), "must name the program to run")
        _session_checks(s, rel, a)
    for name in sorted(fleet.agents):
        a = fleet.agents[name]
        if a.workspace.mode == "worktree" and not a.workspace_repo and a.runtime.backend != "local":
            s.add(
                "error",
                f"agents/{name}/agent.toml",
                ("workspace", "mode"),
                "a worktree of the fleet's own repository needs a local agent"
                f' (this one runs on {a.runtime.backend}): set [workspace] repo, or mode = "clone"',
            )
    _branch_overlaps(s, fleet, changed_last)
    _webhook_checks(fleet, s)
    return s.out


def _webhook_checks(fleet: Fleet, s: _Sink) -> None:
    wh = fleet.webhook
    parts = split_listen(wh.listen)
    if not wh.enabled or parts is None or not listen_ok(wh.listen):
        return  # (a malformed address is the schema's error)
    if not is_loopback(parts[0]):
        s.add("warning", FLEET_TOML, ("webhook", "listen"),
              f"{wh.listen} is reachable beyond this machine; a reverse proxy or tunnel in front "
              "of a loopback address is safer (docs/webhooks.md)")  # fmt: skip


def _branch_overlaps(s: _Sink, fleet: Fleet, order: Callable[[str], tuple[float, str]]) -> None:
    """Two agents with a workspace of the same repo never share a branch: neither's
    branch_prefix may start the other's. The agent changed last is the one flagged."""
    seen: list[tuple[str, str, str]] = []  # (repo, prefix, agent)
    for name in sorted(fleet.agents, key=order):
        a = fleet.agents[name]
        if a.workspace.mode == "none":
            continue
        repo, prefix = a.workspace_repo, a.branch_prefix
        for other_repo, other_prefix, other in seen:
            if repo == other_repo and (
                prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
            ):
                s.add(
                    "error",
                    f"agents/{name}/agent.toml",
                    ("workspace", "branch_prefix"),
                    f"{prefix!r} overlaps {other}'s {other_prefix!r} on the same repo"
                    " (two agents never share a branch)",
                )
                break
        else:
            seen.append((repo, prefix, name))


def _gate_checks(s: _Sink, fleet: Fleet, r: Route, public: Collection[str]) -> None:
    """A route that holds without a gate holds nothing; a route without a gate on a public
    repository lets anyone on the internet write into an agent's session."""
    i = r.index - 1
    if r.untrusted == "hold" and not r.gated:
        s.add(
            "warning",
            ROUTES_TOML,
            ("route", i, "untrusted"),
            'untrusted = "hold" does nothing without an association gate in [route.match]',
        )
    if r.gated or not public:
        return
    names = set(r.match.get("watch", ())) or {w.name for w in fleet.watches}
    # Workflow runs carry no author association (a gate would stop every run), and their
    # text is the workflow's, not an outsider's: only issues, PRs and notifications count.
    exposed = sorted(
        {
            w.repo
            for w in fleet.watches
            if w.name in names and w.kind != "runs" and w.repo.lower() in public
        }
    )
    if exposed:
        s.add(
            "warning",
            ROUTES_TOML,
            ("route", i),
            f"no association gate, and {', '.join(exposed)} is public: anyone's issue, PR or "
            "comment reaches " + ", ".join(r.to) + ' (add association = ["OWNER", "MEMBER", '
            '"COLLABORATOR"] and untrusted = "hold")',
        )


def _session_checks(s: _Sink, rel: str, a: Any) -> None:
    """[permissions] and [runtime] idle sleep: what the session can actually honour."""
    perms = a.permissions
    if perms.mode == "policy" and a.claude.engine != "claude":
        s.add(
            "warning",
            rel,
            ("permissions", "mode"),
            f'"policy" needs the claude engine (hooks); a {a.claude.engine!r} session is not asked',
        )
    if perms.mode != "policy" and (perms.allow or perms.deny or perms.ask):
        s.add(
            "warning",
            rel,
            ("permissions", "mode"),
            'rules are only enforced with mode = "policy"',
        )
    for rule in set(perms.allow) & set(perms.deny):
        s.add("warning", rel, ("permissions", "allow"), f"{rule!r} is also denied (deny wins)")


def _known(names: Mapping[str, Any] | set[str] | dict[str, int]) -> str:
    return f" (known: {', '.join(sorted(names))})" if names else " (none defined)"


def _file_checks(paths: FleetPaths, texts: Mapping[str, str]) -> list[Problem]:
    out: list[Problem] = []
    if paths.agents.is_dir():
        for d in sorted(paths.agents.iterdir()):
            if not d.is_dir():
                continue
            rel = f"agents/{d.name}"
            if not (d / "agent.toml").is_file():
                out.append(Problem("warning", "directory without an agent.toml", display(rel)))
            elif not (d / "CLAUDE.md").is_file():
                out.append(
                    Problem(
                        "warning",
                        "no CLAUDE.md persona: the agent starts with no instructions",
                        display(f"{rel}/CLAUDE.md"),
                    )
                )
    gi = paths.fleet / ".gitignore"
    try:
        ignores = gi.read_text(encoding="utf-8").split()
    except OSError:
        ignores = []
    if not any(x.strip("/") == "state" for x in ignores):
        out.append(
            Problem(
                "warning",
                "does not ignore state/ (runtime state must never be committed)",
                display(".gitignore"),
            )
        )
    if FLEET_TOML not in texts:
        out.append(Problem("error", "missing (run `gh fleet init`)", display(FLEET_TOML)))
    return out


def validate_texts(
    texts: Mapping[str, str],
    recency: Mapping[str, float] | None = None,
    public: Collection[str] = (),
    *,
    locate: bool = True,
) -> list[Problem]:
    """Schema and cross-file problems of a fleet given as texts (any git revision).
    `locate=False` skips finding the lines of cross-file problems (a yes/no check)."""
    errors: list[ConfigError] = []
    fleet = load_fleet_from_texts(texts, errors)
    problems = [from_error(e) for e in errors if not _is_missing_fleet(e)]
    return problems + check_fleet(fleet, texts if locate else None, recency, public)


def recency(paths: FleetPaths, texts: Mapping[str, str]) -> dict[str, float]:
    """How recently each config file changed: its mtime, and files that differ from HEAD
    (`git status`) after every committed one."""
    from relayfleet.core.errors import FleetError

    out: dict[str, float] = {}
    for rel in texts:
        try:
            out[rel] = (paths.fleet / rel).stat().st_mtime
        except OSError:
            continue
    try:
        from relayfleet.fleet.gitops import differs_from_head

        dirty = differs_from_head(paths.root, [paths.agents]) if paths.agents.is_dir() else []
    except FleetError:
        return out  # not a git repository: mtimes alone
    for path in dirty:
        rel = path.split("/", 1)[1] if path.startswith(".fleet/") else path
        if rel in out:
            out[rel] += 1e12  # uncommitted: changed after anything in HEAD
    return out


def _is_missing_fleet(e: ConfigError) -> bool:
    return e.file == display(FLEET_TOML) and e.detail.startswith("missing (run")


def validate(paths: FleetPaths) -> list[Problem]:
    """Every problem of the fleet on disk, errors and warnings, in file order."""
    from relayfleet.fleet.load import read_texts

    texts = read_texts(paths)
    public = public_repos(paths)  # what the router learnt; validate itself stays offline
    problems = validate_texts(texts, recency(paths, texts), public) + _file_checks(paths, texts)
    files = [FLEET_TOML, ROUTES_TOML, *sorted(set(texts) - {FLEET_TOML, ROUTES_TOML})]
    order = {display(rel): n for n, rel in enumerate(files)}
    return sorted(
        problems,
        key=lambda p: (order.get(p.file, len(order)), p.file, p.line or 0),
    )


def has_errors(problems: list[Problem]) -> bool:
    return any(p.level == "error" for p in problems)


__all__ = ["Problem", "check_fleet", "has_errors", "validate", "validate_texts"]
