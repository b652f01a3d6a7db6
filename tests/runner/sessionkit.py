"""Helpers for the session-side runner tests (PTY, channel, engines)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, ClaudeConfig, Endpoint, Fleet
from relayfleet.runner.engine import EngineSpec


async def wait_until(pred: Callable[[], object], timeout: float = 20.0, step: float = 0.02) -> None:
    """Poll `pred` until it is truthy; fail with a clear message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {pred}")
        await asyncio.sleep(step)


def make_spec(
    tmp: Path,
    *,
    command: tuple[str, ...],
    engine: str = "command",
    args: tuple[str, ...] = (),
    mcp_url: str = "",
    mcp_token: str = "",
    session_id: str = "11111111-2222-4333-8444-555555555555",
    resume: bool = False,
    env: dict[str, str] | None = None,
    remote_control: bool = False,
    isolate_config: bool = True,
    name: str = "coder",
    endpoint: Endpoint | None = None,
) -> EngineSpec:
    agent = Agent(
        name=name,
        role="coder",
        model="sonnet",
        claude=ClaudeConfig(
            engine=engine,
            command=command,
            args=args,
            remote_control=remote_control,
            isolate_config=isolate_config,
            endpoint=endpoint or Endpoint(),
        ),
    )
    agent_dir = tmp / "agents" / name
    agent_dir.mkdir(parents=True, exist_ok=True)
    (agent_dir / "CLAUDE.md").write_text("You are a test agent.\n")
    state_dir = tmp / "state" / name
    state_dir.mkdir(parents=True, exist_ok=True)
    return EngineSpec(
        agent=agent,
        agent_dir=agent_dir,
        state_dir=state_dir,
        workdir=tmp / "work" / name,
        session_log=state_dir / "session.log",
        mcp_url=mcp_url,
        mcp_token=mcp_token,
        session_id=session_id,
        resume=resume,
        env=dict(env or {}),
    )


def real_claude_spec(
    tmp: Path, claude: Path, channel: tuple[str, str], api_url: str, **kw: Any
) -> EngineSpec:
    """`make_spec` for the real `claude` (tests/realclaude.py) on the channel `(url, token)`,
    against the fake Messages API at `api_url` with the offline key; `env` adds to that."""
    from realclaude import API_KEY  # tests/ is on the path of every test that gets here

    env = {"ANTHROPIC_API_KEY": API_KEY, **kw.pop("env", {})}
    url, token = channel
    return make_spec(tmp, command=(str(claude),), engine="claude", mcp_url=url, mcp_token=token,
                     env=env, endpoint=Endpoint(mode="custom", url=api_url), **kw)  # fmt: skip


# A session that writes every line typed into it to argv[1]; a line with CRASH-NOW kills it.
ECHO = (
    "import sys\n"
    "for line in sys.stdin:\n"
    "    open(sys.argv[1], 'a').write(line)\n"
    "    if 'CRASH-NOW' in line: sys.exit(4)\n"
)


def echo_runner_setup(tmp: Path, **agent_kw: Any) -> tuple[FleetPaths, Fleet, Agent, Path]:
    """A fleet at `tmp` whose agent `coder` runs ECHO (command engine): its paths, the fleet, the
    agent (`agent_kw` set on it) and the file that gets what is typed."""
    (tmp / ".fleet").mkdir()
    script = tmp / "echo.py"
    script.write_text(ECHO)
    out = tmp / "typed.txt"
    agent = Agent(
        name="coder",
        role="coder",
        claude=ClaudeConfig(engine="command", command=(sys.executable, str(script), str(out))),
        **agent_kw,
    )
    return FleetPaths(tmp), Fleet(name="t", agents={"coder": agent}), agent, out
