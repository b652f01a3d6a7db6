"""GitHub's webhook payloads as recorded by the community: npm `@octokit/webhooks-examples`.

`examples()` installs the pinned package once into `~/.cache/relayfleet/webhooks-examples-<v>`
(the same cache as the real Claude Code client, under a file lock, into a temp dir renamed into
place) and returns `{event name: [payload, …]}`, or None with the reason in `why_unavailable()`.
`python -m tests.webhook_examples` installs it (what `scripts/test.sh` runs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests import npmcache

VERSION = "7.6.1"
PACKAGE = "@octokit/webhooks-examples"

_why: list[str] = []


def cache_dir(version: str = VERSION) -> Path:
    return npmcache.cache_dir("webhooks-examples", version)


def _index(root: Path) -> Path:
    return (
        root / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
    )


def install(version: str = VERSION) -> Path | None:
    """The package's `api.github.com/index.json`, installing it on first use."""
    return npmcache.install(PACKAGE, version, "webhooks-examples", _index, _why)


def examples(version: str = VERSION) -> dict[str, list[dict[str, Any]]] | None:
    index = install(version)
    if index is None:
        return None
    return {e["name"]: list(e["examples"]) for e in json.loads(index.read_text())}


def why_unavailable() -> str:
    return _why[-1] if _why else "the webhook examples are unavailable"


if __name__ == "__main__":
    got = install()
    print(got if got else f"not installed: {why_unavailable()}")
    sys.exit(0 if got else 1)
