"""`python -m relayfleet.gateway <fleet_root>`: run the gateway of that fleet in the foreground.

The wiring (loading the fleet, watching it for changes) belongs to the CLI layer, which the
gateway may not import; so this entry point hands over to `gh fleet gateway run` in-place.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        print("usage: python -m relayfleet.gateway <fleet_root>", file=sys.stderr)
        raise SystemExit(2)
    os.environ["FLEET_ROOT"] = os.path.abspath(argv[0])
    os.execv(sys.executable, [sys.executable, "-m", "relayfleet", "gateway", "run"])


if __name__ == "__main__":
    main(sys.argv[1:])
