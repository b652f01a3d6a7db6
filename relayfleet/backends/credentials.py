"""Per-agent credentials: resolve the references in `[credentials.<name>]` at start, on the
operator's machine, and hand each agent exactly what it declares.

    [credentials.gh]                      [credentials.deploy]
    from_command = ["gh", "auth", "token"]  from_file = "~/.ssh/deploy_ed25519"
    as_env = "GH_TOKEN"                   as_file = "~/.ssh/id_ed25519"
                                          mode = "0600"

Sources: `from_env` | `from_file` | `from_command` (exactly one). Delivery: `as_env` and/or
`as_file` (+ `mode`); with neither, a `from_env` credential keeps its variable name.

Where the values go: the local backend puts `env` into the runner's process environment and
writes `files` with `place_files()`; docker passes `env` as the container's environment and copies
`files` into the container before it starts; ssh pushes `files` over SFTP with their mode and
passes `env` through a one-shot 0600 file that `envexec` reads, deletes, then execs the runner.

A value never goes into `.fleet/`, argv, a log, `status` or an error message: `Resolved` prints
only names, and errors name the credential, the agent and the *reference* (variable, path,
command), never what it resolved to. Everything is resolved before anything starts, so a missing
source stops the start with nothing half-configured.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from relayfleet.core.atomic import write_atomic
from relayfleet.core.errors import CredentialError
from relayfleet.fleet.model import Agent, Credential

COMMAND_TIMEOUT = 30.0


@dataclass(frozen=True)
class SecretFile:
    credential: str
    dest: str  # as declared: "~/.ssh/id_ed25519", "/run/secrets/x", "token.txt" (box-relative)
    data: bytes = field(repr=False)
    mode: int = 0o600

    def path_in(self, home: str) -> str:
        """`dest` inside a box whose home directory is `home` (`~` and relative paths)."""
        d = self.dest
        if d == "~":
            raise CredentialError(f"credential {self.credential!r}: as_file must name a file")
        if d.startswith("~/"):
            return f"{home.rstrip('/')}/{d[2:]}"
        if d.startswith("/"):
            return d
        return f"{home.rstrip('/')}/{d}"


@dataclass(frozen=True)
class Resolved:
    """What one agent receives. Its repr shows names only."""

    agent: str
    env: dict[str, str] = field(default_factory=dict, repr=False)
    files: tuple[SecretFile, ...] = ()

    def __repr__(self) -> str:
        names = sorted(self.env) + [f.dest for f in self.files]
        return f"Resolved(agent={self.agent!r}, delivers={names})"

    @property
    def empty(self) -> bool:
        return not self.env and not self.files

    def values(self) -> list[str]:
        """Every secret value (for redaction filters); never print this."""
        return [v for v in self.env.values() if v] + [
            f.data.decode(errors="replace") for f in self.files if f.data
        ]


Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def _fail(
    agent: str, cred: Credential, what: str, hints: list[str] | None = None
) -> CredentialError:
    return CredentialError(f"agent {agent!r}: credential {cred.name!r}: {what}", hints=hints or [])


def _source(agent: str, cred: Credential, env: Mapping[str, str], run: Runner) -> bytes:
    given = [k for k in ("from_env", "from_file", "from_command") if getattr(cred, k)]
    if len(given) != 1:
        raise _fail(agent, cred, "needs exactly one of from_env, from_file, from_command")
    if cred.from_env:
        value = env.get(cred.from_env, "")
        if not value:
            raise _fail(
                agent,
                cred,
                f"environment variable {cred.from_env} is not set",
                [f"export {cred.from_env}=… before `gh fleet start`"],
            )
        return value.encode()
    if cred.from_file:
        path = Path(os.path.expanduser(cred.from_file))
        try:
            return path.read_bytes()
        except OSError as exc:
            raise _fail(agent, cred, f"cannot read {cred.from_file} ({exc.strerror})") from None
    argv = list(cred.from_command)
    try:
        r = run(argv, capture_output=True, timeout=COMMAND_TIMEOUT, env=dict(env), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = "timed out" if isinstance(exc, subprocess.TimeoutExpired) else str(exc.strerror)
        raise _fail(agent, cred, f"command {argv[0]!r} failed: {why}") from None
    if r.returncode != 0:
        # Not its output: a failing token command may still have printed part of a secret.
        raise _fail(agent, cred, f"command {' '.join(argv)!r} exited {r.returncode}")
    out = r.stdout.rstrip(b"\r\n")
    if not out:
        raise _fail(agent, cred, f"command {' '.join(argv)!r} printed nothing")
    return out


def _mode(agent: str, cred: Credential) -> int:
    try:
        mode = int(cred.mode or "0600", 8)
    except ValueError:
        raise _fail(agent, cred, f"mode {cred.mode!r} is not an octal file mode") from None
    if not 0 <= mode <= 0o777:
        raise _fail(agent, cred, f"mode {cred.mode!r} is not a file mode")
    return mode


def resolve(
    agent: Agent, env: Mapping[str, str] | None = None, *, run: Runner = subprocess.run
) -> Resolved:
    """Resolve every credential `agent` declares, or raise CredentialError (all or nothing)."""
    env = os.environ if env is None else env
    out_env: dict[str, str] = {}
    files: list[SecretFile] = []
    for cred in agent.credentials:
        raw = _source(agent.name, cred, env, run)
        as_env = cred.as_env or (cred.from_env if not cred.as_file else "")
        if not as_env and not cred.as_file:
            raise _fail(agent.name, cred, "says neither as_env nor as_file")
        if as_env:
            try:
                out_env[as_env] = raw.decode()
            except UnicodeDecodeError:
                raise _fail(agent.name, cred, "is binary; deliver it with as_file") from None
            if "\0" in out_env[as_env]:
                raise _fail(agent.name, cred, "contains a NUL byte; deliver it with as_file")
        if cred.as_file:
            files.append(SecretFile(cred.name, cred.as_file, raw, _mode(agent.name, cred)))
    return Resolved(agent=agent.name, env=out_env, files=tuple(files))


def place_files(resolved: Resolved, home: Path) -> list[Path]:
    """Write the agent's files into a local box whose home is `home` (local backend)."""
    written = []
    for f in resolved.files:
        dest = Path(f.path_in(str(home)))
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(dest, f.data, mode=f.mode)
        written.append(dest)
    return written


def box_dir(fleet: str, agent: str) -> Path:
    """A private (0700) per-agent directory outside `.fleet/` for local credential files."""
    from relayfleet.core.privdir import ensure_private_dir

    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/relayfleet-{os.getuid()}"
    top = Path(base) / "relayfleet"
    d = top / fleet / agent
    try:  # the shared /tmp stand-in must be ours before anything secret goes below it
        if os.environ.get("XDG_RUNTIME_DIR"):
            Path(base).mkdir(parents=True, exist_ok=True, mode=0o700)
        else:
            ensure_private_dir(Path(base))
        for p in (top, top / fleet, d):
            ensure_private_dir(p)
    except PermissionError as exc:
        raise CredentialError(f"agent {agent!r}: no private place for its files: {exc}") from None
    return d


def redact(text: str, resolved: Resolved) -> str:
    """`text` with every resolved value replaced by ***; for logs that might echo them."""
    for v in sorted(resolved.values(), key=len, reverse=True):
        if len(v) >= 4:
            text = text.replace(v, "***")
    return text
