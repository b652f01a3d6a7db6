"""`gh fleet login <agent>`: run Claude Code's login inside the agent's own config dir.

It runs the agent's `claude` command with `/login` (the interactive login, as a first prompt)
in exactly the environment the agent's session gets (`runner.endpoint.endpoint_env`), so the
credentials land where that session reads them: `state/agents/<name>/claude-config` for an
isolated agent with `inherit_auth = false`; the machine's store when it inherits the login.
"""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("login", help="log an agent's isolated Claude config dir in (interactive)")
    p.add_argument("agent", help="the agent's name (see `gh fleet list`)")
    p.add_argument(
        "--print-env",
        action="store_true",
        help="print CLAUDE_CONFIG_DIR and the command instead of running it",
    )
    p.set_defaults(func=run)


LOGIN_DESKTOP_ENV = (
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "BROWSER",
    "DBUS_SESSION_BUS_ADDRESS",
)


def login_argv_env(ctx: Context, agent_name: str) -> tuple[list[str], dict[str, str], str]:
    from relayfleet.runner.endpoint import endpoint_env
    from relayfleet.runner.engine import EngineSpec

    paths = ctx.paths
    fleet = ctx.load()
    agent = fleet.agent(agent_name)
    from relayfleet.core.privdir import ensure_private_dir

    state = paths.agent_state(agent.name)
    # Run from the operator's shell (any umask) before the runner ever made this directory:
    # it gets the agent's login (claude-config/), so it is 0700 from the start, like a runner's.
    state.parent.mkdir(parents=True, exist_ok=True)
    ensure_private_dir(state)
    workdir = state / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    spec = EngineSpec(
        agent=agent,
        agent_dir=paths.agent_dir(agent.name),
        state_dir=state,
        workdir=workdir,
        session_log=paths.session_log(agent.name),
        mcp_url="",
        mcp_token="",
        session_id="",
        resume=False,
        gateway=fleet.gateway,
    )
    env = endpoint_env(spec, ctx.env)
    # The operator's own desktop, so the login can open a browser (a session never gets these).
    env.update({k: ctx.env[k] for k in LOGIN_DESKTOP_ENV if k in ctx.env})
    argv = [*agent.claude.command, "/login"]
    return argv, env, str(workdir)


def run(ctx: Context, args: argparse.Namespace) -> int:
    import subprocess

    from relayfleet.core.errors import BackendError

    argv, env, cwd = login_argv_env(ctx, args.agent)
    agent = ctx.load().agent(args.agent)
    cdir = env.get("CLAUDE_CONFIG_DIR", "(the machine's default, ~/.claude)")
    if agent.claude.isolate_config and agent.claude.inherit_auth:
        print(
            f"note: {agent.name} inherits the machine's login (inherit_auth = true); "
            "logging in here logs the machine in. Set inherit_auth = false for a separate login.",
            file=ctx.err,
        )
    if args.print_env:
        print(f"CLAUDE_CONFIG_DIR={cdir}", file=ctx.out)
        print(" ".join(argv), file=ctx.out)
        return 0
    print(f"logging in {agent.name} (CLAUDE_CONFIG_DIR={cdir})", file=ctx.err, flush=True)
    try:
        # umask 077 like a runner's: whatever the client writes (its login, its config) is
        # private even when it does not set a mode itself, whatever the operator's shell says.
        return subprocess.run(argv, env=env, cwd=cwd, check=False, umask=0o077).returncode
    except FileNotFoundError as exc:
        raise BackendError(
            f"cannot run {argv[0]!r}: not found",
            hints=[
                "install Claude Code (npm i -g @anthropic-ai/claude-code) or fix [claude] command"
            ],
        ) from exc
