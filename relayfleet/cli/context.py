"""What a command needs from the outside world, injectable for in-process tests."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from relayfleet.core.paths import FleetPaths, find_root

if TYPE_CHECKING:
    from relayfleet.fleet.model import Fleet


@dataclass
class Context:
    out: TextIO
    err: TextIO
    env: dict[str, str]
    cwd: Path
    _paths: FleetPaths | None = field(default=None, repr=False)
    inp: TextIO | None = field(default=None, repr=False)  # None: the process's stdin

    @property
    def stdin(self) -> TextIO:
        return self.inp if self.inp is not None else sys.stdin

    @classmethod
    def from_process(cls) -> Context:
        return cls(out=sys.stdout, err=sys.stderr, env=dict(os.environ), cwd=Path.cwd())

    @property
    def paths(self) -> FleetPaths:
        """The fleet this command acts on (FLEET_ROOT, else walk up from cwd)."""
        if self._paths is None:
            self._paths = FleetPaths(find_root(self.cwd, self.env))
        return self._paths

    def load(self) -> Fleet:
        from relayfleet.fleet.load import load_fleet

        return load_fleet(self.paths)

    @property
    def is_tty(self) -> bool:
        return hasattr(self.out, "isatty") and self.out.isatty()
