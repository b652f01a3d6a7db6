"""`gh fleet doctor`: one line per finding, ✓ / ! / ✗; exit 1 if any ✗.

Checks are plain functions in CHECKS, each `(Doctor) -> list[Result]`; add one by appending to
the list (host checks append one result per host).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.core.paths import FleetPaths
    from relayfleet.fleet.model import Fleet

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}


@dataclass(frozen=True)
class Result:
    status: str  # ok | warn | fail
    name: str
    detail: str
    hints: tuple[str, ...] = ()


@dataclass
class Doctor:
    """What the checks share: the context, and the fleet loaded once (or why it did not load)."""

    ctx: Context
    _loaded: bool = False
    _fleet: Fleet | None = None
    load_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> FleetPaths | None:
        from relayfleet.core.errors import FleetError

        try:
            return self.ctx.paths
        except FleetError:  # no fleet here: the config check reports it
            return None

    @property
    def fleet(self) -> Fleet | None:
        from relayfleet.core.errors import FleetError

        if not self._loaded:
            self._loaded = True
            try:
                self._fleet = self.ctx.load()
            except FleetError as exc:
                self.load_error = str(exc)
        return self._fleet


Check = Callable[[Doctor], list[Result]]


def _version(cmd: str, env: dict[str, str]) -> tuple[bool, str]:
    """(ran fine, its version line or why not): a program that crashes is not installed well."""
    try:
        proc = subprocess.run(
            [cmd, "--version"], capture_output=True, text=True, timeout=20, env=env
        )
    except subprocess.TimeoutExpired:
        return False, "`--version` did not answer within 20 s"
    except OSError as exc:
        return False, f"cannot run it: {exc.strerror or exc}"
    if proc.returncode != 0:
        # The last line of a traceback or an error message says the most.
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = lines[-1].strip() if lines else "no output"
        return False, f"`--version` exited {proc.returncode}: {why}"
    first = (proc.stdout or proc.stderr).strip().splitlines()
    return True, first[0] if first else "(no version output)"


def _tool(name: str, why: str, hint: str) -> Check:
    def check(doc: Doctor) -> list[Result]:
        path = shutil.which(name, path=doc.ctx.env.get("PATH"))
        if not path:
            return [Result(FAIL, name, f"not on PATH ({why})", (hint,))]
        ok, text = _version(path, doc.ctx.env)
        if not ok:
            return [Result(FAIL, name, f"{text} ({path})", (hint,))]
        return [Result(OK, name, f"{text} ({path})")]

    return check


def check_git(doc: Doctor) -> list[Result]:
    from relayfleet.core.errors import FleetError
    from relayfleet.fleet.gitops import repo_state

    paths = doc.paths
    if paths is None:
        return []
    try:
        st = repo_state(paths.root)
    except FleetError as exc:
        return [Result(FAIL, "git", str(exc), tuple(exc.hints))]
    where = f"branch {st.branch}" if st.branch else "detached HEAD"
    head = st.head[:7] if st.head else "no commits yet"
    out = [Result(OK, "git", f"{st.workdir}: {where} at {head}")]
    if st.fleet_dirty:
        shown = ", ".join(st.fleet_dirty[:3]) + (" …" if len(st.fleet_dirty) > 3 else "")
        out.append(
            Result(
                WARN,
                "git .fleet/",
                f"{len(st.fleet_dirty)} uncommitted change(s): {shown}",
                ("review with `gh fleet diff`, then commit them",),
            )
        )
    if not st.state_ignored:
        out.append(
            Result(
                FAIL,
                "git .fleet/state/",
                "runtime state is not gitignored",
                ("add the line `state/` to .fleet/.gitignore",),
            )
        )
    return out


def check_config(doc: Doctor) -> list[Result]:
    from relayfleet.core.errors import FleetError

    paths = doc.paths
    if paths is None:
        try:
            doc.ctx.paths  # noqa: B018  (re-raise for its message)
        except FleetError as exc:
            return [Result(FAIL, "config", str(exc), tuple(exc.hints))]
        return [Result(FAIL, "config", "no fleet here")]
    try:
        from relayfleet.fleet.validate import validate

        problems = validate(paths)
    except FleetError as exc:
        return [Result(FAIL, "config", str(exc), tuple(exc.hints))]
    errors = [p for p in problems if getattr(p, "level", "error") == "error"]
    warnings = [p for p in problems if getattr(p, "level", "error") != "error"]
    if errors:
        return [
            Result(
                FAIL, "config", f"{len(errors)} error(s): {errors[0]}", ("run `gh fleet validate`",)
            )
        ]
    fleet = doc.fleet
    if fleet is None:
        return [Result(FAIL, "config", doc.load_error or "the fleet does not load")]
    detail = (
        f".fleet/ is valid: {len(fleet.agents)} agent(s), {len(fleet.watches)} watch(es), "
        f"{len(fleet.routes)} route(s)"
    )
    out = [Result(OK, "config", detail)]
    # One finding per line: a warning each, never a joined paragraph.
    out += [Result(WARN, "config", str(w), ("run `gh fleet validate`",)) for w in warnings]
    return out


def check_ports(doc: Doctor) -> list[Result]:
    fleet = doc.fleet
    if fleet is None:
        return []
    by_port: dict[int, list[str]] = {}
    for a in fleet.agents.values():
        by_port.setdefault(a.port, []).append(a.name)
    clashes = {p: sorted(n) for p, n in by_port.items() if len(n) > 1}
    if clashes:
        text = "; ".join(f"{p}: {', '.join(n)}" for p, n in sorted(clashes.items()))
        return [
            Result(
                FAIL, "ports", f"agents share a port ({text})", ("give each agent its own port",)
            )
        ]
    return [Result(OK, "ports", f"{len(by_port)} agent port(s), no collisions")]


def check_routes(doc: Doctor) -> list[Result]:
    from relayfleet.cli.commands.route import route_problems

    fleet = doc.fleet
    if fleet is None:
        return []
    from relayfleet.core.visibility import public_repos

    problems = route_problems(fleet, public=public_repos(doc.paths) if doc.paths else ())
    errors = [p["message"] for p in problems if p["level"] == "error"]
    warns = [p["message"] for p in problems if p["level"] != "error"]
    if errors or warns:
        return [Result(FAIL, "routes", m, ("see `gh fleet route`",)) for m in errors] + [
            Result(WARN, "routes", m, ("see `gh fleet route`",)) for m in warns
        ]
    return [Result(OK, "routes", f"{len(fleet.routes)} route(s), none dangling")]


def check_hosts(doc: Doctor) -> list[Result]:
    fleet = doc.fleet
    if fleet is None:
        return []
    bad = []
    for a in sorted(fleet.agents.values(), key=lambda a: a.name):
        host = a.runtime.host
        if host and host not in fleet.hosts:
            bad.append(f"{a.name} → {host!r}")
        elif a.runtime.backend == "ssh" and not host:
            bad.append(f"{a.name} (ssh backend, no host)")
    if bad:
        known = ", ".join(sorted(fleet.hosts)) or "none"
        return [
            Result(
                FAIL,
                "hosts",
                f"agent on an unknown host: {b} (hosts: {known})",
                ("add it: gh fleet host add <name> --backend ssh --host user@addr",),
            )
            for b in bad
        ]
    return [Result(OK, "hosts", f"{len(fleet.hosts)} host(s), every agent's host is known")]


_check_claude_code = _tool(
    "claude",
    "agents run Claude Code",
    "install Claude Code: npm i -g @anthropic-ai/claude-code",
)


def check_claude(doc: Doctor) -> list[Result]:
    """The program each local agent's session runs: `claude` unless `[claude] command` says else.

    A fleet whose agents all run another program (the fake claude, a wrapper) does not need
    Claude Code on PATH; remote agents' programs are checked on their hosts (`host check`).
    """
    fleet = doc.fleet
    local = [a for a in fleet.agents.values() if a.runtime.backend == "local"] if fleet else []
    programs: dict[str, list[str]] = {}
    for a in sorted(local, key=lambda a: a.name):
        programs.setdefault(a.claude.command[0] if a.claude.command else "claude", []).append(
            a.name
        )
    if not programs or "claude" in programs:
        return _check_claude_code(doc)
    out = []
    for program, agents in sorted(programs.items()):
        path = shutil.which(program, path=doc.ctx.env.get("PATH"))
        who = ", ".join(agents)
        if path:
            out.append(Result(OK, "claude", f"{who} run {path} ([claude] command)"))
        else:
            hint = "fix `[claude] command` in their agent.toml, or install it"
            out.append(Result(FAIL, "claude", f"{who}: {program!r} not found", (hint,)))
    return out


def check_github(doc: Doctor) -> list[Result]:
    """The token the router would use, with one free request; then each watched repo with it."""
    from relayfleet.core.errors import GitHubError
    from relayfleet.router.github import api_host, resolve_api_url, resolve_token
    from relayfleet.router.token_check import TokenChecker

    fleet = doc.fleet
    try:
        api_url = resolve_api_url(doc.ctx.env, fleet.api_url if fleet else None)
        token = resolve_token(doc.ctx.env, api_host(api_url))
    except GitHubError as exc:
        return [Result(FAIL, "github token", str(exc), tuple(exc.hints))]
    with TokenChecker(api_url, token) as gh:
        rep = gh.token()
        if not rep.valid:
            what = f"{rep.status} {rep.message}" if rep.status else rep.message
            hint = "set GH_TOKEN to a valid token, or run `gh auth login`"
            return [Result(FAIL, "github token", f"rejected by {api_url}: {what}", (hint,))]
        scopes = (
            "scopes not reported (fine-grained or app token)"
            if rep.scopes is None
            else f"scopes: {', '.join(rep.scopes) or 'none'}"
        )
        budget = f"{rep.remaining} of {rep.limit} requests left this hour"
        low = rep.remaining is not None and rep.limit and rep.remaining < rep.limit // 10
        out = [
            Result(
                WARN if low else OK,
                "github token",
                f"valid at {api_url}; {scopes}; {budget}",
                ("the router slows its polling until the hour resets",) if low else (),
            )
        ]
        repos = sorted({w.repo for w in fleet.watches if w.repo}) if fleet else []
        for repo in repos:
            r = gh.repo(repo)
            if r.reachable:
                out.append(Result(OK, "github repo", f"{repo}: reachable with this token"))
            else:
                what = f"{r.status} {r.message}" if r.status else r.message
                hint = f"check the name in routes.toml, and that the token can read {repo}"
                out.append(Result(FAIL, "github repo", f"{repo}: not reachable ({what})", (hint,)))
    return out


def check_workspaces(doc: Doctor) -> list[Result]:
    """Each local agent's workspace: made and on which branch, or where it will come from; a
    fetch its runner reported failing."""
    from pathlib import Path

    from relayfleet.cli.agent_facts import workspace_facts
    from relayfleet.core.atomic import read_json

    fleet, paths = doc.fleet, doc.paths
    if fleet is None or paths is None:
        return []
    out = []
    for a in sorted(fleet.agents.values(), key=lambda a: a.name):
        if a.workspace.mode == "none" or a.runtime.backend != "local":
            continue
        reported = (read_json(paths.runner_status(a.name), {}) or {}).get("workspace")
        w = workspace_facts(paths, fleet, a, reported)
        where = f"{a.name}: {a.workspace.mode} {paths.rel(Path(w['path']))}"
        if w.get("error"):
            out.append(Result(FAIL, "workspace", f"{where}: {w['error']}"))
        elif w.get("branch"):
            state = "dirty" if w.get("dirty") else "clean"
            out.append(Result(OK, "workspace", f"{where} on {w['branch']} ({state})"))
        else:
            src = a.workspace_repo or "the fleet's repository"
            out.append(Result(OK, "workspace", f"{where}: made from {src} at the next start"))
        if w.get("fetch_error"):
            out.append(
                Result(
                    WARN,
                    "workspace",
                    f"{a.name}: the last fetch failed: {w['fetch_error']}",
                    ("check [github] clone_url in .fleet/fleet.toml and the agent's credentials",),
                )
            )
    return out


CHECKS: list[Check] = [
    check_claude,
    _tool(
        "gh",
        "the router reads GitHub tokens from it",
        "install the GitHub CLI: https://cli.github.com",
    ),
    check_git,
    check_config,
    check_github,
    check_ports,
    check_routes,
    check_hosts,
    check_workspaces,
]


def check_remote_hosts(doc: Doctor) -> list[Result]:
    """`host check` for every host (reachability, python, workdir, tmux, runner version)."""
    from relayfleet.backends.hostcheck import check_host

    fleet = doc.fleet
    if fleet is None or doc.paths is None:
        return []
    return [
        Result(i.status, f"host {name}: {i.name}", i.detail, i.hints)
        for name in sorted(fleet.hosts)
        for i in check_host(doc.paths, fleet, name)
    ]


CHECKS.append(check_remote_hosts)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check the environment and the fleet's config")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run_checks(ctx: Context, checks: list[Check] | None = None) -> list[Result]:
    doc = Doctor(ctx)
    results: list[Result] = []
    for check in CHECKS if checks is None else checks:
        try:
            results += check(doc)
        except Exception as exc:  # one broken check must not hide the others
            name = getattr(check, "__name__", "check").removeprefix("check_")
            results.append(
                Result(FAIL, name, f"the check itself failed: {type(exc).__name__}: {exc}")
            )
    return results


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json

    results = run_checks(ctx)
    failed = any(r.status == FAIL for r in results)
    if args.json:
        print_json(
            ctx.out,
            [
                {"status": r.status, "name": r.name, "detail": r.detail, "hints": list(r.hints)}
                for r in results
            ],
        )
        return 1 if failed else 0
    for r in results:
        print(f"{MARKS[r.status]} {r.name}: {r.detail}", file=ctx.out)
        if r.status != OK:
            for hint in r.hints:
                print(f"    hint: {hint}", file=ctx.out)
    return 1 if failed else 0
