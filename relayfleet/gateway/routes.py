"""The gateway's routing table: sentinel -> agent -> hops to its upstream (pure, no I/O).

An agent is routed through the gateway when its endpoint mode is `gateway`, or `custom` with
`via_gateway = true`. Its upstream is its `[claude.endpoint] url` when set, else the fleet's
`[gateway] upstream`. Opt-in stages (`[claude.endpoint] stages = ["pii", …]`, names resolved in
`[gateway.stages]`) sit in front of the upstream, in order: gateway -> stage 1 -> … -> upstream.

The real credentials are attached only when the upstream is the fleet's configured upstream or
an Anthropic host over https: a custom upstream (a local model server, a third-party proxy) never
receives the operator's Anthropic credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from relayfleet.core.errors import ConfigError
from relayfleet.core.sentinel import sentinel_for
from relayfleet.fleet.model import Agent, Fleet

# Stage chaining convention (docs/gateway.md): the gateway sends the request to the first stage
# with the remaining hops in NEXT_HEADER; each stage forwards to the first of them (same path and
# query) with the rest, and drops both headers when none remain.
NEXT_HEADER = "X-Relayfleet-Next"
AGENT_HEADER = "X-Relayfleet-Agent"


@dataclass(frozen=True)
class GatewayRoute:
    agent: str
    sentinel: str
    upstream: str  # the final upstream base URL
    stages: tuple[str, ...] = ()  # stage base URLs, in order
    stage_names: tuple[str, ...] = ()
    credentials: bool = True  # attach the machine's real credentials

    @property
    def first_hop(self) -> str:
        return self.stages[0] if self.stages else self.upstream

    @property
    def next_hops(self) -> tuple[str, ...]:
        """What the first hop is told to forward to (empty without stages)."""
        return (*self.stages[1:], self.upstream) if self.stages else ()


def uses_gateway(agent: Agent) -> bool:
    ep = agent.claude.endpoint
    return ep.mode == "gateway" or (ep.mode == "custom" and ep.via_gateway)


def _origin(url: str) -> tuple[str, str, int | None]:
    u = urlsplit(url)
    port = u.port or {"https": 443, "http": 80}.get(u.scheme)
    return (u.scheme.lower(), (u.hostname or "").lower(), port)


def trusted_for_credentials(upstream: str, fleet_upstream: str) -> bool:
    if _origin(upstream) == _origin(fleet_upstream):
        return True
    scheme, host, _ = _origin(upstream)
    return scheme == "https" and (host == "anthropic.com" or host.endswith(".anthropic.com"))


def build_routes(fleet: Fleet, secret: bytes) -> list[GatewayRoute]:
    """One route per gateway-routed agent, sorted by agent name."""
    routes = []
    for name in sorted(fleet.agents):
        agent = fleet.agents[name]
        if not uses_gateway(agent):
            continue
        ep = agent.claude.endpoint
        upstream = (ep.url or fleet.gateway.upstream).rstrip("/")
        if ep.mode == "custom" and not ep.url:
            raise ConfigError(f"agent {name!r}: endpoint mode custom needs a url")
        stage_urls = []
        for stage in ep.stages:
            url = fleet.gateway.stages.get(stage)
            if not url:
                known = ", ".join(sorted(fleet.gateway.stages)) or "none configured"
                raise ConfigError(
                    f"agent {name!r}: unknown gateway stage {stage!r} (stages: {known})",
                    hints=[f'add `{stage} = "http://127.0.0.1:PORT"` under [gateway.stages]'],
                )
            stage_urls.append(url.rstrip("/"))
        routes.append(
            GatewayRoute(
                agent=name,
                sentinel=sentinel_for(secret, name),
                upstream=upstream,
                stages=tuple(stage_urls),
                stage_names=tuple(ep.stages),
                credentials=trusted_for_credentials(upstream, fleet.gateway.upstream),
            )
        )
    return routes


def route_dict(route: GatewayRoute) -> dict[str, Any]:
    """The `gateway routes --json` row (ARCHITECTURE 3.9; fields may be added, never renamed)."""
    return {
        "agent": route.agent,
        "sentinel": route.sentinel,
        "upstream": route.upstream,
        "stages": list(route.stage_names),
        "stage_urls": list(route.stages),
        "credentials": route.credentials,
    }


def routes_table(fleet: Fleet, secret: bytes) -> list[dict[str, Any]]:
    return [route_dict(r) for r in build_routes(fleet, secret)]


def match(routes: Sequence[GatewayRoute], key: str) -> GatewayRoute | None:
    """The route whose sentinel is `key`; constant time per route, every route compared."""
    import hmac

    found = None
    given = key.encode()
    for r in routes:
        if hmac.compare_digest(given, r.sentinel.encode()) and found is None:
            found = r
    return found
