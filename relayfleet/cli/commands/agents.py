"""`gh fleet new-agent`, `remove-agent`, `list`: the agents of the fleet."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context
from relayfleet.cli.edit_flags import add_edit_flags, edit_options

if TYPE_CHECKING:
    from pathlib import Path

    from relayfleet.fleet.model import Agent, Fleet
    from relayfleet.runner.workspace import Plan

ROLES = ("coder", "reviewer", "manager", "orchestrator", "base")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "new-agent",
        help="scaffold an agent (agent.toml + CLAUDE.md, a port, a starter route)",
        description="Scaffold .fleet/agents/<name>/ from the role's template, allocate the next "
        "free port, and for coder/reviewer/manager with --repo add a starter watch and route. "
        "Makes one git commit.",
    )
    p.add_argument("name", help="lowercase letters, digits and '-' (e.g. wms-coder)")
    p.add_argument("--role", required=True, metavar="ROLE", help=f"one of {', '.join(ROLES)}")
    p.add_argument("--repo", help="the GitHub repo it works on (owner/name)")
    p.add_argument("--model", help="Claude model (default: [defaults] model of fleet.toml)")
    p.add_argument("--no-route", action="store_true", help="add no starter watch/route")
    p.add_argument(
        "--no-remote", action="store_true", help="disable Remote Control for its session"
    )
    p.add_argument("--force", action="store_true", help="re-scaffold an existing agent")
    p.add_argument("--backend", choices=("local", "docker", "ssh"), help="where its runner runs")
    p.add_argument("--host", help="a host of fleet.toml (`gh fleet host add`) for docker/ssh")
    p.add_argument(
        "--inbox-transport",
        choices=("file", "shared", "ssh", "http"),
        help="how the router reaches its inbox (default: file; ssh for ssh agents)",
    )
    p.add_argument(
        "--endpoint",
        choices=("default", "custom", "gateway"),
        default="default",
        help="where its Claude session talks (default: Anthropic directly)",
    )
    p.add_argument("--endpoint-url", metavar="URL", help="custom endpoint, or gateway upstream")
    p.add_argument("--no-commit", action="store_true", help="write the files but do not commit")
    add_edit_flags(p)
    p.set_defaults(func=run_new)

    r = sub.add_parser(
        "remove-agent",
        help="delete an agent's config (refuses while routes name it)",
        description="Delete .fleet/agents/<name>/. Refuses while routes send to it, unless "
        "--prune-routes. Makes one git commit.",
    )
    r.add_argument("name", help="the agent to remove (see `gh fleet list`)")
    r.add_argument(
        "--prune-routes",
        action="store_true",
        help="also take it out of routes (dropping routes and watches left unused)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="also remove its workspace when it holds commits not pushed or uncommitted changes",
    )
    r.add_argument("--no-commit", action="store_true", help="change the files but do not commit")
    add_edit_flags(r)
    r.set_defaults(func=run_remove)

    ls = sub.add_parser("list", help="agents with role, port, model, repo, backend")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)


def run_new(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.core.errors import FleetError
    from relayfleet.fleet import txn
    from relayfleet.fleet.gitops import fleet_log, head_commit
    from relayfleet.fleet.scaffold import new_agent

    if args.role not in ROLES:
        raise FleetError(f"unknown role {args.role!r} (roles: {', '.join(ROLES)})")
    paths = ctx.paths
    opts = edit_options(ctx, args)
    # The report (port, commit) is read under the same lock as the edit, so it names this
    # command's commit even while other edits run in parallel.
    with txn.locked(paths, opts):
        before = head_commit(paths.root)
        existed = paths.agent_toml(args.name).is_file() if args.force else False
        changed = new_agent(
            paths,
            args.name,
            role=args.role,
            repo=args.repo,
            model=args.model,
            route=not args.no_route,
            remote=not args.no_remote,
            force=args.force,
            backend=args.backend,
            host=args.host,
            inbox_transport=args.inbox_transport,
            endpoint=args.endpoint,
            endpoint_url=args.endpoint_url,
            commit=not args.no_commit,
            edit=opts,
        )
        agent = ctx.load().agents[args.name]
        verb = "Re-scaffolded" if existed else "Created"
        print(f"{verb} agent {agent.name} ({agent.role}) on port {agent.port}", file=ctx.out)
        for path in changed:
            print(f"  {paths.rel(path)}", file=ctx.out)
        if agent.workspace.mode != "none":
            src = agent.workspace_repo or "the fleet's repository"
            print(
                f"  workspace: a {agent.workspace.mode} of {src} on {agent.branch_prefix}work"
                " (made at its first start)",
                file=ctx.out,
            )
        if paths.routes_toml in changed:
            print("  starter watch + route added (see `gh fleet route`)", file=ctx.out)
        elif args.role in ("coder", "reviewer", "manager") and not args.repo and not args.no_route:
            print("  no route: give it --repo, or add one with `gh fleet route add`", file=ctx.out)
        if not args.no_commit and head_commit(paths.root) != before:
            # Like every other editing command: say which commit holds the change.
            last = fleet_log(paths.root, n=1)[0]
            print(f"Committed {last.short}: {last.subject}", file=ctx.out)
    print(f"Next: gh fleet start {agent.name} (a running `gh fleet up` starts it)", file=ctx.out)
    return 0


def run_remove(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet import txn
    from relayfleet.fleet.gitops import fleet_log, head_commit
    from relayfleet.fleet.scaffold import remove_agent

    paths = ctx.paths
    opts = edit_options(ctx, args)
    fleet = ctx.load()
    agent = fleet.agent(args.name)  # an unknown name: NotFound listing the agents
    from relayfleet.runner import workspace

    ws = workspace.plan(paths, fleet, agent)
    if ws.is_git and not args.force:
        _refuse_unpushed(ctx, fleet, agent, ws)
    if args.prune_routes or not any(agent.name in r.to for r in fleet.routes):
        # A running agent removed from the config would run on, invisible to `stop`.
        _stop_first(ctx, fleet, agent)
        if ws.is_git and not args.force:
            _refuse_unpushed(ctx, fleet, agent, ws)  # what it committed while it stopped
    with txn.locked(paths, opts):  # so the commit it names is its own
        # (--no-commit works outside a git repository too: no HEAD is read then)
        before = None if args.no_commit else head_commit(paths.root)
        changed = remove_agent(
            paths,
            args.name,
            prune_routes=args.prune_routes,
            commit=not args.no_commit,
            edit=opts,
        )
        moved = not args.no_commit and head_commit(paths.root) != before
        last = fleet_log(paths.root, n=1) if moved else []
    print(f"Removed agent {args.name}", file=ctx.out)
    for path in changed:
        print(f"  {paths.rel(path)}", file=ctx.out)
    if last:
        print(f"Committed {last[0].short}: {last[0].subject}", file=ctx.out)
    if ws.is_git and _workspace_remove(ctx, fleet, agent, ws):
        where = f"on host {agent.runtime.host!r}" if _on_host(agent) else _shown(ctx, ws.path)
        print(f"  its workspace {where} is removed", file=ctx.out)
    if paths.agent_state(args.name).exists():
        print(
            f"  its runtime state stays in {paths.rel(paths.agent_state(args.name))}/", file=ctx.out
        )
    return 0


def _shown(ctx: Context, path: Path) -> str:
    root = ctx.paths.root
    return ctx.paths.rel(path) if path.is_relative_to(root) else str(path)


def _on_host(agent: Agent) -> bool:
    """The workspace is on another machine (an ssh host); a docker agent's is in its
    bind-mounted state, on this one."""
    return agent.runtime.backend == "ssh"


def _host_workspace(ctx: Context, fleet: Fleet, agent: Agent, action: str) -> dict[str, Any]:
    """Ask the agent's host (ssh backend) to check or remove the workspace there."""
    from relayfleet.backends.registry import backend_for

    backend: Any = backend_for(agent, fleet)  # SshBackend.workspace
    answer = backend.workspace(ctx.paths, fleet, agent, action)
    return answer if isinstance(answer, dict) else {}


