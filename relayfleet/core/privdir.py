"""A per-user private directory under a shared parent such as /tmp, made safe to reuse.

`mkdir(exist_ok=True)` + `chmod` trusts whatever already sits at the path: on a shared machine
another user can create `/tmp/relayfleet-<uid>` first (or a symlink there) and then read, swap
or replace what we put inside. We accept the path only when it is a real directory (not a
symlink) owned by us, and then make it 0700.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    """`path` as a 0700 directory owned by this user; PermissionError when it is anything else."""
    path = Path(path)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(
            f"{path} exists but is not a directory owned by uid {os.getuid()}; "
            "refusing to keep private files there (remove it, or check who created it)"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def current_umask() -> int:
    """This process's umask, without changing it (Linux: /proc; elsewhere set and restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o077)
    os.umask(old)
    return old


def owned_by_me(path: Path) -> bool:
    try:
        return os.lstat(path).st_uid == os.getuid()
    except OSError:
        return False


def tighten(path: Path) -> None:
    """Make `path` a 0700 directory and every file directly in it 0600 (state written before
    the fleet kept it private). Only what this user owns; symlinks are never followed."""
    path = Path(path)
    if not owned_by_me(path) or not stat.S_ISDIR(os.lstat(path).st_mode):
        return
    os.chmod(path, 0o700)
    for entry in os.scandir(path):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if st.st_uid != os.getuid():
            continue
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(entry.path, stat.S_IMODE(st.st_mode) & 0o700)
        elif stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(entry.path, 0o700)
