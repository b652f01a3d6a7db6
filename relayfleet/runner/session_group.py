"""The session's process group on record, and the runner's files kept private.

The PTY child leads its own process group. Its id and the leader's start time go into
runner.json the moment it is spawned, so whoever comes next (`start`, `stop`, `up`, or the next
runner) can kill what a runner killed with `kill -9` left behind, and never a recycled group
(core/procs.py `kill_group`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json
from relayfleet.core.procs import (
    GroupRecord,
    PidRecord,
    forbid_inspection,
    group_record,
    kill_group,
    recorded_group,
)


class SessionGroup:
    """The live session's group: recorded at spawn, killed (what is left of it) at its end."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.rec: GroupRecord | None = None

    def record(self, pid: int) -> None:
        self.rec = group_record(pid)

    def end(self) -> None:
        """The session exited or was stopped: tools it left running in its group go too."""
        killed = kill_group(self.rec)
        if killed:
            self.log.warning("killed %d process(es) the session left behind", killed)
        self.rec = None

    def fields(self) -> dict[str, Any]:
        """For runner.json."""
        return {
            "session_pgid": self.rec.pgid if self.rec else None,
            "session_pgid_start": self.rec.start if self.rec else None,
        }


def reap_previous(runner_json: Path, log: logging.Logger) -> int:
    """Kill what a previous runner that died hard left of its session (recorded in
    runner.json), unless that runner still runs. How many processes were killed."""
    old = read_json(runner_json, {}) or {}
    pid, start = old.get("pid"), old.get("pid_start")
    other = pid if isinstance(pid, int) and pid != os.getpid() else 0
    if other and PidRecord(other, str(start) if start else None, 0.0).alive():
        return 0  # that runner still runs (the backend should not have started us)
    killed = kill_group(recorded_group(old))
    if killed:
        log.warning("killed %d process(es) left by the previous session", killed)
    return killed


def keep_private(state_dir: Path) -> None:
    """Session text (logs, transcripts, inbox, status) is for this user only: 0600 files in a
    0700 directory, for what the runner writes from now on (umask) and what is there already.

    Not when the state belongs to another user (a container's root runner on a mounted fleet
    directory): files only root could read would lock the operator out of their own logs."""
    from relayfleet.core.privdir import owned_by_me, tighten

    state_dir.mkdir(parents=True, exist_ok=True)
    if owned_by_me(state_dir) and owned_by_me(state_dir.parent.parent):
        os.umask(0o077)
        tighten(state_dir)
    # The runner's own environment is the operator's whole one (it resolves declared
    # credentials from it): a session must not read it back from /proc/<runner>/environ.
    forbid_inspection()
