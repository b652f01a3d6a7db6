"""Crash fuzz: kill a real router with SIGKILL N times during a stream of GitHub changes, then
count events expected vs delivered, lost and duplicated (goal: 0 lost, 0 duplicated).

    python benchmarks/crash_fuzz.py [kills] [seed] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.router.crash_harness import run_crash_fuzz, summary

FIGURE = r"lost +\d+"  # the figure the test suite looks for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kills", type=int, nargs="?", default=60, help="SIGKILLs (default 60)")
    ap.add_argument("seed", type=int, nargs="?", default=1, help="random seed (default 1)")
    ap.add_argument("--quick", action="store_true", help="3 kills (the test suite)")
    args = ap.parse_args()
    kills, seed = (3 if args.quick else args.kills), args.seed
    with tempfile.TemporaryDirectory() as tmp:
        result = run_crash_fuzz(Path(tmp), kills=kills, seed=seed)
    for k, v in summary(result).items():
        print(f"{k:<24}{v}")
    for line in (result.lost + result.duplicates + result.regressions)[:20]:
        print("  !", line)


if __name__ == "__main__":
    main()
