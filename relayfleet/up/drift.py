"""What `up` runs versus what HEAD says, for `gh fleet status` (read-only, no process control).

`up` records what it applied in `state/up.json`; `drift` compares that with the repository now.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from relayfleet.core.atomic import read_json
from relayfleet.core.errors import FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import PidRecord


def fleet_digest(paths: FleetPaths) -> str:
    """A digest of every config file under .fleet/ (not state/): what `up` has applied."""
    h = hashlib.sha256()
    if not paths.fleet.is_dir():
        return ""
    for p in sorted(paths.fleet.rglob("*")):
        rel = p.relative_to(paths.fleet).as_posix()
        if rel.startswith("state/") or rel == "state" or not p.is_file():
            continue
        with contextlib.suppress(OSError):
            h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def up_state_path(paths: FleetPaths) -> Path:
    return paths.state / "up.json"


def _short(commit: str | None) -> str:
    return commit[:7] if commit else ""


def _head(paths: FleetPaths) -> str | None:
    from relayfleet.fleet.gitops import head_commit

    try:
        return head_commit(paths.root)
    except FleetError:
        return None
    except Exception:  # a repository caught mid-write (a ref being updated): try next tick
        return None


def drift(paths: FleetPaths) -> dict[str, Any]:
    """For `status`: is `up` running, which commit is live, and is that what HEAD says?

    `in_sync` is true when the live config is HEAD's, with no uncommitted edit applied and no
    newer edit waiting (or refused), and no failing `--pull`.
    """
    st = read_json(up_state_path(paths), None)
    if not isinstance(st, dict):
        return {"running": False}
    start = st.get("pid_start")
    rec = PidRecord(pid=int(st.get("pid") or 0), start=str(start) if start else None, started_at=0)
    if not rec.alive():
        return {"running": False}
    head = _head(paths)
    live = st.get("live_commit")
    pending = fleet_digest(paths) != st.get("fleet_digest")
    uncommitted = list(st.get("uncommitted") or [])
    refused = st.get("refused") or None
    return {
        "running": True,
        "pid": rec.pid,
        "live_commit": live,
        "head_commit": head,
        # A failing `--pull` means HEAD itself is behind what was merged: not in sync either.
        "in_sync": head == live
        and not pending
        and not uncommitted
        and not refused
        and not st.get("pull_error"),
        "uncommitted": uncommitted,
        "pending_change": pending,
        "refused": refused.get("message") if isinstance(refused, dict) else None,
        "agents": sorted(st.get("agents") or {}),
        "held": sorted(st.get("held") or []),
        "pull_interval": st.get("pull_interval"),
        "pull_error": st.get("pull_error") or None,
    }


def describe_drift(d: dict[str, Any]) -> str:
    """One line for `gh fleet status`."""
    if not d.get("running"):
        return "up: not running (`gh fleet up` runs the fleet and follows git)"
    live, head = _short(d.get("live_commit")), _short(d.get("head_commit"))
    where = f"up: running (pid {d['pid']}); live {live or 'uncommitted'}"
    pull = d.get("pull_error")
    if d.get("held"):
        where += f"; held stopped: {', '.join(d['held'])} (`gh fleet start` runs them)"
    if d.get("in_sync"):
        return f"{where} = HEAD (in sync)"
    why = []
    if d.get("refused"):
        why.append(f"the latest change was refused: {d['refused']}")
    elif d.get("pending_change"):
        why.append("an edit under .fleet/ is not applied yet")
    if head != live:
        why.append(f"HEAD is {head or 'unborn'}")
    if d.get("uncommitted"):
        why.append(f"running uncommitted edits ({', '.join(d['uncommitted'][:3])})")
    if pull:
        why.append(_pull_line(pull))
    return f"{where}; DRIFT: " + "; ".join(why or ["unknown"])


def _pull_line(err: dict[str, Any]) -> str:
    return f"pull failing since {err.get('since')}: {err.get('reason')}"
