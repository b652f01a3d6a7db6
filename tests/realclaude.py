"""The real Claude Code client for offline tests (research/real-claude-offline.md).

Shared by the engine tests and the gateway tests: `claude_binary()` installs the pinned npm package
once into `~/.cache/relayfleet/claude-code-<version>` (under a file lock, into a temp dir renamed
into place, so concurrent test sessions never see a half-installed tree) and returns the `claude`
executable, or None with the reason in `why_unavailable()`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

VERSION = "2.1.331"
PACKAGE = "@anthropic-ai/claude-code"

_why: list[str] = []


def cache_dir(version: str = VERSION) -> Path:
    base = Path(os.environ.get("RELAYFLEET_CACHE", Path.home() / ".cache" / "relayfleet"))
    return base / f"claude-code-{version}"


def _bin(root: Path) -> Path:
    return root / "node_modules" / ".bin" / "claude"


def claude_binary(version: str = VERSION) -> Path | None:
    """The installed `claude` executable, installing it on first use; None when npm can't."""
    root = cache_dir(version)
    if _bin(root).exists():
        return _bin(root)
    if shutil.which("npm") is None:
        _why.append("npm is not installed")
        return None
    from filelock import FileLock

    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=900):
        if _bin(root).exists():
            return _bin(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        (tmp / "package.json").write_text(json.dumps({"name": "rf-claude", "private": True}))
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"{PACKAGE}@{version}"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0 or not _bin(tmp).exists():
            shutil.rmtree(tmp, ignore_errors=True)
            _why.append(f"npm install {PACKAGE}@{version} failed: {proc.stderr.strip()[-300:]}")
            return None
        os.replace(tmp, root)
    return _bin(root)


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
