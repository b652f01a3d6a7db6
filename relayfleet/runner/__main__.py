"""`python -m relayfleet.runner <fleet_root> <agent>`: one agent's runner, in the foreground.

Backends start this detached (`gh fleet start`); it runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print("usage: python -m relayfleet.runner <fleet_root> <agent>", file=sys.stderr)
        return 2
    # The composition root of the runner process: the runner layer does not import backends,
    # so the local backend's credential resolver and the inbox API (hand-offs through each
    # agent's transport, states through each backend) are wired in here.
    from relayfleet.backends.local import prepare_credentials
    from relayfleet.backends.reach import BackendReach
    from relayfleet.runner.supervisor import run_agent

    return run_agent(Path(args[0]), args[1], credentials=prepare_credentials, reach=BackendReach)


if __name__ == "__main__":
    sys.exit(main())
