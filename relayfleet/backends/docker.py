"""The docker backend: the agent's runner in a container, driven through the docker SDK only.

The container runs `python -m relayfleet.runner <root> <agent>` with the fleet root mounted at
the same path: `.fleet/` read-only, and of `.fleet/state/` only the agent's own directory,
read-write (its inbox, logs and checkpoints stay visible to `gh fleet`). Other agents' state (their
channel tokens, logins, transcripts) is not in the container: hand-offs to them go through the
relay, which the router carries on (backends/relay.py). It gets
`init=True` (signals reach the runner; `stop` takes milliseconds), host networking (it reaches the
operator's gateway and GitHub fake on 127.0.0.1), a restart policy, the labels
`relayfleet.fleet` / `relayfleet.agent`, and `runtime.cpus` / `runtime.memory` limits.

The image is `runtime.image` when set, else `relayfleet:<version>` built from the project's
`Dockerfile` (Python, git, the package, and `claude` from npm when built online) the first time.
The engine: the agent's `runtime.host` may name a `[hosts.<x>]` entry whose `host` is a
DOCKER_HOST url; otherwise DOCKER_HOST / the default socket. Extra bind mounts for images that
borrow the host's files (`src:dst[:ro]`, comma-separated) come from `FLEET_DOCKER_MOUNTS`.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path
from typing import Any

from relayfleet import __version__
from relayfleet.backends.base import RunnerStatus
from relayfleet.backends.credentials import Resolved, resolve
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths, project_dir
from relayfleet.fleet.model import Agent, Fleet

DEFAULT_IMAGE = f"relayfleet:{__version__}"
CONTAINER_HOME = "/root"
MOUNTS_ENV = "FLEET_DOCKER_MOUNTS"


def container_name(fleet: Fleet, agent: Agent, root: Path) -> str:
    """`relayfleet-<fleet identity>-<agent>`: two same-named fleets on one engine (two
    checkouts, two operators) never share a container (see remote_layout.fleet_identity)."""
    from relayfleet.backends.remote_layout import fleet_identity

    ident = fleet_identity(fleet.name, root)
    return "relayfleet-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{ident}-{agent.name}")


def parse_memory(text: str) -> int | str:
    return text.strip()  # the SDK accepts "512m", "2g" or bytes as given


def _volume_spec(spec: str) -> tuple[str, dict[str, str]]:
    parts = spec.split(":")
    if len(parts) < 2:
        raise BackendError(f"{MOUNTS_ENV}: {spec!r} is not src:dst[:ro]")
    mode = parts[2] if len(parts) > 2 else "rw"
    return parts[0], {"bind": parts[1], "mode": mode}


ENV_FILE = "/run/relayfleet/env.json"  # inside the container: credentials + gateway sentinel


def secrets_tar(
    resolved: Resolved, home: str = CONTAINER_HOME, env: dict[str, str] | None = None
) -> bytes:
    """The agent's credential files (modes kept) and its 0600 env file, for `put_archive("/")`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if env is not None:
            d = tarfile.TarInfo(ENV_FILE.rsplit("/", 1)[0].lstrip("/"))
            d.type, d.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(d)
            data = json.dumps(env).encode()
            ti = tarfile.TarInfo(ENV_FILE.lstrip("/"))
            ti.size, ti.mode = len(data), 0o600
            tar.addfile(ti, io.BytesIO(data))
        for f in resolved.files:
            ti = tarfile.TarInfo(f.path_in(home).lstrip("/"))
            ti.size = len(f.data)
            ti.mode = f.mode
            tar.addfile(ti, io.BytesIO(f.data))
    return buf.getvalue()


