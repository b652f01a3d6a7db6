"""Real daemons for the remote-backend tests: an OpenSSH sshd and a dockerd on this machine.

Both are started in a temp dir, on loopback / a private unix socket, and stopped by PID. Nothing
here is a mock: the backends under test talk to the same programs a user's VM or laptop runs.
Importable by `benchmarks/remote.py` too (plain module, no pytest imports).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import free_port
from tests.waiting import wait_until

SSHD = "/usr/sbin/sshd"
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
SKELETON_IMAGE = "relayfleet-test-skel:latest"


def ensure_packages(binary: str, packages: list[str]) -> str | None:
    """Install Debian `packages` when `binary` is missing; None when usable, else why not."""
    if os.path.exists(binary) or shutil.which(binary):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{binary} is missing and we cannot apt-get install {' '.join(packages)} (not root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            return f"apt-get failed for {' '.join(packages)}: {r.stderr.strip()[-300:]}"
    if os.path.exists(binary) or shutil.which(binary):
        return None
    return f"{binary} still missing after installing {' '.join(packages)}"


def _stop_pid(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# -- sshd ---------------------------------------------------------------------------------------


@dataclass
class Sshd:
    """A running OpenSSH sshd on 127.0.0.1:`port` that accepts `client_key` for `user`."""

    dir: Path
    port: int
    user: str
    client_key: Path  # private key (OpenSSH format, no passphrase)
    host_pub: str  # "ssh-ed25519 AAAA…"
    known_hosts: Path  # a known_hosts file that trusts this server
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def accepted(self) -> int:
        """How many SSH connections the server has authenticated so far (from its log)."""
        try:
            return self.log.read_text(errors="replace").count("Accepted publickey")
        except FileNotFoundError:
            return 0

    def stop(self) -> None:
        if self.proc is not None:
            _stop_pid(self.proc)


# The host user's login shell greets on stdout and stderr: its `.bashrc` echoes, and bash sources
# it for every command sshd starts. sshd gives the user a home of its own (`SetEnv HOME=…`) so
# that `.bashrc` is the test's, not this machine's.
NOISE = "Welcome to the noisy test host"
NOISY_RC = f'echo "{NOISE}"\necho "{NOISE} (stderr)" >&2\n'


def start_sshd(workdir: Path, *, noisy: bool = True, sftp: bool = True) -> Sshd:
    import asyncssh

    workdir.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(workdir / "host_ed25519"))
    os.chmod(workdir / "host_ed25519", 0o600)
    client_key.write_private_key(str(workdir / "user_ed25519"))
    os.chmod(workdir / "user_ed25519", 0o600)
    (workdir / "authorized_keys").write_bytes(client_key.export_public_key())
    host_pub = host_key.export_public_key().decode().strip()
    port = free_port()
    known = workdir / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    (home / ".bashrc").write_text(NOISY_RC if noisy else "")
    cfg = workdir / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {workdir / 'host_ed25519'}",
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                f"PidFile {workdir / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "AllowTcpForwarding yes",
                "GatewayPorts no",
                "MaxSessions 50",
                "MaxStartups 50:30:100",
                "LogLevel INFO",
                *(["Subsystem sftp internal-sftp"] if sftp else []),
                f"SetEnv HOME={home}",
                "",
            ]
        )
    )
    check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"sshd -t rejected the config: {check.stderr.strip()}")
    log = workdir / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(cfg)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    sshd = Sshd(
        dir=workdir,
        port=port,
        user=os.environ.get("USER") or "root",
        client_key=workdir / "user_ed25519",
        host_pub=host_pub,
        known_hosts=known,
        log=log,
        proc=proc,
    )

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')[-500:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    wait_until(listening, 15)
    import pwd

    sshd.user = pwd.getpwuid(os.getuid()).pw_name
    return sshd


# -- dockerd ------------------------------------------------------------------------------------


@dataclass
class Dockerd:
    base_url: str  # unix://… for docker.DockerClient / DOCKER_HOST
    proc: subprocess.Popen[bytes] | None = None  # None: a daemon that was already running
    dir: Path | None = None

    def client(self):  # -> docker.DockerClient
        import docker

        return docker.DockerClient(base_url=self.base_url, timeout=60)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            c = self.client()
            for ctr in c.containers.list(all=True, filters={"label": "relayfleet.test"}):
                ctr.remove(force=True)
            for ctr in c.containers.list(all=True, filters={"label": "relayfleet.fleet"}):
                ctr.remove(force=True)
        _stop_pid(self.proc, grace=20)
        assert self.dir is not None
        # dockerd leaves its network namespace mounted; unmount before the temp dir goes away.
        for mnt in (self.dir / "exec" / "netns" / "default", self.dir / "exec" / "netns"):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def _ping(base_url: str) -> bool:
    import docker

    try:
        return bool(docker.DockerClient(base_url=base_url, timeout=3).ping())
    except Exception:
        return False


def start_dockerd(workdir: Path) -> Dockerd:
    """Use a running engine (DOCKER_HOST / the default socket) or start one in `workdir`."""
    for url in filter(None, [os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock"]):
        if url.startswith("unix://") and not os.path.exists(url[len("unix://") :]):
            continue
        if _ping(url):
            return Dockerd(base_url=url)
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "docker.sock"
    log = workdir / "dockerd.log"
    argv = [
        DOCKERD,
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        f"--data-root={workdir / 'root'}",
        f"--exec-root={workdir / 'exec'}",
        f"--pidfile={workdir / 'dockerd.pid'}",
        "-H",
        f"unix://{sock}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
        )
    d = Dockerd(base_url=f"unix://{sock}", proc=proc, dir=workdir)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd exited: {log.read_text(errors='replace')[-800:]}")
        return sock.exists() and _ping(d.base_url)

    try:
        wait_until(up, 30, step=0.1)
    except BaseException:
        d.stop()
        raise
    return d


# -- an image that can run our Python runner, with no registry ----------------------------------


def runner_mounts() -> list[str]:
    """Host paths (read-only) the skeleton image needs so `python -m relayfleet.runner` works.

    Measured: /usr (the dynamic loader, libc, libssl, …), the venv and repo (/work/main holds
    both), the pyenv prefix the venv's python links to, and /etc/ssl for certificates.
    """
    venv = Path(sys.prefix)
    base = Path(os.path.realpath(sys.executable)).parent.parent  # …/pyenv/versions/3.11.7
    repo = Path(__file__).resolve().parents[2]
    out = {"/usr", str(venv), str(base), str(repo), "/etc/ssl"}
    # The venv is usually inside the repo: one mount covers both.
    if str(venv).startswith(str(repo) + os.sep):
        out.discard(str(venv))
    return [f"{p}:{p}:ro" for p in sorted(out)]


def skeleton_tar() -> bytes:
    """An empty root: usr/ and the merged-/usr symlinks, /etc/passwd, /tmp."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            tar.addfile(ti)

        def add_link(name: str, target: str) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            tar.addfile(ti)

        def add_file(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))

        # sbin is a real dir: docker mounts its init at /sbin/docker-init, which must not
        # land inside the read-only /usr bind mount.
        for d in ("usr", "etc", "root", "work", "var", "var/tmp", "run", "sbin"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        for name in ("bin", "lib", "lib64"):
            add_link(name, f"usr/{name}")
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\n")
        add_file("etc/hosts", b"127.0.0.1 localhost\n")
    return buf.getvalue()


def import_skeleton_image(client, tag: str = SKELETON_IMAGE) -> str:  # client: DockerClient
    """`docker import` the skeleton with PATH set to the venv, so `python` is our interpreter."""
    path = ":".join([str(Path(sys.prefix) / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    changes = [f"ENV PATH={path}", "ENV LANG=C.UTF-8", "WORKDIR /"]
    return _docker_import(client, tag, skeleton_tar, changes)


def _docker_import(
    client, tag: str, tar: Callable[[], bytes], changes: list[str]
) -> str:  # client: DockerClient
    """`docker import` of `tar()` as `tag` with Dockerfile `changes`, unless `tag` exists."""
    with contextlib.suppress(Exception):
        client.images.get(tag)
        return tag
    repo, _, version = tag.partition(":")
    client.api.import_image_from_data(
        tar(), repository=repo, tag=version or "latest", changes=changes
    )
    return tag


# -- a real `.fleet/` on disk -------------------------------------------------------------------


def _toml_value(v: object) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def _table(name: str, d: dict[str, object]) -> str:
    lines = [f"[{name}]"] if name else []
    subs = []
    for k, v in d.items():
        if isinstance(v, dict):
            subs.append((f"{name}.{k}" if name else k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    out = "\n".join(lines) + "\n"
    for n, sd in subs:
        out += "\n" + _table(n, sd)
    return out


def write_fleet(root: Path, *, name: str, hosts: dict[str, dict], agents: dict[str, dict]) -> None:
    """Write fleet.toml, routes.toml and agents/<name>/{agent.toml,CLAUDE.md} under `root`."""
    fleet = root / ".fleet"
    (fleet / "agents").mkdir(parents=True, exist_ok=True)
    (fleet / ".gitignore").write_text("state/\n")
    (fleet / "fleet.toml").write_text(
        _table("fleet", {"name": name}) + "\n" + _table("hosts", hosts)
    )
    (fleet / "routes.toml").write_text("")
    for aname, spec in agents.items():
        d = fleet / "agents" / aname
        d.mkdir(parents=True, exist_ok=True)
        (d / "agent.toml").write_text(_table("", {"name": aname, "role": "coder", **spec}))
        (d / "CLAUDE.md").write_text(f"You are {aname}, a test agent.\n")


def fake_claude_agent(
    transcript: Path, backend: str, host: str, transport: str, port: int, **runtime: object
) -> dict:
    return {
        "port": port,
        "plugins": [],
        "runtime": {"backend": backend, "host": host, "inbox_transport": transport, **runtime},
        "claude": {
            "engine": "command",
            "command": ["python", "-m", "relayfleet.fakes.fake_claude"],
            "args": ["--transcript", str(transcript)],
            "remote_control": False,
        },
    }


def transcript_turns(path: Path) -> list[str]:
    import json

    out = []
    try:
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if rec.get("type") == "turn":
                    out.append(str(rec.get("text", "")))
    except FileNotFoundError:
        pass
    return out


def said(transcript: Path, text: str) -> bool:
    """The fake claude's transcript has a turn containing `text`."""
    return any(text in turn for turn in transcript_turns(transcript))


def attached_count(state: Path) -> int:
    """How many `attach` clients the runner whose state dir is `state` counts."""
    import json

    return int(json.loads((state / "runner.json").read_text()).get("attached") or 0)


def type_through_attach(
    proc: subprocess.Popen[bytes], state: Path, transcript: Path, text: str, timeout: float
) -> tuple[bytes, bytes]:
    """With `gh fleet attach` running as `proc` (stdin a pipe): once the runner counts it, type
    `text` and Enter, wait for the session to have it, detach with Ctrl-]. Returns attach's
    (stdout, stderr); `proc` is killed if it is still running after that, or after a failure."""
    assert proc.stdin is not None
    try:
        wait_until(lambda: attached_count(state) == 1 or proc.poll() is not None, timeout)
        assert proc.poll() is None, proc.communicate(timeout=5)
        proc.stdin.write(f"{text}\r".encode())
        proc.stdin.flush()
        wait_until(lambda: said(transcript, text), timeout)
        proc.stdin.write(b"\x1d")
        proc.stdin.flush()
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def transcript_ready(path: Path) -> bool:
    """The fake claude drew its prompt (typing before that is lost, as with the real one)."""
    try:
        return '"type": "ready"' in path.read_text()
    except FileNotFoundError:
        return False


def remote_root(workdir: Path, root: Path, name: str) -> Path:
    """Where the fleet at `root` (named `name`) lives on the test host under `workdir`."""
    from relayfleet.backends.remote_layout import fleet_identity

    return workdir / "fleets" / fleet_identity(name, root)


def remote_state(workdir: Path, root: Path, name: str, agent: str = "coder") -> Path:
    return remote_root(workdir, root, name) / ".fleet" / "state" / "agents" / agent


def container_of(root: Path, name: str, agent: str = "coder") -> str:
    """The docker container of `agent` in the fleet at `root` named `name`."""
    from relayfleet.backends.remote_layout import fleet_identity

    return f"relayfleet-{fleet_identity(name, root)}-{agent}"


def seed_remote_venv(workdir: Path, root: Path, name: str) -> None:
    """Pre-provision the host's runner venv with our dependencies (no PyPI in tests).

    The backend still syncs the package, links it into the venv and checks the pinned
    dependencies; only the `pip install` of them is skipped because they are already there.
    """
    import sysconfig

    from relayfleet import __version__

    venv = remote_root(workdir, root, name) / f"relayfleet-{__version__}" / "venv"
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "zz-relayfleet-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


ROUTES = """
[[watch]]
name = "wms"
kind = "issues"
repo = "acme/wms"
filter = "--state open"
poll_sec = 1

[[route]]
to = ["coder"]
[route.match]
watch = "wms"
"""


def ssh_host(sshd: Sshd, workdir: Path) -> dict:
    return {
        "backend": "ssh",
        "host": f"{sshd.user}@127.0.0.1",
        "port": sshd.port,
        "workdir": str(workdir),
        "key": str(sshd.client_key),
    }


def trust(root: Path, sshd: Sshd) -> Path:
    """What `gh fleet host trust` does for `sshd`; returns the fleet's state directory."""
    state = root / ".fleet" / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "known_hosts").write_text(sshd.known_hosts.read_text())
    return state


def ssh_fleet(
    root: Path, sshd: Sshd, workdir: Path, *, name: str, agents: dict[str, dict], seed: bool = True
) -> Path:
    """A fleet whose one host `vm` is `sshd` (trusted), its runners under `workdir`; with `seed`
    the host's runner venv is pre-provisioned. Returns the fleet's state directory."""
    write_fleet(root, name=name, hosts={"vm": ssh_host(sshd, workdir)}, agents=agents)
    state = trust(root, sshd)
    if seed:
        seed_remote_venv(workdir, root, name)
    return state


# -- a python base image made from this machine's Debian python (for the Dockerfile build) ------

PYTHON_BASE_IMAGE = "relayfleet-test-pybase:latest"


def _ldd(path: str) -> set[str]:
    r = subprocess.run(["ldd", path], capture_output=True, text=True, check=False)
    out = set()
    for line in r.stdout.splitlines():
        for part in line.split():
            if part.startswith("/"):
                out.add(part)
    return out


def python_base_tar() -> bytes:
    """A root with /usr/bin/python3.11, its stdlib, dist-packages (pip, setuptools), /bin/sh,
    and the shared libraries they load: what a `python:3.11-slim` base offers the Dockerfile."""
    import glob

    files: set[str] = {"/usr/bin/python3.11", "/usr/bin/dash"}
    for exe in list(files) + glob.glob("/usr/lib/python3.11/lib-dynload/*.so"):
        files |= _ldd(exe)
    trees = ["/usr/lib/python3.11", "/usr/lib/python3/dist-packages"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def entry(name: str, kind: bytes, **kw: object) -> None:
            ti = tarfile.TarInfo(name.lstrip("/"))
            ti.type = kind
            for k, v in kw.items():
                setattr(ti, k, v)
            tar.addfile(ti)

        for d in ("usr", "usr/bin", "usr/local", "usr/local/bin", "usr/lib", "etc", "root", "run"):
            entry(d, tarfile.DIRTYPE, mode=0o755)
        entry("tmp", tarfile.DIRTYPE, mode=0o1777)
        for name in ("bin", "lib", "lib64"):
            entry(name, tarfile.SYMTYPE, linkname=f"usr/{name}")
        seen: set[str] = set()
        for f in sorted(files):
            real = os.path.realpath(f)
            if real not in seen:
                tar.add(real, arcname=real.lstrip("/"), recursive=False)
                seen.add(real)
            # The name the loader asks for (e.g. /lib64/ld-linux-x86-64.so.2), under merged /usr.
            alias = "/usr" + f if f.startswith(("/lib/", "/lib64/")) else f
            if alias != real and alias not in seen:
                if alias.startswith("/usr/lib64/") and "/usr/lib64" not in seen:
                    entry("usr/lib64", tarfile.DIRTYPE, mode=0o755)
                    seen.add("/usr/lib64")
                entry(alias, tarfile.SYMTYPE, linkname=real)
                seen.add(alias)
        for top in trees:
            # Without Debian's EXTERNALLY-MANAGED marker: like python:3.11-slim, pip may install.
            tar.add(top, arcname=top.lstrip("/"), filter=lambda ti: None
                    if "__pycache__" in ti.name or "/test/" in ti.name
                    or ti.name.endswith("EXTERNALLY-MANAGED") else ti)  # fmt: skip
        for name, target in (
            ("usr/bin/python3", "python3.11"),
            ("usr/local/bin/python", "/usr/bin/python3.11"),
            ("usr/bin/sh", "dash"),
        ):
            entry(name, tarfile.SYMTYPE, linkname=target)
        data = b"root:x:0:0:root:/root:/bin/sh\n"
        ti = tarfile.TarInfo("etc/passwd")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def import_python_base(client, tag: str = PYTHON_BASE_IMAGE) -> str:  # client: DockerClient
    changes = ["ENV PATH=/usr/local/bin:/usr/bin:/bin", "ENV LANG=C.UTF-8"]
    return _docker_import(client, tag, python_base_tar, changes)


def cli(root: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`gh fleet …` in-process, on the fleet at `root`: (exit code, stdout, stderr). `env` is
    the whole environment it sees (default: this one with FLEET_ROOT)."""
    from relayfleet.cli.context import Context
    from relayfleet.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    env = {**os.environ, "FLEET_ROOT": str(root)} if env is None else env
    ctx = Context(out=out, err=err, env=env, cwd=root)
    return main(list(argv), ctx), out.getvalue(), err.getvalue()


def spawn(env: dict[str, str], *argv: str) -> subprocess.Popen[bytes]:
    """`gh fleet …` as a process of its own with `env`; stdin, stdout and stderr are pipes."""
    pipe = subprocess.PIPE
    argv0 = [sys.executable, "-m", "relayfleet"]
    return subprocess.Popen([*argv0, *argv], stdin=pipe, stdout=pipe, stderr=pipe, env=env)


# The operator's real key in the gateway tests: it must reach the upstream and nothing else.
CANARY = "sk-ant-api03-CANARY-operators-real-key-must-stay-home-000000"


def through_the_gateway(agent: dict) -> dict:
    """`agent` (from `fake_claude_agent`) with a session that calls the API, through the fleet's
    gateway (the `claude` engine is the one that applies [claude.endpoint])."""
    agent["claude"]["command"] = ["env", "FAKE_CLAUDE_CALL_API=1", *agent["claude"]["command"]]
    agent["claude"]["endpoint"] = {"mode": "gateway"}
    agent["claude"]["engine"] = "claude"
    return agent


def sentinel_of(root: Path, agent: str = "coder") -> str:
    """The gateway sentinel `gateway routes --json` names for `agent`."""
    import json

    routes = json.loads(cli(root, "gateway", "routes", "--json")[1])
    return {r["agent"]: r["sentinel"] for r in routes}[agent]


def add_gateway(root: Path, port: int, upstream_url: str) -> None:
    """Enable the fleet's gateway on loopback `port`, forwarding to `upstream_url`."""
    with (root / ".fleet" / "fleet.toml").open("a") as f:
        f.write(f'\n[gateway]\nlisten = "127.0.0.1:{port}"\nupstream = "{upstream_url}"\n')


def assert_turn_reaches_upstream(
    root: Path, upstream: Any, transcript: Path, sentinel: str
) -> None:
    """A `tell` makes the session call the API; the upstream sees the real key, never the
    sentinel, and the reply comes back to the session. `upstream` is a FakeMessagesAPI."""
    import json

    assert cli(root, "tell", "coder", "ping", "the", "model")[0] == 0
    wait_until(lambda: upstream.messages_requests(), 30)
    req = upstream.messages_requests()[-1]
    sent = json.dumps(req.headers)
    assert CANARY in sent and sentinel not in sent
    assert "ping the model" in req.text()
    wait_until(lambda: '"type": "api"' in transcript.read_text(), 20)
    api = [json.loads(x) for x in transcript.read_text().splitlines() if '"api"' in x]
    assert api[-1]["status"] == 200 and api[-1]["reply"] == "pong"
