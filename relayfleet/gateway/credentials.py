"""The gateway's real credential, read afresh for every request.

`ANTHROPIC_API_KEY` from the gateway's own environment wins (sent as `x-api-key`). Otherwise the
machine's Claude Code login: `claudeAiOauth.accessToken` in `<config dir>/.credentials.json`
(`$CLAUDE_CONFIG_DIR`, else `~/.claude`), sent as `Authorization: Bearer` together with the
`anthropic-beta: oauth-2025-04-20` flag that the Messages API requires for OAuth tokens. The file
is re-read on every request (a small read), so the refresh Claude Code performs is picked up at
once and nothing is cached in memory longer than one request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from relayfleet.core.errors import CredentialError

OAUTH_BETA = "oauth-2025-04-20"


@dataclass(frozen=True)
class RealCredential:
    kind: str  # "api_key" | "oauth"
    value: str
    expires_at: float | None = None  # unix seconds (oauth), when the file says

    def headers(self) -> dict[str, str]:
        if self.kind == "api_key":
            return {"x-api-key": self.value}
        return {"authorization": f"Bearer {self.value}"}

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at < time.time()


def credentials_file(env: Mapping[str, str], home: Path | None = None) -> Path:
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]).expanduser() / ".credentials.json"
    return (home or Path(env.get("HOME") or Path.home())) / ".claude" / ".credentials.json"


class CredentialSource:
    """Reads the machine's credential on each call to `current()`; holds no secret itself."""

    def __init__(self, env: Mapping[str, str], *, path: Path | None = None) -> None:
        self._api_key_env = env.get("ANTHROPIC_API_KEY") or ""
        self.path = path or credentials_file(env)

    @property
    def kind(self) -> str:
        if self._api_key_env:
            return "api_key"
        return "oauth" if self.path.is_file() else "none"

    def current(self) -> RealCredential:
        if self._api_key_env:
            return RealCredential("api_key", self._api_key_env)
        try:
            data = json.loads(self.path.read_text())
            oauth = data["claudeAiOauth"]
            token = str(oauth["accessToken"])
        except FileNotFoundError:
            raise CredentialError(
                f"the gateway has no credential (no ANTHROPIC_API_KEY, no {self.path})",
                hints=["set ANTHROPIC_API_KEY for the gateway, or log in with `claude`"],
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CredentialError(f"{self.path}: no claudeAiOauth.accessToken ({exc})") from exc
        expires = oauth.get("expiresAt")
        return RealCredential(
            "oauth", token, float(expires) / 1000 if isinstance(expires, int | float) else None
        )