class DockerBackend:
    name = "docker"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        extra_mounts: list[str] | None = None,
        stop_grace: int = 10,
    ) -> None:
        self.base_url = base_url
        self.extra_mounts = extra_mounts
        self.stop_grace = stop_grace
        self._clients: dict[str, Any] = {}

    # -- the engine --

    def client(self, fleet: Fleet, agent: Agent) -> Any:
        import docker

        url = self.base_url or ""
        host = fleet.hosts.get(agent.runtime.host) if agent.runtime.host else None
        if not url and host is not None and host.backend == "docker":
            url = host.host
        url = url or os.environ.get("DOCKER_HOST", "")
        if url not in self._clients:
            try:
                c = docker.DockerClient(base_url=url, timeout=60) if url else docker.from_env()
                c.ping()
            except docker.errors.DockerException as exc:
                where = url or "the default docker socket"
                raise BackendError(
                    f"agent {agent.name!r}: no docker engine at {where}: {exc}",
                    hints=[
                        "start dockerd, or set the host's DOCKER_HOST url with `gh fleet host add`"
                    ],
                ) from exc
            self._clients[url] = c
        return self._clients[url]

    def _container(self, client: Any, paths: FleetPaths, fleet: Fleet, agent: Agent) -> Any | None:
        import docker

        try:
            return client.containers.get(container_name(fleet, agent, paths.root))
        except docker.errors.NotFound:
            return None

    def image(self, client: Any, agent: Agent) -> str:
        import docker

        tag = agent.runtime.image or DEFAULT_IMAGE
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        if agent.runtime.image:
            try:
                client.images.pull(tag)
                return tag
            except docker.errors.DockerException as exc:
                raise BackendError(f"agent {agent.name!r}: image {tag!r} not found: {exc}") from exc
        dockerfile = project_dir() / "Dockerfile"
        try:
            client.images.build(path=str(project_dir()), tag=tag, rm=True, pull=False)
        except docker.errors.DockerException as exc:
            raise BackendError(
                f"could not build {tag} from {dockerfile}: {exc}",
                hints=["set runtime.image to an image you have, or build it online once"],
            ) from exc
        return tag

    def tmpfs(self, paths: FleetPaths) -> dict[str, str]:
        """An empty tmpfs over `.fleet/state` (then the agent's own state dir is bound back on
        top): the container never sees the gateway secret, the router's files, the tunnels'
        targets or any other agent's state."""
        return {str(paths.state.resolve()): "size=1m,mode=0755"}

    def mounts(self, paths: FleetPaths, agent: str) -> dict[str, dict[str, str]]:
        fleet_dir = str(paths.fleet.resolve())
        own = paths.agent_state(agent).resolve()
        vols = {
            fleet_dir: {"bind": fleet_dir, "mode": "ro"},
            str(own): {"bind": str(own), "mode": "rw"},
        }
        extra = self.extra_mounts
        if extra is None:
            extra = [m for m in os.environ.get(MOUNTS_ENV, "").split(",") if m.strip()]
        for spec in extra:
            src, bind = _volume_spec(spec.strip())
            vols[src] = bind
        return vols

    # -- Backend --

    def start(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus:
        import docker

        resolved = resolve(agent)  # all credentials first: nothing half-configured starts
        client = self.client(fleet, agent)
        old = self._container(client, paths, fleet, agent)
        if old is not None:
            if old.status == "running":
                st = self._status(fleet, agent, old)
                st.detail += " already running"
                return st
            old.remove(force=True)
        image = self.image(client, agent)
        paths.agent_state(agent.name).mkdir(parents=True, exist_ok=True)
        root = str(paths.root.resolve())
        rt = agent.runtime
        env = dict(resolved.env)
        if needs_gateway(agent):
            # Computed here from the secret, which stays on this machine; host networking
            # reaches the gateway at its own loopback port.
            from relayfleet.backends.tunnel import local_gateway_env

            env.update(local_gateway_env(paths, fleet, agent.name))
        runner = ["python", "-m", "relayfleet.runner", root, agent.name]
        envexec = ["python", "-m", "relayfleet.backends.envexec", "--keep", ENV_FILE, "--"]
        kwargs: dict[str, Any] = {
            # Values travel in a 0600 file inside the container, not in `docker inspect`'s Env.
            "command": [*envexec, *runner],
            "name": container_name(fleet, agent, paths.root),
            "labels": {"relayfleet.fleet": fleet.name, "relayfleet.agent": agent.name},
            "environment": {"HOME": CONTAINER_HOME},
            "volumes": self.mounts(paths, agent.name),
            "tmpfs": self.tmpfs(paths),
            "working_dir": root,
            "network_mode": "host",
            "init": True,
            "restart_policy": {"Name": "unless-stopped"},
            "detach": True,
        }
        if rt.cpus:
            kwargs["nano_cpus"] = int(rt.cpus * 1e9)
        if rt.memory:
            kwargs["mem_limit"] = parse_memory(rt.memory)
        try:
            ctr = client.containers.create(image, **kwargs)
            ctr.put_archive("/", secrets_tar(resolved, env=env))
            ctr.start()
            ctr.reload()
        except docker.errors.DockerException as exc:
            raise BackendError(f"agent {agent.name!r}: the container did not start: {exc}") from exc
        st = self._status(fleet, agent, ctr)
        st.detail += " started"
        return st

    def stop(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> bool:
        import docker

        ctr = self._container(self.client(fleet, agent), paths, fleet, agent)
        if ctr is None:
            return False
        was_running: bool = ctr.status == "running"
        try:
            ctr.stop(timeout=self.stop_grace)
            ctr.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            raise BackendError(
                f"agent {agent.name!r}: could not stop its container: {exc}"
            ) from exc
        return was_running

    def status(self, paths: FleetPaths, fleet: Fleet, agent: Agent) -> RunnerStatus:
        ctr = self._container(self.client(fleet, agent), paths, fleet, agent)
        return self._status(fleet, agent, ctr)

    def _status(self, fleet: Fleet, agent: Agent, ctr: Any | None) -> RunnerStatus:
        if ctr is None:
            return RunnerStatus(
                agent.name,
                False,
                self.name,
                host=agent.runtime.host,
                detail="[docker] no container",
            )
        state = ctr.attrs.get("State", {})
        health = (state.get("Health") or {}).get("Status") or state.get("Status", "unknown")
        running = state.get("Running", False)
        return RunnerStatus(
            name=agent.name,
            running=bool(running),
            backend=self.name,
            pid=state.get("Pid") or None,
            host=agent.runtime.host,
            detail=f"[docker] {ctr.short_id} {health}",
            extra={"container": ctr.id, "image": ctr.attrs.get("Config", {}).get("Image", "")},
        )

    def logs(self, paths: FleetPaths, fleet: Fleet, agent: Agent, lines: int) -> str:
        """The session log (bind-mounted); before it exists, the container's own output."""
        from relayfleet.backends.logtail import tail_lines

        text = tail_lines(paths.session_log(agent.name), lines)
        if text:
            return text
        ctr = self._container(self.client(fleet, agent), paths, fleet, agent)
        if ctr is None:
            return ""
        raw: bytes = ctr.logs(tail=lines)  # not streamed: one bytes object
        return raw.decode(errors="replace")


def needs_gateway(agent: Agent) -> bool:
    ep = agent.claude.endpoint
    return ep.mode == "gateway" or (ep.mode == "custom" and ep.via_gateway)
