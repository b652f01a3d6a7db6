"""Content hygiene on hostile text: the cost grows linearly with the input (no regex blow-up).

Issue and comment bodies are written by anyone on a public repository, and the router cleans
every one (router/hygiene.py) before it reaches an inbox. A pattern that backtracks would let
one crafted body stall the router. For each adversarial shape, this times `clean` on N and 4N
characters and prints the ratio: about 4 means linear; a quadratic pattern shows about 16.

    python benchmarks/hygiene_scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.router.hygiene import clean, clean_field

SHAPES: dict[str, Callable[[int], str]] = {
    "link, then spaces": lambda n: "[a](" + " " * n,
    "many link starts": lambda n: "](  " * (n // 4),
    "quoted tags": lambda n: '<a"' * (n // 3),
    "unclosed tag": lambda n: "<a " + "x" * n,
    "image alt starts": lambda n: "![" * (n // 2),
    "unclosed image alt": lambda n: "![" + "a" * n,
    "comment starts": lambda n: "<!--" * (n // 4),
    "nested comments": lambda n: "<!" * (n // 16) + "-- x -->" + "-- y -->" * (n // 16),
    "reference, then spaces": lambda n: "[r]: " + " " * n + "x",
    "entity starts": lambda n: "&#" * (n // 2),
    "invisible characters": lambda n: "a\u200b" * (n // 2),
    "mixed": lambda n: ('<img alt="' + "<!-" + "](" + " ") * (n // 16),
}


def best_of(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller inputs, fewer runs")
    args = p.parse_args()
    n, runs = (8_000, 2) if args.quick else (32_000, 3)
    print(f"{'shape':26s} {'N':>7s} {'t(N)':>9s} {'t(4N)':>9s} {'ratio':>6s}")
    worst = 0.0
    for name, make in SHAPES.items():
        small, big = make(n), make(4 * n)
        t1 = best_of(lambda s=small: (clean(s), clean_field(s)), runs)  # type: ignore[misc]
        t4 = best_of(lambda s=big: (clean(s), clean_field(s)), runs)  # type: ignore[misc]
        ratio = t4 / t1 if t1 else 0.0
        worst = max(worst, ratio)
        print(f"{name:26s} {n:7d} {t1 * 1e3:8.1f}ms {t4 * 1e3:8.1f}ms {ratio:6.1f}")
    print(f"worst ratio {worst:.1f} (linear: ~4; quadratic: ~16)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
