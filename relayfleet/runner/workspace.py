"""An agent's workspace: the checkout its session starts in (`[workspace]` of agent.toml).

- `clone`: a clone of the repo for this agent alone (`state/agents/<name>/workspace`), from
  `[github] clone_url` (default `https://github.com/{repo}.git`; `gh auth git-credential` is its
  credential helper, so an https clone, fetch and push use the agent's own `GH_TOKEN`).
- `worktree`: a git worktree of a clone the fleet shares (`state/repos/<owner>/<name>.git`, bare),
  one per agent; with no repo at all, a worktree of the fleet's own repository, so an agent that
  changes the fleet never touches the operator's checkout, its HEAD or its index.
  In a docker container the clone a worktree comes from lives in that agent's own state (a
  container sees no other); the fleet's own repository is there only for local agents.
- `none`: today's empty directory (`state/agents/<name>/work`).

Each agent starts on its own branch `<branch_prefix>work` (`fleet/<agent>/work` by default), made
from the remote's default branch; every branch it makes should start with its prefix, and
`validate` refuses two agents on one repo whose prefixes overlap, so no two agents ever share a
working tree or a branch.

The runner fetches (`git fetch --prune origin`: remote-tracking refs only, never the agent's
working tree, index or branches) as `fetch` says: `on-start`, or also `on-event` before a batch of
events is delivered, and then only while no delivered event awaits its ack (never mid-turn). A
failed fetch is logged and shown in `status`; delivery goes on.

All git work is the git CLI: it is on every host a workspace can live on, and its worktree and
credential-helper handling is the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.errors import FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet

START_BRANCH = "work"  # the branch a workspace starts on: <branch_prefix>work
GIT_TIMEOUT = 600.0  # a first clone of a big repository takes a while
FETCH_TIMEOUT = 120.0
# Never handed to git from the operator's environment: a workspace uses the agent's credentials.
OPERATOR_ONLY = ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")
# Git variables that would point a command at another repository than the one asked for.
GIT_LOCATION = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")
CREDENTIAL_HELPER = "!gh auth git-credential"


class WorkspaceError(FleetError):
    """A workspace could not be made, fetched, inspected or removed."""


@dataclass(frozen=True)
class Plan:
    """Where an agent's workspace is and how it is made (pure: no I/O to build one)."""

    agent: str
    mode: str  # clone | worktree | none
    path: Path  # the session's cwd
    repo: str  # owner/name; "" = the fleet's own repository
    url: str  # where it is cloned from; "" for the fleet's own repository
    prefix: str  # every branch of this agent starts with it
    fetch: str  # on-event | on-start | never
    shared: Path | None = None  # worktree: the repository it is a worktree of
    lock: Path | None = None  # worktree: held while the shared repository is changed

    @property
    def branch(self) -> str:
        return f"{self.prefix}{START_BRANCH}"

    @property
    def is_git(self) -> bool:
        return self.mode != "none"


def clone_url(fleet: Fleet, repo: str) -> str:
    return fleet.clone_url.replace("{repo}", repo)


def plan(paths: FleetPaths, fleet: Fleet, agent: Agent) -> Plan:
    ws = agent.workspace
    state = paths.agent_state(agent.name)
    repo = agent.workspace_repo
    if ws.mode == "none":
        return Plan(agent.name, "none", state / "work", repo, "", agent.branch_prefix, "never")
    path = state / "workspace"
    url = clone_url(fleet, repo) if repo else ""
    shared: Path | None = None
    if ws.mode == "worktree" and not repo:
        shared = paths.root
    elif ws.mode == "worktree" and agent.runtime.backend == "docker":
        # A container sees only its own agent's state: its "shared" clone is its own.
        owner, name = repo.split("/", 1)
        shared = state / "repos" / owner / f"{name}.git"
    elif ws.mode == "worktree":
        shared = shared_clone(paths, repo)
    lock = None
    if shared is not None:
        key = shared.name if repo else "fleet-repository"
        lock = (shared.parent if repo else paths.state / "repos") / f".{key}.lock"
    return Plan(agent.name, ws.mode, path, repo, url, agent.branch_prefix, ws.fetch, shared, lock)


def shared_clone(paths: FleetPaths, repo: str) -> Path:
    """The fleet's one bare clone of `repo`, that worktree agents share."""
    owner, name = repo.split("/", 1)
    return paths.state / "repos" / owner / f"{name}.git"


# -- git ------------------------------------------------------------------------------------------


