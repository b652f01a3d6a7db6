"""Where things live on an ssh host (one place, shared by the backend, transports and tunnels).

    <base>/relayfleet-<version>/src/relayfleet/…   the package, synced over SFTP
    <base>/relayfleet-<version>/venv/              its venv (python -m relayfleet.runner …)
    <base>/relayfleet-<version>/installed.json     version + content hash of the synced tree
    <base>/fleets/<fleet>/.fleet/                  the agent's config, synced at start
    <base>/fleets/<fleet>/.fleet/state/agents/<agent>/inbox.jsonl, session.log, runner.log
    <base>/secrets/<fleet>/<agent>/                0700: credential files, the one-shot env file
    tmux -L relayfleet-<fleet>  session <agent>    the runner (survives disconnects)

`<base>` is the host's `workdir`, default `~/.relayfleet`, made absolute once per host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relayfleet import __version__

DEFAULT_WORKDIR = "~/.relayfleet"


def safe(name: str) -> str:
    """A name usable in paths and tmux targets (fleet names are user text)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


@dataclass(frozen=True)
class RemoteLayout:
    base: str  # absolute
    fleet: str
    version: str = __version__

    @property
    def install(self) -> str:
        return f"{self.base}/relayfleet-{self.version}"

    @property
    def src(self) -> str:
        return f"{self.install}/src"

    @property
    def venv(self) -> str:
        return f"{self.install}/venv"

    @property
    def python(self) -> str:
        return f"{self.venv}/bin/python"

    @property
    def marker(self) -> str:
        return f"{self.install}/installed.json"

    @property
    def root(self) -> str:
        return f"{self.base}/fleets/{safe(self.fleet)}"

    @property
    def fleet_dir(self) -> str:
        return f"{self.root}/.fleet"

    def agent_state(self, agent: str) -> str:
        return f"{self.fleet_dir}/state/agents/{agent}"

    def inbox(self, agent: str) -> str:
        return f"{self.agent_state(agent)}/inbox.jsonl"

    def session_log(self, agent: str) -> str:
        return f"{self.agent_state(agent)}/session.log"

    def runner_log(self, agent: str) -> str:
        return f"{self.agent_state(agent)}/runner.log"

    def secrets(self, agent: str) -> str:
        return f"{self.base}/secrets/{safe(self.fleet)}/{agent}"

    @property
    def tmux_socket(self) -> str:
        return f"relayfleet-{safe(self.fleet)}"


def absolute_base(workdir: str, home: str) -> str:
    """The host's workdir as an absolute path (`~` and relative paths are under `home`)."""
    w = (workdir or DEFAULT_WORKDIR).rstrip("/") or "/"
    if w == "~":
        return home
    if w.startswith("~/"):
        return f"{home.rstrip('/')}/{w[2:]}"
    if w.startswith("/"):
        return w
    return f"{home.rstrip('/')}/{w}"
