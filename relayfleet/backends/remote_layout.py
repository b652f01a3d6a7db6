"""Where things live on an ssh host (one place, shared by the backend, transports and tunnels).

    <base>/fleets/<id>/relayfleet-<version>/src/…      the package, synced over SFTP
    <base>/fleets/<id>/relayfleet-<version>/venv/      its venv (python -m relayfleet.runner …)
    <base>/fleets/<id>/relayfleet-<version>/installed.json   version + hash of the synced tree
    <base>/fleets/<id>/relayfleet-<version>.lock/      held while an install runs (hostlock.py)
    <base>/fleets/<id>/.fleet/                         the agents' config, synced at start
    <base>/fleets/<id>/.fleet/state/agents/<agent>/inbox.jsonl, session.log, runner.log
    <base>/secrets/<id>/<agent>/                       0700: credential files, the env file
    tmux -L relayfleet-<id>  session <agent>           the runner (survives disconnects)

`<base>` is the host's `workdir`, default `~/.relayfleet`, made absolute once per host.

`<id>` is the fleet's identity: its name plus a short hash of its root directory and its
operator (`user@machine`). Two fleets with the same name (two checkouts, two operators) on one
host user never share a socket, a directory, a venv or a secret.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from relayfleet import __version__

DEFAULT_WORKDIR = "~/.relayfleet"


def safe(name: str) -> str:
    """A name usable in paths and tmux targets (fleet names are user text)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def operator() -> str:
    """Who runs this fleet: `user@machine` (part of the fleet's identity on a host)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def fleet_identity(name: str, root: Path | str, who: str | None = None) -> str:
    """`<name>-<hash>`: the key of everything the fleet at `root` creates on a host."""
    where = str(Path(root).expanduser().resolve())
    digest = hashlib.sha256(f"{where}\0{who or operator()}".encode()).hexdigest()[:10]
    return f"{safe(name)[:40]}-{digest}"


@dataclass(frozen=True)
class RemoteLayout:
    base: str  # absolute
    fleet: str  # the fleet's identity (`fleet_identity`), not just its name
    version: str = __version__

    @property
    def install(self) -> str:
        return f"{self.root}/relayfleet-{self.version}"

    @property
    def install_lock(self) -> str:
        return f"{self.install}.lock"

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

    def relay_out(self, agent: str) -> str:
        return f"{self.agent_state(agent)}/relay-out.jsonl"

    def attach_socket(self, agent: str) -> str:
        return f"{self.agent_state(agent)}/attach.sock"

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
