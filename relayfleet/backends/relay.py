"""Hand-offs from runners that cannot reach the target's inbox themselves: the router's side.

A runner on an ssh host cannot write into a local agent's inbox, nor a container into another
host's. Such a runner appends the event, addressed, to its own relay file
(`state/agents/<sender>/relay-out.jsonl`: `{"id", "to", "event"}`, idempotent by id; the
`RelayOut` transport of backends/transports.py). The router, each cycle, reads every remote
sender's relay file from where it stopped (a byte offset kept in `state/relay/<sender>.json`)
and appends each event through the target's own transport, behind the durable outbox: exactly
once (every inbox append is idempotent by event id), in order, and not lost while the target's
host is down.
"""

from __future__ import annotations

from pathlib import Path

from relayfleet.backends.transports import parse_jsonl, relay_path, runs_here, transport_for
from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.errors import FleetError
from relayfleet.core.paths import FleetPaths
from relayfleet.fleet.model import Agent, Fleet


def _cursor_path(paths: FleetPaths, sender: str) -> Path:
    return paths.state / "relay" / f"{sender}.json"


def _read_remote(paths: FleetPaths, fleet: Fleet, sender: Agent, offset: int) -> bytes | None:
    """The sender's relay file from `offset` on, wherever its runner keeps it."""
    if sender.runtime.backend == "ssh":
        from relayfleet.backends.ssh import SshBackend

        backend = SshBackend()
        r = backend.remote(paths, fleet, sender)
        return backend.pool.read(
            r.target, r.layout.relay_out(sender.name), offset=offset, timeout=30
        )
    try:  # docker: the agent's state dir is bind-mounted on this machine
        with open(relay_path(paths, sender.name), "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return None


def collect_relays(paths: FleetPaths, fleet: Fleet) -> dict[str, int]:
    """Carry every remote runner's new hand-offs on to their targets; sender -> how many.

    A host that cannot be read now is skipped (its hand-offs wait there for the next cycle)."""
    out: dict[str, int] = {}
    for name in sorted(fleet.agents):
        sender = fleet.agents[name]
        if runs_here(sender):
            continue
        cursor_file = _cursor_path(paths, name)
        cursor = read_json(cursor_file, {}) or {}
        offset = int(cursor.get("offset", 0))
        try:
            data = _read_remote(paths, fleet, sender, offset)
        except FleetError:
            continue
        if data is None and offset:  # the file went (a fresh host): start over next time
            write_json_atomic(cursor_file, {"offset": 0})
        if not data:
            continue
        n = 0
        done = data.rfind(b"\n") + 1  # whole lines only: a torn tail is still being written
        pos = 0
        for line in data[:done].split(b"\n"):
            pos += len(line) + 1
            if not line.strip():
                continue
            recs = parse_jsonl(line + b"\n")
            rec = recs[0] if recs else {}
            to, event = rec.get("to"), rec.get("event")
            if isinstance(to, str) and to in fleet.agents and isinstance(event, dict):
                try:
                    transport_for(paths, fleet, to).append(to, event)  # lands, or waits
                except FleetError:
                    break  # a transport that cannot even queue: retry this line next cycle
                n += 1
            write_json_atomic(cursor_file, {"offset": offset + pos})
        out[name] = n
    return out
