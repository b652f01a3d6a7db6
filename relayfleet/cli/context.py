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

    def load(self, *, fallback: bool = False) -> Fleet:
        """The fleet on disk. With `fallback` (read-only commands), a working tree that does not
        load gives way to the last committed fleet that does, with one warning line naming the
        problem (file:line) and the commit used."""
        from relayfleet.core.errors import ConfigError
        from relayfleet.fleet.load import load_fleet

        try:
            return load_fleet(self.paths)
        except ConfigError as exc:
            if not fallback:
                raise
            from relayfleet.fleet.fallback import committed_fleet

            found = committed_fleet(self.paths, exc)
            if found is None:
                raise
            print(found.warning, file=self.err)
            return found.fleet

    @property
    def is_tty(self) -> bool:
        return hasattr(self.out, "isatty") and self.out.isatty()
