"""The fleet's vocabulary: frozen dataclasses built from `.fleet/*.toml` (pure, no I/O).

Every layer may read these; only `fleet/` builds them (`fleet.load.load_fleet`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("issues", "pulls", "runs", "notifications")
ROLES = ("coder", "reviewer", "manager", "orchestrator", "base")
BACKENDS = ("local", "docker", "ssh")
TRANSPORTS = ("file", "shared", "ssh", "http")
ENDPOINT_MODES = ("default", "custom", "gateway")
ENGINES = ("claude", "command")
WORKSPACE_MODES = ("clone", "worktree", "none")
FETCH_MODES = ("on-event", "on-start", "never")
# `[github] clone_url`: where a workspace is cloned from; `{repo}` is owner/name.
DEFAULT_CLONE_URL = "https://github.com/{repo}.git"
UNTRUSTED = ("drop", "hold")  # what a route does with items from authors outside its gate
MATCH_KEYS = (
    "watch",
    "repo",
    "kind",
    "label",
    "author",
    "state",
    "title_contains",
    "association",
)


# The router never polls a stream more often than this (FLEET_ROUTER_MIN_PERIOD overrides it for
# demos and tests): a smaller `poll_sec` is raised to it. `watch add` refuses less; `validate`
# warns, naming the period the router will really use.
ROUTER_MIN_POLL_SEC = 10


@dataclass(frozen=True)
class Watch:
    name: str
    kind: str
    repo: str
    filter: str = ""
    poll_sec: int = 240


@dataclass(frozen=True)
class Route:
    index: int  # 1-based position in routes.toml, as shown by `gh fleet route`
    match: dict[str, tuple[str, ...]]  # every value normalised to a tuple (any-of)
    to: tuple[str, ...]
    # Items that match every key but `association` (an author outside the gate): "drop" them,
    # or "hold" them in the quarantine for a trusted person to release (router/quarantine.py).
    untrusted: str = "drop"

    @property
    def catch_all(self) -> bool:
        return not self.match

    @property
    def gated(self) -> bool:
        """Whether the route lets only some authors through (has an `association` key)."""
        return "association" in self.match


@dataclass(frozen=True)
class Host:
    name: str
    backend: str  # ssh | docker
    host: str = ""  # user@addr for ssh; docker: a DOCKER_HOST url or "" for the local engine
    port: int = 22
    workdir: str = ""
    os: str = "linux"
    key: str = ""  # path to a private key (a reference, never the key itself)


@dataclass(frozen=True)
class Endpoint:
    mode: str = "default"
    url: str = ""
    via_gateway: bool = False
    stages: tuple[str, ...] = ()  # opt-in gateway upstream stages (PII redaction, compression)


@dataclass(frozen=True)
class ClaudeConfig:
    engine: str = "claude"
    command: tuple[str, ...] = ("claude",)
    args: tuple[str, ...] = ()
    remote_control: bool = True
    isolate_config: bool = True
    inherit_auth: bool = True
    endpoint: Endpoint = field(default_factory=Endpoint)


@dataclass(frozen=True)
class Runtime:
    backend: str = "local"
    host: str = ""
    inbox_transport: str = "file"
    image: str = ""  # docker: an image the user names instead of the bundled Dockerfile
    shared_path: str = ""  # shared transport: where the agent's inbox dir is mounted on our side
    cpus: float = 0.0  # docker resource limits; 0 = unlimited
    memory: str = ""
    # Events that arrive while the session is mid-turn go in as one turn when it is next idle,
    # at most this many at a time (runner/coalesce.py).
    coalesce_max: int = 20
    idle_stop_min: int = 0  # stop a session idle this long; the next event resumes it (0: never)


@dataclass(frozen=True)
class Credential:
    name: str
    from_env: str = ""
    from_file: str = ""
    from_command: tuple[str, ...] = ()
    as_env: str = ""
    as_file: str = ""
    mode: str = "0600"


@dataclass(frozen=True)
class Workspace:
    """`[workspace]`: the checkout the agent's session starts in (runner/workspace.py)."""

    mode: str = "none"  # clone | worktree | none (an empty directory)
    repo: str = ""  # "" = the agent's repo; worktree with no repo at all = the fleet's own repo
    branch_prefix: str = ""  # "" = fleet/<agent>/
    fetch: str = "on-event"  # on-event | on-start | never