def _workspace_remove(ctx: Context, fleet: Fleet, agent: Agent, ws: Plan) -> bool:
    from relayfleet.runner import workspace

    if _on_host(agent):
        return bool(_host_workspace(ctx, fleet, agent, "remove").get("removed"))
    return workspace.remove(ws)


def _refuse_unpushed(ctx: Context, fleet: Fleet, agent: Agent, ws: Plan) -> None:
    """remove-agent keeps a workspace that holds work no remote has (unless --force)."""
    from relayfleet.core.errors import FleetError
    from relayfleet.runner import workspace

    if _on_host(agent):
        found = _host_workspace(ctx, fleet, agent, "check")
        lost = [str(x) for x in found.get("lost") or []]
        shown = f"on host {agent.runtime.host!r}"
    else:
        lost = workspace.unpushed(ws)
        shown = _shown(ctx, ws.path)
    if not lost:
        return
    name = agent.name
    raise FleetError(
        f"agent {name!r}'s workspace {shown} holds work that is not pushed: " + "; ".join(lost),
        hints=[
            "push or drop it first (`git status` in the workspace), or re-run with --force to"
            " remove the workspace anyway"
        ],
    )


def _stop_first(ctx: Context, fleet: Fleet, agent: Agent) -> None:
    from relayfleet.backends.registry import backend_for
    from relayfleet.core.errors import FleetError
    from relayfleet.up.control import managed, running_up

    up = running_up(ctx.paths)
    if up and agent.name in managed(up):
        from relayfleet.cli.up_requests import stop_via_up

        print(f"{agent.name} is run by up (pid {up['pid']}): stopping it first", file=ctx.out)
        stop_via_up(ctx.paths, up, [agent.name], ctx.out)
        return
    backend = backend_for(agent, fleet)
    try:
        running = backend.status(ctx.paths, fleet, agent).running
        if running:
            print(f"{agent.name} is running: stopping it first", file=ctx.out)
            backend.stop(ctx.paths, fleet, agent)
            print(f"{agent.name}: stopped", file=ctx.out)
    except FleetError as exc:
        raise FleetError(
            f"agent {agent.name!r} may be running and could not be stopped: {exc}",
            hints=[f"stop it first: gh fleet stop {agent.name}", "then remove it again"],
        ) from exc


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json, print_table

    fleet = ctx.load(fallback=True)
    rows = [
        {
            "name": a.name,
            "role": a.role,
            "port": a.port,
            "model": a.model,
            "repo": a.repo,
            "backend": a.runtime.backend,
            "host": a.runtime.host,
        }
        for a in sorted(fleet.agents.values(), key=lambda a: a.name)
    ]
    if args.json:
        print_json(ctx.out, rows)
        return 0
    if not rows:
        print(
            "No agents yet. Add one: gh fleet new-agent <name> --role coder --repo owner/name",
            file=ctx.out,
        )
        return 0
    headers = ["name", "role", "port", "model", "repo", "backend", "host"]
    print_table(ctx.out, headers, [[r[h] for h in headers] for r in rows])
    return 0
