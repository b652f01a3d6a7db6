"""Crash fuzz: kill a real router with SIGKILL N times during a stream of GitHub changes, then
count events expected vs delivered, lost and duplicated (goal: 0 lost, 0 duplicated).

    python benchmarks/crash_fuzz.py [kills] [seed]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.router.crash_harness import run_crash_fuzz, summary


def main() -> None:
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory() as tmp:
        result = run_crash_fuzz(Path(tmp), kills=kills, seed=seed)
    for k, v in summary(result).items():
        print(f"{k:<24}{v}")
    for line in (result.lost + result.duplicates + result.regressions)[:20]:
        print("  !", line)


if __name__ == "__main__":
    main()
