"""A real router process (`router run --detached-child`) against the fake GitHub, and the
`[webhook]` table that turns its receiver on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from relayfleet.core.paths import FleetPaths
from relayfleet.fakes.github import FakeGitHub
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def enable_webhooks(paths: FleetPaths, port: int, reconcile_sec: int | None = None) -> None:
    """Append a `[webhook]` table listening on loopback `port`, secret from
    FLEET_WEBHOOK_SECRET."""
    text = f'\n[webhook]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
    text += 'secret = { from_env = "FLEET_WEBHOOK_SECRET" }\n'
    if reconcile_sec is not None:
        text += f"reconcile_sec = {reconcile_sec}\n"
    with paths.fleet_toml.open("a") as f:
        f.write(text)


def router_env(root: Path, fake: FakeGitHub, secret: str, min_period: int = 0) -> dict[str, str]:
    """This environment without any FLEET_/GH_/GITHUB_ setting, pointed at `root` and `fake`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "GH_", "GITHUB_"))}
    env.update(FLEET_ROOT=str(root), FLEET_GITHUB_API_URL=fake.base_url, GH_TOKEN=fake.token,
               FLEET_ROUTER_MIN_PERIOD=str(min_period), FLEET_WEBHOOK_SECRET=secret,
               PYTHONPATH=str(REPO_ROOT))  # fmt: skip
    return env


class Router:
    """`router run` in its own session, as `router start` leaves it running."""

    def __init__(self, root: Path, fake: FakeGitHub, secret: str, min_period: int = 0) -> None:
        self.paths = FleetPaths(root)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relayfleet", "router", "run", "--detached-child"],
            env=router_env(root, fake, secret, min_period),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        text = self.paths.fleet_toml.read_text()
        listen = text.split('listen = "')[1].split('"')[0] if 'listen = "' in text else ""
        self.url = f"http://{listen}/"

    def wait_ready(self) -> None:
        """Until its receiver answers and it has finished a first poll cycle."""
        wait_until(self.listening)
        wait_until(self.cycled)

    def listening(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def cycled(self) -> bool:
        """The router has written a status with a finished poll cycle."""
        if not self.paths.router_status.exists():
            return False
        st = json.loads(self.paths.router_status.read_text() or "{}")
        return bool(st.get("last_cycle"))

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
