"""The real Claude Code client for offline tests (research/real-claude-offline.md).

Shared by the engine, CLI and gateway tests: `claude_binary()` installs the pinned npm package
once into `~/.cache/relayfleet/claude-code-<version>` (under a file lock, into a temp dir renamed
into place, so concurrent test sessions never see a half-installed tree) and returns the `claude`
executable, or None with the reason in `why_unavailable()`; `claude_or_skip()` is that for a test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import npmcache

VERSION = "2.1.331"
PACKAGE = "@anthropic-ai/claude-code"
# The key the client is given offline: shaped like a real one, accepted only by the fake API.
API_KEY = "sk-ant-api03-relayfleet-offline-test-key-0123456789abcdef"

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


def claude_or_skip() -> Path:
    """The `claude` executable, or the calling test is skipped saying why there is none."""
    import pytest  # here, not above: benchmarks/wake_latency.py imports this module too

    binary = claude_binary()
    if binary is None:
        pytest.skip(f"real Claude Code unavailable: {why_unavailable()}")
    return binary


def user_texts(request: Any) -> list[str]:
    """Every user-turn text block the model was sent in one Messages request."""
    out = []
    for m in request.body.get("messages", []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        out += [b.get("text", "") for b in blocks or [] if b.get("type") == "text"]
    return out


def seed_config_dir(config_dir: Path, *, cwd: Path, api_key: str) -> None:
    """Pre-seed `.claude.json` so no onboarding, API-key or trust dialog appears."""
    config_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {str(cwd.resolve()): {"hasTrustDialogAccepted": True}},
    }
    (config_dir / ".claude.json").write_text(json.dumps(data))
