"""Build a real router (client, cache, cursor, file transport) against the fake GitHub, and run
`gh fleet` commands in-process against it."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.core.atomic import read_jsonl
from relayfleet.core.paths import FleetPaths
from relayfleet.fakes.github_hooks import hook_payload
from relayfleet.fleet.filters import parse_filter
from relayfleet.fleet.model import Route, Watch
from relayfleet.router.cursor import Cursor
from relayfleet.router.github import GitHubClient, HttpCache, token_fingerprint
from relayfleet.router.pipeline import RouterConfig
from relayfleet.router.poller import Poller
from relayfleet.router.webhook import parse_event


def watch(name: str, kind: str, repo: str, filter: str = "", poll_sec: int = 30) -> Watch:
    return Watch(name=name, kind=kind, repo=repo, filter=filter, poll_sec=poll_sec)


def route(index: int, to: list[str] | str, **match: Any) -> Route:
    norm = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in match.items()}
    return Route(index=index, match=norm, to=(to,) if isinstance(to, str) else tuple(to))


def config(watches: list[Watch], routes: list[Route], agents: list[str]) -> RouterConfig:
    return RouterConfig(
        watches=tuple(watches),
        routes=tuple(routes),
        agents=tuple(agents),
        queries={w.name: parse_filter(w.kind, w.filter) for w in watches},
    )


@dataclass
class Rig:
    paths: FleetPaths
    base_url: str
    token: str
    clock: Any = None

    def poller(self) -> Poller:
        """A fresh poller, as after a restart: everything reloaded from disk."""
        cache = HttpCache.load(self.paths.http_cache, token_fingerprint(self.token))
        kw = {"clock": self.clock} if self.clock else {}
        client = GitHubClient(self.base_url, self.token, cache, timeout=10, **kw)
        from relayfleet.cli.commands.router import transport_factory

        # One transport per agent for the router's life, as `router run` wires it.
        from relayfleet.fleet.model import Fleet

        inboxes = transport_factory(self.paths, lambda: Fleet(name="rig", agents={}))
        return Poller(
            client=client,
            cursor=Cursor.load(self.paths.cursor),
            transport_for=inboxes,
            status_path=self.paths.router_status,
            min_period=0,
            **kw,
        )

    def inbox(self, agent: str) -> list[dict[str, Any]]:
        return read_jsonl(self.paths.inbox(agent))


def deliver_hook(
    poller: Poller, cfg: RouterConfig, fake: Any, event: str, repo: str, *args: Any, **kw: Any
) -> None:
    """GitHub's `event` delivery about `repo` as `fake` renders it (`hook_payload`'s arguments),
    parsed and handed to `poller` as the router's receiver does."""
    got = parse_event(event, hook_payload(fake, event, repo, *args, **kw))
    poller.intake(got.items, got.comments, cfg, partial=got.partial)


def make_rig(tmp: Path, fake: Any, clock: Any = None) -> Rig:
    root = tmp / "fleet"
    (root / ".fleet").mkdir(parents=True)
    (root / ".fleet" / "fleet.toml").write_text('[fleet]\nname = "t"\n')
    return Rig(FleetPaths(root), fake.base_url, fake.token, clock)


def write_fleet(
    root: Path,
    agents: list[str],
    watches: list[Watch],
    routes: list[Route],
    api_url: str = "https://api.github.com",
) -> FleetPaths:
    """A real `.fleet/` on disk (fleet.toml, routes.toml, agents/*/agent.toml)."""
    fleet = root / ".fleet"
    (fleet / "agents").mkdir(parents=True, exist_ok=True)
    (fleet / "fleet.toml").write_text(f'[fleet]\nname = "t"\n\n[github]\napi_url = "{api_url}"\n')
    for i, name in enumerate(agents):
        d = fleet / "agents" / name
        d.mkdir(exist_ok=True)
        (d / "agent.toml").write_text(f'name = "{name}"\nrole = "coder"\nport = {8801 + i}\n')
    out: list[str] = []
    for w in watches:
        out += ["[[watch]]", f'name = "{w.name}"', f'kind = "{w.kind}"', f'repo = "{w.repo}"',
                f"filter = {w.filter!r}", f"poll_sec = {w.poll_sec}", ""]  # fmt: skip
    for r in routes:
        out += ["[[route]]", f"to = {list(r.to)!r}", "[route.match]"]
        out += [f"{k} = {list(v)!r}" for k, v in r.match.items()] + [""]
    (fleet / "routes.toml").write_text("\n".join(out).replace("'", '"'))
    return FleetPaths(root)


def cli(
    root: Path, fake: Any, *argv: str, env_extra: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`gh fleet <argv>` in-process on the fleet at `root`, against `fake`: (rc, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {**keep, "FLEET_ROOT": str(root), "FLEET_GITHUB_API_URL": fake.base_url,
           "GH_TOKEN": fake.token, "FLEET_ROUTER_MIN_PERIOD": "0", **(env_extra or {})}  # fmt: skip
    rc = main(list(argv), Context(out=out, err=err, env=env, cwd=root))
    return rc, out.getvalue(), err.getvalue()
