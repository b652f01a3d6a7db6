"""Pinned npm packages the tests use, installed once into `~/.cache/relayfleet/<name>-<version>`
(`RELAYFLEET_CACHE` overrides the base): under a file lock, into a temp dir renamed into place,
so concurrent test sessions never see a half-installed tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir(name: str, version: str) -> Path:
    base = Path(os.environ.get("RELAYFLEET_CACHE", Path.home() / ".cache" / "relayfleet"))
    return base / f"{name}-{version}"


def install(
    package: str,
    version: str,
    name: str,
    wanted: Callable[[Path], Path],
    why: list[str],
    *,
    timeout: float = 600,
) -> Path | None:
    """`wanted(root)` (a file inside the install), installing `package@version` on first use;
    None, with the reason appended to `why`, when npm is missing or fails."""
    root = cache_dir(name, version)
    if wanted(root).exists():
        return wanted(root)
    if shutil.which("npm") is None:
        why.append("npm is not installed")
        return None
    from filelock import FileLock

    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=timeout):
        if wanted(root).exists():
            return wanted(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        (tmp / "package.json").write_text(json.dumps({"name": f"rf-{name}", "private": True}))
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"{package}@{version}"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0 or not wanted(tmp).exists():
            shutil.rmtree(tmp, ignore_errors=True)
            why.append(f"npm install {package}@{version} failed: {proc.stderr.strip()[-300:]}")
            return None
        os.replace(tmp, root)
    return wanted(root)
