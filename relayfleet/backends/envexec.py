"""`python -m relayfleet.backends.envexec [--keep] <envfile> -- <argv…>`: exec argv with extra env.

How the ssh and docker backends hand credentials (and the gateway sentinel) to a runner without
putting them in argv (where `ps` shows them), tmux's command line or `docker inspect`: a 0600 JSON
file of name -> value, pushed over SFTP or into the container, which this reads, deletes (unless
`--keep`: a container's restart policy re-runs this, and the file lives in the container's own
filesystem), merges into the environment, then `execvp`s the runner. Stdlib only.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    keep = bool(argv) and argv[0] == "--keep"
    if keep:
        argv = argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: envexec [--keep] <envfile> -- <argv…>", file=sys.stderr)
        return 2
    path, cmd = argv[0], argv[2:]
    try:
        with open(path, encoding="utf-8") as f:
            extra = json.load(f)
        if not keep:
            os.unlink(path)  # one-shot: the values now live only in this process's environment
    except FileNotFoundError:
        extra = {}
    os.environ.update({str(k): str(v) for k, v in extra.items()})
    os.execvp(cmd[0], cmd)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
