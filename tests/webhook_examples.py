"""GitHub's webhook payloads as recorded by the community: npm `@octokit/webhooks-examples`.

`examples()` installs the pinned package once into `~/.cache/relayfleet/webhooks-examples-<v>`
(the same cache as the real Claude Code client, under a file lock, into a temp dir renamed into
place) and returns `{event name: [payload, …]}`, or None with the reason in `why_unavailable()`.
`python -m tests.webhook_examples` installs it (what `scripts/test.sh` runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

VERSION = "7.6.1"
PACKAGE = "@octokit/webhooks-examples"

_why: list[str] = []


def cache_dir(version: str = VERSION) -> Path:
    base = Path(os.environ.get("RELAYFLEET_CACHE", Path.home() / ".cache" / "relayfleet"))
    return base / f"webhooks-examples-{version}"


def _index(root: Path) -> Path:
    return (
        root / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
    )


def install(version: str = VERSION) -> Path | None:
    """The package's `api.github.com/index.json`, installing it on first use."""
    root = cache_dir(version)
    if _index(root).exists():
        return _index(root)
    if shutil.which("npm") is None:
        _why.append("npm is not installed")
        return None
    from filelock import FileLock

    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=600):
        if _index(root).exists():
            return _index(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        (tmp / "package.json").write_text(json.dumps({"name": "rf-hooks", "private": True}))
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"{PACKAGE}@{version}"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not _index(tmp).exists():
            shutil.rmtree(tmp, ignore_errors=True)
            _why.append(f"npm install {PACKAGE}@{version} failed: {proc.stderr.strip()[-300:]}")
            return None
        os.replace(tmp, root)
    return _index(root)


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
