"""The real Claude Code client for offline tests (research/real-claude-offline.md).

Shared by the engine tests and the gateway tests: `claude_binary()` installs the pinned npm package
once into `~/.cache/relayfleet/claude-code-<version>` (under a file lock, into a temp dir renamed
into place, so concurrent test sessions never see a half-installed tree) and returns the `claude`
executable, or None with the reason in `why_unavailable()`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests import npmcache

VERSION = "2.1.331"
PACKAGE = "@anthropic-ai/claude-code"

_why: list[str] = []


def cache_dir(version: str = VERSION) -> Path:
    return npmcache.cache_dir("claude-code", version)


def _bin(root: Path) -> Path:
    return root / "node_modules" / ".bin" / "claude"


def claude_binary(version: str = VERSION) -> Path | None:
    """The installed `claude` executable, installing it on first use; None when npm can't."""
    return npmcache.install(PACKAGE, version, "claude-code", _bin, _why, timeout=900)


def why_unavailable() -> str:
    return _why[-1] if _why else "the real claude client is unavailable"


def seed_config_dir(config_dir: Path, *, cwd: Path, api_key: str) -> None:
    """Pre-seed `.claude.json` so no onboarding, API-key or trust dialog appears."""
    config_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {str(cwd.resolve()): {"hasTrustDialogAccepted": True}},
    }
    (config_dir / ".claude.json").write_text(json.dumps(data))
