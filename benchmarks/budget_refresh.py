"""The budget gate's refresh on a long session: reading the transcript whole each time, next to
reading only what was appended since the last refresh (runner/transcripts.py).

A runner with a token budget counts its session's usage every `BudgetGate.fresh_for` seconds,
from Claude Code's transcript: append-only JSONL that grows to tens of MB over a long session.
This writes a 20 MB transcript (assistant turns with `usage`, tool results, user lines), then
appends one turn before each refresh and counts it both ways, checking they agree each time.

    python benchmarks/budget_refresh.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayfleet.runner.budget import total, transcript_usage
from relayfleet.runner.transcripts import TranscriptTally

FIGURE = r"incremental: [\d,.]+x less time per refresh"


def turn(rnd: random.Random, n: int) -> str:
    """One turn as Claude Code writes it: the prompt, assistant blocks, a tool result."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    usage = {
        "input_tokens": rnd.randrange(1, 50),
        "output_tokens": rnd.randrange(50, 900),
        "cache_creation_input_tokens": rnd.randrange(0, 3000),
        "cache_read_input_tokens": rnd.randrange(10_000, 90_000),
    }
    text = "".join(rnd.choice("abcdefgh ijklmnop\n") for _ in range(300))
    rows: list[dict[str, object]] = [
        {"type": "user", "timestamp": ts, "uuid": f"u{n}", "message": {"content": text}},
    ]
    for block in range(2):  # one line per content block, each with the message's usage
        msg = {"id": f"msg_{n}", "content": [{"type": "text", "text": text}], "usage": usage}
        rows.append({"type": "assistant", "timestamp": ts, "uuid": f"a{n}.{block}", "message": msg})
    output = "".join(rnd.choice("0123456789abcdef\n") for _ in range(rnd.randrange(500, 4000)))
    rows.append({"type": "user", "timestamp": ts, "message": {"content": [{"output": output}]}})
    return "".join(json.dumps(r) + "\n" for r in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a 2 MB transcript, fewer refreshes")
    args = p.parse_args()
    size_mb, refreshes = (2, 5) if args.quick else (20, 20)
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp) / "session.jsonl"
        n = 0
        with open(t, "w") as f:
            while f.tell() < size_mb << 20:
                f.write(turn(rnd, n))
                n += 1
        files = [t]
        tally = TranscriptTally()
        first = time.perf_counter()
        tally.usage(files)
        first = time.perf_counter() - first
        full_t = inc_t = 0.0
        full_b = inc_b = appended = 0
        for _ in range(refreshes):
            more = turn(rnd, n)
            n += 1
            appended += len(more)
            with open(t, "a") as f:
                f.write(more)
            start = time.perf_counter()
            whole = transcript_usage(files)
            full_t += time.perf_counter() - start
            full_b += t.stat().st_size
            before = tally.bytes_read
            start = time.perf_counter()
            counted = tally.usage(files)
            inc_t += time.perf_counter() - start
            inc_b += tally.bytes_read - before
            if counted != whole:
                print("the incremental count differs from the full read", file=sys.stderr)
                return 1
        tokens = sum(total(c) for c in whole.values())
        mb = t.stat().st_size / (1 << 20)
    print(
        f"transcript {mb:.1f} MB ({n:,} turns, {tokens:,} tokens), {refreshes} refreshes, "
        f"{appended / refreshes / 1024:.1f} KB appended before each"
    )
    print(f"{'':14s} {'read/refresh':>14s} {'time/refresh':>13s}")
    for name, nbytes, secs in (("full re-read", full_b, full_t), ("incremental", inc_b, inc_t)):
        kb, ms = nbytes / refreshes / 1024, secs / refreshes * 1e3
        print(f"{name:14s} {kb:11.1f} KB {ms:10.2f} ms")
    print(f"(the incremental count's first refresh reads it all: {first * 1e3:.0f} ms)")
    print(
        f"incremental: {full_t / inc_t:,.0f}x less time per refresh, "
        f"{full_b / inc_b:,.0f}x fewer bytes read; the same figures"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
