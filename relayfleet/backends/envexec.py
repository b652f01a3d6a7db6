"""`python -m relayfleet.backends.envexec <envfile> -- <argv…>`: exec argv with extra env.

How the ssh backend hands credentials to a remote runner without putting them in argv (where
`ps` shows them) or in tmux's command line: a 0600 JSON file of name -> value, pushed over SFTP,
which this reads, deletes, merges into the environment, then `execvp`s the runner. Stdlib only.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: envexec <envfile> -- <argv…>", file=sys.stderr)
        return 2
    path, cmd = argv[0], argv[2:]
    try:
        with open(path, encoding="utf-8") as f:
            extra = json.load(f)
        os.unlink(path)  # one-shot: the values now live only in this process's environment
    except FileNotFoundError:
        extra = {}
    os.environ.update({str(k): str(v) for k, v in extra.items()})
    os.execvp(cmd[0], cmd)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
