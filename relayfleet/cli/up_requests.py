"""`stop`/`start` of agents that a running `gh fleet up` manages: asked of `up`, then awaited.

`up` would restart a runner stopped behind its back, so the request goes through
`up/control.py`: `stop` holds the agent stopped (until `start`), `start` releases it. Each
waits until `up` has done it, so the command's output is as true as without `up`.
"""

from __future__ import annotations

from typing import Any, TextIO

from relayfleet.core.atomic import read_json
from relayfleet.core.errors import BackendError
from relayfleet.core.paths import FleetPaths
from relayfleet.core.procs import live_pid
from relayfleet.up.control import running_up, update_holds, wait_for

STOP_TIMEOUT = 60.0


def _state(paths: FleetPaths) -> dict[str, Any]:
    return running_up(paths) or {}


def stop_via_up(paths: FleetPaths, up: dict[str, Any], names: list[str], out: TextIO) -> None:
    """Hold `names` stopped in `up`, and return once their runners are gone."""
    pid, start = int(up["pid"]), up.get("pid_start")
    already = set(up.get("held") or [])
    update_holds(paths, pid, start, add=names)

    def done() -> bool:
        st = _state(paths)
        if not st:
            return True  # `up` itself stopped (and everything with it)
        held, running = set(st.get("held") or []), set(st.get("agents") or {})
        return all(
            n in held and n not in running and live_pid(paths.runner_pid(n)) is None for n in names
        )

    if not wait_for(done, STOP_TIMEOUT):
        raise BackendError(
            f"up (pid {pid}) did not stop {', '.join(names)} within {STOP_TIMEOUT:g}s",
            hints=["see its terminal; `gh fleet status` shows what runs"],
        )
    for n in names:
        what = "not running" if n in already else "stopped"
        print(f"{n}: {what} (held by up (pid {pid}) until `gh fleet start {n}`)", file=out)


def start_via_up(
    paths: FleetPaths,
    up: dict[str, Any],
    names: list[str],
    out: TextIO,
    err: TextIO,
    *,
    wait: bool,
    timeout: float,
) -> int:
    """Release `names` in `up`; unless `wait` is false, return once their sessions are up."""
    pid, start = int(up["pid"]), up.get("pid_start")
    held = set(up.get("held") or [])
    for n in names:
        if n not in held:
            print(f"{n}: already running (managed by up (pid {pid}))", file=out)
    todo = [n for n in names if n in held]
    if not todo:
        return 0
    update_holds(paths, pid, start, remove=todo)
    if not wait:
        for n in todo:
            print(f"{n}: started by up (pid {pid})", file=out)
        return 0
    rc = 0
    for n in todo:

        def up_now(name: str = n) -> bool:
            st = _state(paths)
            rec = live_pid(paths.runner_pid(name))
            facts = read_json(paths.runner_status(name), {}) or {}
            return not st or (
                name in (st.get("agents") or {})
                and (
                    name in st.get("remote", [])
                    or (
                        rec is not None
                        and facts.get("pid") == rec.pid
                        and facts.get("session") == "up"
                    )
                )
            )

        if wait_for(up_now, timeout):
            facts = read_json(paths.runner_status(n), {}) or {}
            how = facts.get("delivery") or "?"
            print(
                f"{n}: started by up (pid {pid}) (pid {facts.get('pid')}, delivery {how})", file=out
            )
        else:
            print(f"{n}: released, but up (pid {pid}) has not brought it up yet", file=err)
            print(f"  hint: gh fleet logs {n} --runner", file=err)
            rc = 1
    return rc