def git_env(credentials: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's environment without the operator's GitHub tokens, plus the agent's declared
    credentials: what a clone or fetch made for the agent authenticates with."""
    env = {k: v for k, v in os.environ.items() if k not in OPERATOR_ONLY + GIT_LOCATION}
    env.update(credentials or {})
    env["GIT_TERMINAL_PROMPT"] = "0"  # a missing credential fails, it never waits for a human
    return env


def git(
    args: list[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = GIT_TIMEOUT,
    check: bool = True,
) -> str:
    try:
        res = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env) if env is not None else git_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise WorkspaceError("git is not installed (a workspace needs it)") from exc
    except subprocess.TimeoutExpired as exc:
        raise WorkspaceError(f"git {args[0]} timed out after {timeout:.0f}s in {cwd}") from exc
    if check and res.returncode != 0:
        why = (res.stderr or res.stdout).strip().splitlines()
        raise WorkspaceError(f"git {args[0]} failed in {cwd}: {why[-1] if why else res.returncode}")
    return res.stdout


def _ok(args: list[str], cwd: Path) -> str | None:
    try:
        return git(args, cwd, timeout=60).strip()
    except WorkspaceError:
        return None


def _credential_args(url: str) -> list[str]:
    """https: `gh auth git-credential` as the only helper (it reads the agent's GH_TOKEN); the
    operator's own helpers are cleared first. Other URLs (ssh, file) need none."""
    if not url.startswith("https://") or shutil.which("gh") is None:
        return []
    return ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}"]


def default_ref(repo: Path) -> str:
    """The commit a new branch starts from: the remote's default branch, else HEAD."""
    wanted = [f"refs/remotes/origin/{b}" for b in ("HEAD", "main", "master")]
    found = set((_ok(["for-each-ref", "--format=%(refname)", *wanted], repo) or "").split())
    for ref in wanted:
        if ref in found:
            return ref
    head = _ok(["symbolic-ref", "--quiet", "HEAD"], repo)  # a bare clone: its default branch
    if head and head.startswith("refs/heads/"):
        remote = "refs/remotes/origin/" + head.removeprefix("refs/heads/")
        if _ok(["rev-parse", "--verify", "--quiet", remote], repo):
            return remote
    return "HEAD"


# -- making it ------------------------------------------------------------------------------------


def ensure(p: Plan, env: Mapping[str, str] | None = None) -> Path:
    """Make the workspace unless it is there already (an existing one is never touched)."""
    env = env if env is not None else git_env()
    if p.mode == "none":
        p.path.mkdir(parents=True, exist_ok=True)
        return p.path
    dot_git = p.path / ".git"
    if dot_git.exists():
        # A clone has a .git directory, a worktree a .git file: a mode changed in agent.toml
        # never silently keeps (or throws away) the other kind.
        found = "clone" if dot_git.is_dir() else "worktree"
        if found != p.mode:
            raise WorkspaceError(
                f"{p.path} holds a {found} but [workspace] mode is now {p.mode!r}: push its"
                " work, then move that directory away (or delete it) to switch"
            )
        return p.path
    if p.path.exists() and any(p.path.iterdir()):
        raise WorkspaceError(
            f"{p.path} exists and is not a git checkout: move it away to let the runner make "
            f"{p.agent}'s workspace"
        )
    p.path.parent.mkdir(parents=True, exist_ok=True)
    if p.mode == "clone":
        try:
            _clone(p, env)
        except WorkspaceError:  # never leave half a clone for the next start to take as made
            shutil.rmtree(p.path, ignore_errors=True)
            raise
    else:
        # Agents started together (`up`) share the clone: one at a time makes it or adds to it.
        with _locked(p.lock):
            _worktree(p, env)
    return p.path


@contextlib.contextmanager
def _locked(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _clone(p: Plan, env: Mapping[str, str]) -> None:
    creds = _credential_args(p.url)
    git([*creds, "clone", "--quiet", "--", p.url, str(p.path)], p.path.parent, env)
    if creds:  # fetches and pushes made later by the runner or the session use it too
        git(["config", "credential.helper", ""], p.path, env)
        git(["config", "--add", "credential.helper", CREDENTIAL_HELPER], p.path, env)
    start = default_ref(p.path)
    git(["switch", "--quiet", "--no-track", "-c", p.branch, start], p.path, env)


def _worktree(p: Plan, env: Mapping[str, str]) -> None:
    assert p.shared is not None
    shared = p.shared
    if p.repo and not shared.exists():
        shared.parent.mkdir(parents=True, exist_ok=True)
        creds = _credential_args(p.url)
        git([*creds, "clone", "--quiet", "--bare", "--", p.url, str(shared)], shared.parent, env)
        if creds:
            git(["config", "credential.helper", ""], shared, env)
            git(["config", "--add", "credential.helper", CREDENTIAL_HELPER], shared, env)
        # A bare clone maps the remote's branches onto its own: track them as origin/* instead,
        # so each worktree's branches are its own and fetches never move them.
        git(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], shared, env)
        git(["fetch", "--quiet", "origin"], shared, env)
    git(["worktree", "prune"], shared, env)  # forget worktrees whose directory is gone
    if _ok(["rev-parse", "--verify", "--quiet", f"refs/heads/{p.branch}"], shared):
        git(["worktree", "add", "--quiet", str(p.path), p.branch], shared, env)
    else:
        start = default_ref(shared)
        git(
            ["worktree", "add", "--quiet", "--no-track", "-b", p.branch, str(p.path), start],
            shared,
            env,
        )


def fetch(p: Plan, env: Mapping[str, str] | None = None) -> bool:
    """`git fetch --prune origin`: remote-tracking refs only. False when there is no remote."""
    if not p.is_git or not (p.path / ".git").exists():
        return False
    if not _ok(["remote", "get-url", "origin"], p.path):
        return False
    git(["fetch", "--quiet", "--prune", "origin"], p.path, env, timeout=FETCH_TIMEOUT)
    return True


# -- looking at it --------------------------------------------------------------------------------


def inspect(p: Plan) -> dict[str, Any]:
    """`status`'s view: path, branch, ahead/behind (its upstream, else the remote's default
    branch), dirty (uncommitted changes, untracked files included). One `git status` when the
    branch has an upstream (`status` runs this for every agent), three when it has none."""
    out: dict[str, Any] = {"mode": p.mode, "path": str(p.path), "exists": p.path.is_dir()}
    if not p.is_git or not (p.path / ".git").exists():
        return out
    text = git(["status", "--porcelain=v2", "--branch"], p.path, timeout=60)
    heads = dict(
        line[2:].split(" ", 1)
        for line in text.splitlines()
        if line.startswith("# ") and " " in line[2:]
    )
    changes = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    branch = heads.get("branch.head")
    upstream = heads.get("branch.upstream")
    ahead = behind = None
    if upstream and "branch.ab" in heads:
        a, b = heads["branch.ab"].split()
        ahead, behind = int(a.lstrip("+")), int(b.lstrip("-"))
    else:
        against = default_ref(p.path)
        counts = (
            _ok(["rev-list", "--left-right", "--count", f"HEAD...{against}"], p.path)
            if against != "HEAD"
            else None
        )
        if counts:
            ahead, behind = (int(x) for x in counts.split())
        upstream = upstream or against.removeprefix("refs/remotes/")
    out.update(
        branch="HEAD" if branch == "(detached)" else branch,
        upstream=upstream,
        ahead=ahead,
        behind=behind,
        dirty=changes > 0,
        changes=changes,
    )
    return out


def unpushed(p: Plan) -> list[str]:
    """What removing the workspace would lose: commits on the agent's branches that no remote
    (and, for a worktree, no other branch) has, and uncommitted changes. One line each."""
    if not p.is_git or not (p.path / ".git").exists():
        return []
    lost: list[str] = []
    if p.mode == "clone":
        revs = ["HEAD", "--branches", "--not", "--remotes"]
    else:
        mine = git(
            ["for-each-ref", "--format=%(refname)", f"refs/heads/{p.prefix}"], p.path
        ).split()
        revs = ["HEAD", *mine, "--not", "--remotes", f"--exclude={p.prefix}*", "--branches"]
    log = git(["log", "--format=%h %s", *revs], p.path)
    lost += [f"commit {line}" for line in log.splitlines() if line.strip()]
    status = git(["status", "--porcelain"], p.path)
    lost += [f"uncommitted {line[3:]}" for line in status.splitlines() if line.strip()]
    return lost


def remove(p: Plan, env: Mapping[str, str] | None = None) -> bool:
    """Delete the workspace (check `unpushed` first). A worktree leaves its shared clone, and
    takes the agent's branches with it. False when there was nothing to remove."""
    if not p.path.exists():
        return False
    if p.mode == "worktree" and p.shared is not None and p.shared.exists():
        mine = git(
            ["for-each-ref", "--format=%(refname:short)", f"refs/heads/{p.prefix}"], p.shared
        ).split()
        git(["worktree", "remove", "--force", str(p.path)], p.shared, env)
        if mine:
            git(["branch", "--quiet", "-D", *mine], p.shared, env)
        return True
    shutil.rmtree(p.path)
    return True


# -- the runner's side ----------------------------------------------------------------------------


class Keeper:
    """The runner's handle on its agent's workspace: made before the session starts, fetched
    before batches, and described in runner.json (`workspace`)."""

    def __init__(self, p: Plan, log: logging.Logger) -> None:
        self.plan = p
        self.log = log
        self.env: dict[str, str] = git_env()
        self.fetched_at: float | None = None
        self.fetch_error: str | None = None
        self.fetch_failed_at: float | None = None
        self.deferred = 0  # fetches skipped because the session was mid-turn
        # What git said at the last look (status shows it for agents on other machines).
        self.view: dict[str, Any] = {}

    async def prepare(self, credentials: Mapping[str, str] | None = None) -> Path:
        self.env = git_env(credentials)
        made = not (self.plan.path / ".git").exists() and self.plan.is_git
        what = self.plan.repo or "the fleet's repository"
        if made:  # a first clone of a big repository takes a while: say what is going on
            self.log.info(
                "workspace: making a %s of %s at %s", self.plan.mode, what, self.plan.path
            )
        path = await asyncio.to_thread(ensure, self.plan, self.env)
        if made:
            self.log.info("workspace: %s of %s ready on %s", self.plan.mode, what, self.plan.branch)
        elif self.plan.fetch in ("on-start", "on-event"):
            await self.fetch()
        await self.look()
        return path

    async def look(self) -> None:
        try:
            self.view = await asyncio.to_thread(inspect, self.plan)
        except FleetError as exc:
            self.view = {"error": str(exc)}

    async def before_batch(self, mid_turn: bool) -> None:
        """`fetch = "on-event"`: fetch before the next batch is delivered, unless the session
        is still working on one (a delivered event not yet acknowledged)."""
        if self.plan.fetch != "on-event" or not self.plan.is_git:
            return
        if mid_turn:
            self.deferred += 1
            return
        await self.fetch()
        await self.look()

    async def fetch(self) -> None:
        try:
            if await asyncio.to_thread(fetch, self.plan, self.env):
                self.fetched_at = time.time()
            self.fetch_error = None
            self.fetch_failed_at = None
        except FleetError as exc:
            self.fetch_error = str(exc)
            self.fetch_failed_at = time.time()
            self.log.warning("workspace fetch failed (delivery goes on): %s", exc)

    def status(self) -> dict[str, Any]:
        seen = ("branch", "upstream", "ahead", "behind", "dirty", "changes", "error")
        return {
            **{k: self.view[k] for k in seen if k in self.view},
            "mode": self.plan.mode,
            "path": str(self.plan.path),
            "branch_prefix": self.plan.prefix,
            "fetch": self.plan.fetch,
            "fetched_at": self.fetched_at,
            "fetch_error": self.fetch_error,
            "fetch_failed_at": self.fetch_failed_at,
            "deferred": self.deferred,
        }


def facts(p: Plan, reported: Mapping[str, Any] | None, local: bool) -> dict[str, Any]:
    """`status --json`'s `workspace` of one agent: what git says of it now (when it is on this
    machine) and what its runner last reported (fetch time and error)."""
    out: dict[str, Any] = {"mode": p.mode, "path": str(p.path), "branch_prefix": p.prefix}
    rep = dict(reported or {})
    if local:
        try:
            out.update(inspect(p))
        except FleetError as exc:
            out["error"] = str(exc)
    else:
        out["path"] = rep.get("path") or out["path"]
        out.update({k: rep[k] for k in ("branch", "ahead", "behind", "dirty") if k in rep})
    for k in ("fetched_at", "fetch_error", "fetch_failed_at", "deferred"):
        out[k] = rep.get(k)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m relayfleet.runner.workspace <root> <agent> check|remove`: what remove-agent
    asks of a workspace on another host (the ssh backend runs it there). Prints JSON:
    `{"lost": [...]}` or `{"removed": true|false}`."""
    import json
    import sys

    from relayfleet.fleet.load import load_fleet

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[2] not in ("check", "remove"):
        print("usage: python -m relayfleet.runner.workspace <root> <agent> check|remove")
        return 2
    paths = FleetPaths(Path(args[0]).resolve())
    try:
        fleet = load_fleet(paths)
        p = plan(paths, fleet, fleet.agent(args[1]))
    except FleetError:  # the agent never ran here: there is no workspace
        print(json.dumps({"lost": []} if args[2] == "check" else {"removed": False}))
        return 0
    if args[2] == "check":
        print(json.dumps({"lost": unpushed(p)}))
    else:
        print(json.dumps({"removed": remove(p)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