@dataclass(frozen=True)
class Budget:
    """`[budget]`: tokens (input, output, cache writes and reads) per UTC day; 0 = no limit.
    In fleet.toml also `[budget.prices]`: dollars per million tokens of each kind."""

    tokens_per_day: int = 0
    prices: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Permissions:
    """`[permissions]`: `policy` lets the runner answer every tool call (a PreToolUse hook and
    permission rules in `--settings`); `default` leaves the client's own prompts."""

    mode: str = "default"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()  # and everything neither allowed nor denied
    ask_timeout_min: int = 30  # an unanswered ask is denied after this long


@dataclass(frozen=True)
class Agent:
    name: str
    role: str
    repo: str = ""
    model: str = "sonnet"
    port: int = 0
    plugins: tuple[str, ...] = ("inbox",)
    runtime: Runtime = field(default_factory=Runtime)
    claude: ClaudeConfig = field(default_factory=ClaudeConfig)
    credentials: tuple[Credential, ...] = ()
    ack_timeout_sec: int = 600  # re-send an unacknowledged event after this long
    workspace: Workspace = field(default_factory=Workspace)

    @property
    def workspace_repo(self) -> str:
        """owner/name the workspace checks out; "" = the fleet's own repository."""
        return self.workspace.repo or self.repo

    @property
    def branch_prefix(self) -> str:
        """Every branch this agent makes starts with this: two agents never share a branch."""
        return self.workspace.branch_prefix or f"fleet/{self.name}/"

    budget: Budget = field(default_factory=Budget)
    permissions: Permissions = field(default_factory=Permissions)


@dataclass(frozen=True)
class GatewayConfig:
    enabled: bool = False
    listen: str = "127.0.0.1:8799"
    secret_env: str = "RELAYFLEET_GATEWAY_SECRET"
    upstream: str = "https://api.anthropic.com"
    # `[gateway.stages]`: stage name -> URL of an opt-in upstream stage (PII redaction,
    # compression, …) that agents enable by name in `[claude.endpoint] stages`.
    stages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from (a reference: `.fleet/` never holds the value)."""

    from_env: str = ""
    from_file: str = ""
    from_command: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.from_env or self.from_file or self.from_command)

    def describe(self) -> str:
        if self.from_env:
            return f"env {self.from_env}"
        if self.from_file:
            return f"file {self.from_file}"
        if self.from_command:
            return "command " + " ".join(self.from_command)
        return "(none)"


# GitHub author associations allowed to address an agent with `/fleet <agent> <text>`.
COMMAND_ALLOW_DEFAULT = ("OWNER", "MEMBER", "COLLABORATOR")


@dataclass(frozen=True)
class WebhookConfig:
    """`[webhook]`: the router's receiver for GitHub webhook deliveries (off by default)."""

    enabled: bool = False
    listen: str = "127.0.0.1:8790"
    secret: SecretRef = field(default_factory=SecretRef)
    reconcile_sec: int = 600  # each stream's polling period while webhooks are healthy


@dataclass(frozen=True)
class CommandsConfig:
    """`[commands]`: who may address an agent from a comment."""

    allow: tuple[str, ...] = COMMAND_ALLOW_DEFAULT


@dataclass(frozen=True)
class Fleet:
    name: str
    api_url: str = "https://api.github.com"
    clone_url: str = DEFAULT_CLONE_URL
    default_model: str = "sonnet"
    default_backend: str = "local"
    hosts: dict[str, Host] = field(default_factory=dict)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    budget: Budget = field(default_factory=Budget)
    agents: dict[str, Agent] = field(default_factory=dict)
    watches: tuple[Watch, ...] = ()
    routes: tuple[Route, ...] = ()

    def agent(self, name: str) -> Agent:
        from relayfleet.core.errors import NotFound

        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "none yet"
            raise NotFound(f"no agent named {name!r} (agents: {known})") from None

    def watch(self, name: str) -> Watch | None:
        return next((w for w in self.watches if w.name == name), None)
