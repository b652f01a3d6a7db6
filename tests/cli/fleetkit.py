"""A real fleet on disk for runner/CLI tests: `.fleet/` TOML that `load_fleet` reads."""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayfleet.cli.context import Context
from relayfleet.core.paths import FleetPaths
from tests.procfs import pid_alive  # noqa: F401 (re-exported to the tests that use this kit)
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests that use this kit)

PY = sys.executable

# A tiny session program: every line typed into it is appended (as JSON) to a transcript.
ECHO_SCRIPT = """\
import json, os, sys, time
out = sys.argv[1]
with open(out, "a") as f:
    f.write(json.dumps({"type": "launch", "pid": os.getpid()}) + "\\n")
for line in sys.stdin:
    with open(out, "a") as f:
        f.write(json.dumps({"type": "turn", "text": line.rstrip("\\n"), "t": time.time()}) + "\\n")
    if "CRASH-NOW" in line:
        os._exit(3)
"""


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


@dataclass
class FleetDir:
    root: Path
    agents: list[str] = field(default_factory=list)

    @property
    def paths(self) -> FleetPaths:
        return FleetPaths(self.root)

    def add_agent(
        self,
        name: str,
        command: list[str],
        *,
        engine: str = "command",
        plugins: list[str] = ("inbox",),  # type: ignore[assignment]
        ack_timeout_sec: int = 600,
        extra: str = "",
    ) -> None:
        port = 8801 + len(self.agents)
        d = self.root / ".fleet" / "agents" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "CLAUDE.md").write_text(f"You are {name}, a test agent.\n")
        (d / "agent.toml").write_text(
            f'name = "{name}"\nrole = "coder"\nport = {port}\n'
            f"plugins = {toml_list(list(plugins))}\nack_timeout_sec = {ack_timeout_sec}\n"
            f'[runtime]\nbackend = "local"\n'
            f'[claude]\nengine = "{engine}"\ncommand = {toml_list(command)}\n'
            "remote_control = false\n" + extra
        )
        self.agents.append(name)

    def echo_agent(self, name: str, **kw: Any) -> Path:
        script = self.root / "echo_session.py"
        script.write_text(ECHO_SCRIPT)
        transcript = self.root / f"{name}.transcript.jsonl"
        self.add_agent(name, [PY, str(script), str(transcript)], **kw)
        return transcript

    def ctx(self) -> tuple[Context, io.StringIO, io.StringIO]:
        out, err = io.StringIO(), io.StringIO()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        env["FLEET_ROOT"] = str(self.root)
        return Context(out=out, err=err, env=env, cwd=self.root), out, err


def make_fleet(root: Path, name: str = "test-fleet") -> FleetDir:
    (root / ".fleet" / "agents").mkdir(parents=True, exist_ok=True)
    (root / ".fleet" / "fleet.toml").write_text(f'[fleet]\nname = "{name}"\n')
    (root / ".fleet" / ".gitignore").write_text("state/\n")
    return FleetDir(root)


def read_transcript(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(x) for x in lines if x.strip()]


def turns(path: Path) -> list[str]:
    return [t["text"] for t in read_transcript(path) if t.get("type") == "turn"]


def run_cli(fleet: FleetDir, *argv: str) -> tuple[int, str, str]:
    """Our commands, in-process, through a parser that holds only them (tier b)."""
    import argparse

    from relayfleet.cli.commands import attach, lifecycle, login, logs, tell
    from relayfleet.cli.main import Parser

    parser = Parser(prog="gh fleet")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for mod in (lifecycle, tell, logs, attach, login):
        mod.register(sub)
    try:
        from relayfleet.cli.commands import status

        status.register(sub)
    except ImportError:
        pass
    ctx, out, err = fleet.ctx()
    args: argparse.Namespace = parser.parse_args(list(argv))
    rc = args.func(ctx, args)
    return int(rc or 0), out.getvalue(), err.getvalue()
