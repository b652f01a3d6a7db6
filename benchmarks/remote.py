"""Remote delivery and status figures: `python benchmarks/remote.py [--quick]`.

Starts a real sshd on loopback (the "remote host" is this machine), installs the runner there,
and prints, side by side:
  * inbox delivery latency per transport (file, shared, ssh over the pooled connection, http to
    a runner's HTTP inbox), median and p90 of 30 appends each; for ssh both ways side by side:
    the long-lived per-connection worker (what the transport uses now) and the old exec per
    append (which pays the host's login shell every time);
  * `status` for 10 agents on one ssh host, before and after batching, in the same run: a new
    connection per agent, one pooled connection with one command per agent, and one command per
    host (`SshBackend.status_many`, what `gh fleet status` uses now).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIGURE = r"ssh worker +[\d.]+"  # the figure the test suite looks for

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "remote"))
sys.path.insert(0, str(HERE.parent))  # remote_support imports tests.waiting

import remote_support as rs  # noqa: E402

from relayfleet.backends.ssh import SshBackend  # noqa: E402
from relayfleet.backends.sshpool import SshPool  # noqa: E402
from relayfleet.backends.transports import (  # noqa: E402
    DeliveringTransport,
    FileInbox,
    HttpInbox,
    SharedInbox,
    SshInbox,
    local_http_endpoint,
)
from relayfleet.core.paths import FleetPaths  # noqa: E402
from relayfleet.fleet.load import load_fleet  # noqa: E402

N = 30


def timed(fn, n: int = N) -> tuple[float, float]:
    xs = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1]


AGENTS = 10
SKIPPED = 77  # the exit status that says "cannot run here" (benchmarks/README.md)


def main() -> None:
    global N, AGENTS
    import argparse

    ap = argparse.ArgumentParser(description="remote delivery and status figures")
    ap.add_argument("--quick", action="store_true", help="3 appends per transport (test suite)")
    if ap.parse_args().quick:
        N, AGENTS = 3, 3
    if not Path(rs.SSHD).exists():
        print(f"skipped: no OpenSSH sshd at {rs.SSHD} on this machine")
        sys.exit(SKIPPED)
    tmp = Path(tempfile.mkdtemp(prefix="rfbench"))
    sshd = rs.start_sshd(tmp / "sshd")
    http = None
    try:
        root, workdir = tmp / "op", tmp / "w"
        agents = {
            f"a{i}": rs.fake_claude_agent(tmp / "t.jsonl", "ssh", "vm", "ssh", 8900 + i)
            for i in range(AGENTS)
        }
        rs.ssh_fleet(root, sshd, workdir, name="bench", agents=agents)
        paths = FleetPaths(root)
        fleet = load_fleet(paths)
        backend = SshBackend(pool=SshPool())
        remote = backend.remote(paths, fleet, fleet.agent("a0"))
        t0 = time.perf_counter()
        backend.ensure_installed(remote)
        install_ms = (time.perf_counter() - t0) * 1000

        def ev(prefix: str, i: int) -> dict:
            return {"id": f"{prefix}{i}", "source": "bench", "body": "x", "metadata": {}}

        share = tmp / "share"
        share.mkdir()
        state = paths.agent_state("h")
        state.mkdir(parents=True)
        http = subprocess.Popen([sys.executable, "-m", "relayfleet.runner.http_inbox", str(state)])
        rs.wait_until(lambda: (state / "http-inbox.json").exists(), 20)
        rows = []
        for name, inner, agent in (
            ("file", FileInbox(paths), "f"),
            ("shared", SharedInbox(share), "s"),
            ("ssh worker", SshInbox(fleet, "vm", paths.state), "a0"),
            ("ssh exec (before)", SshInbox(fleet, "vm", paths.state, persistent=False), "a1"),
            ("http", HttpInbox(local_http_endpoint(paths)), "h"),
        ):
            t = DeliveringTransport(inner, paths)
            t.append(
                agent, ev(f"warm-{name.replace(' ', '-')}-", 0)
            )  # connect/handshake outside the timing
            pre = name.replace(" ", "-")
            med, p90 = timed(lambda i, t=t, agent=agent, pre=pre: t.append(agent, ev(pre, i)))
            rows.append((name, med, p90))

        agents = [fleet.agents[n] for n in sorted(fleet.agents)]

        def status_run(label: str, make_pool: bool, batched: bool) -> tuple[str, float, int, int]:
            """AGENTS statuses; (label, ms, connections, remote commands)."""
            before = sshd.accepted()
            pools = []
            t0 = time.perf_counter()
            if batched:
                pools.append(SshPool())
                SshBackend(pool=pools[0]).status_many(paths, fleet, agents)
            else:
                shared = SshPool()
                for a in agents:
                    p = SshPool() if make_pool else shared
                    pools.append(p)
                    SshBackend(pool=p).status(paths, fleet, a)
            ms = (time.perf_counter() - t0) * 1000
            commands = sum(p.commands for p in set(pools))
            for p in set(pools):
                p.close()
            want = AGENTS if make_pool else 1
            rs.wait_until(lambda: sshd.accepted() - before >= want, 10)
            return label, ms, sshd.accepted() - before, commands

        status_rows = [
            status_run("before: a new connection per agent", True, False),
            status_run("before: pooled, one command per agent", False, False),
            status_run("after: pooled, one command per host", False, True),
        ]
        print(f"runner install over SFTP (first time, deps present): {install_ms:.0f} ms\n")
        print(f"{'transport':<18} {'median ms':>10} {'p90 ms':>10}   ({N} appends each)")
        for name, med, p90 in rows:
            print(f"{name:<18} {med:>10.2f} {p90:>10.2f}")
        print(
            f"\n{f'status, {AGENTS} agents on one ssh host':<40} {'total ms':>9} {'conns':>6} "
            f"{'cmds':>5}"
        )
        for label, ms, conns, cmds in status_rows:
            print(f"{label:<40} {ms:>9.0f} {conns:>6} {cmds:>5}")
    finally:
        if http is not None:
            http.terminate()
            http.wait(10)
        sshd.stop()


if __name__ == "__main__":
    main()
