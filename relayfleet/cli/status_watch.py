"""`gh fleet status --watch`: the router and every agent as a live table (rich `Live`).

The data is `status`'s own (`cli/status_snapshot.py`), redrawn in place every `interval`
seconds, so it never flickers. The terminal is in cbreak mode while the table runs (a single `q`
quits without Enter; Ctrl-C still works) and is restored on every way out.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import Any

from relayfleet.cli.agent_facts import human_age
from relayfleet.cli.context import Context
from relayfleet.cli.status_snapshot import snapshot
from relayfleet.core.errors import FleetError

COLUMNS = ("name", "state", "pid", "delivery", "pending", "last event", "restarts", "cursor age")
# Narrow terminals: shorter headers first, then columns cut (with …) in this order, the least
# useful first: event ids before names; the pid is never cut (a cut pid is a wrong pid).
SHORT_HEADERS = {"pending": "pend", "restarts": "rst", "cursor age": "age"}
SHRINK = (
    ("last event", 14),
    ("delivery", 7),
    ("state", 7),
    ("last event", 6),
    ("delivery", 5),
    ("name", 8),
)
DROP = ("cursor age", "restarts", "last event", "delivery")
TABLE_OVERHEAD = 3 * len(COLUMNS) + 1  # rich's box: a rule and padding of 1 around each cell


def fit_columns(rows: list[list[str]], width: int) -> tuple[tuple[str, ...], dict[str, int]]:
    """Headers and a width per column so that the table fits `width` terminal cells."""
    from rich.text import Text

    headers: tuple[str, ...] = COLUMNS
    cells = [[Text.from_markup(c).cell_len for c in row] for row in rows]

    def natural(hdrs: tuple[str, ...]) -> dict[str, int]:
        return {col: max([len(hdrs[i])] + [r[i] for r in cells]) for i, col in enumerate(COLUMNS)}

    widths = natural(headers)
    room = width - TABLE_OVERHEAD
    if sum(widths.values()) > room:
        headers = tuple(SHORT_HEADERS.get(c, c) for c in COLUMNS)
        widths = natural(headers)
    for col, least in SHRINK:
        over = sum(widths.values()) - room
        if over <= 0:
            break
        widths[col] = max(least, widths[col] - over)
    for col in DROP:  # narrower still: whole columns go before the pid is cut
        if sum(widths.values()) - room <= 0:
            break
        del widths[col]
        room += 3
    return headers, widths


def _router_row(r: dict[str, Any], watching: bool) -> list[str]:
    state = "[green]running[/]" if r.get("running") else "[red]stopped[/]"
    if r.get("running") and watching:
        state += " (up)"
    if r.get("error"):
        state += " [yellow]![/]"
    broken = r.get("broken_watches") or {}
    behind = r.get("catching_up_pages") or 0
    doing = f"{len(broken)} broken watch(es)" if broken else "github poll"
    if behind:
        doing = f"catching up: {behind} page{'s' if behind != 1 else ''} behind"
    last = f"cycle {human_age(r.get('last_cycle_age_s'))} ago" if r.get("last_cycle") else "-"
    return [
        "[bold]router[/]",
        state,
        str(r.get("pid") or "-"),
        doing,
        str(r.get("pending") or 0),
        last,
        "-",
        human_age(r.get("cursor_age_s")),
    ]


def _agent_row(a: dict[str, Any]) -> list[str]:
    if a.get("error"):
        state = "[red]error[/]"
    elif a.get("running"):
        state = "[green]running[/]" if a.get("session") == "up" else "[yellow]restarting[/]"
        if a.get("session") == "asleep":
            state = "[blue]asleep[/]"
        if (a.get("budget") or {}).get("state") == "over":
            state = "[red]over budget[/]"
    else:
        state = "[dim]stopped[/]"
    last = a.get("last_delivered") or "-"
    if a.get("last_delivered_at"):
        # The age first: when the column is cut, the id loses its tail, not the age.
        last = f"{human_age(time.time() - float(a['last_delivered_at']))} ago {last}"
    return [
        a["name"],
        state,
        str(a.get("pid") or "-"),
        (a.get("delivery") or "-") + (" (attached)" if a.get("attached") else ""),
        "-" if a.get("pending") is None else str(a["pending"]),
        last,
        "-" if a.get("restarts") is None else str(a["restarts"]),
        "-",
    ]


def render(snap: dict[str, Any], *, fleet_name: str, problem: str = "", width: int = 120) -> Any:
    """The table for one snapshot (a rich renderable), fitted to `width` cells."""
    from rich.console import Group, RenderableType
    from rich.table import Table
    from rich.text import Text

    from relayfleet.up.drift import describe_drift

    up = snap.get("up") or {}
    rows = [_router_row(snap["router"], bool(up.get("running")))]
    rows += [_agent_row(a) for a in snap["agents"]]
    headers, widths = fit_columns(rows, width)
    table = Table(title=f"fleet {fleet_name}", title_justify="left", expand=False)
    shown = [i for i, col in enumerate(COLUMNS) if col in widths]
    for i in shown:
        table.add_column(headers[i], no_wrap=True, overflow="ellipsis", width=widths[COLUMNS[i]])
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    lines: list[RenderableType] = [
        table,
        Text(describe_drift(up), style="green" if up.get("in_sync") else "yellow"),
    ]
    if snap.get("approvals_waiting"):
        n = snap["approvals_waiting"]
        lines.append(Text(f"approvals: {n} waiting (gh fleet approvals)", style="yellow"))
    if problem:
        lines.append(Text(problem, style="red"))
    lines.append(Text(f"{time.strftime('%H:%M:%S')}  q quits", style="dim"))
    return Group(*lines)


class _Source:
    """Reloads the fleet each tick (it may change under `up`); a broken edit keeps the last."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.fleet = ctx.load(fallback=True)  # a broken tree: the committed fleet
        self.problem = ""

    def frame(self, width: int = 120) -> Any:
        try:
            self.fleet = self.ctx.load()
            self.problem = ""
        except FleetError as exc:
            self.problem = f"config: {exc} (showing the last good one)"
        return render(snapshot(self.ctx, self.fleet), fleet_name=self.fleet.name,
                      problem=self.problem, width=width)  # fmt: skip


@contextlib.contextmanager
def cbreak(fd: int | None) -> Iterator[None]:
    """Keys arrive one at a time, unechoed; the saved settings come back on any exit."""
    if fd is None:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def watch(ctx: Context, *, interval: float = 1.0) -> int:
    from rich.console import Console

    source = _Source(ctx)
    if not ctx.is_tty:
        # Not a terminal (a pipe, a file, CI): one frame, like `status`, never a stream of them.
        Console(file=ctx.out, force_terminal=False, width=120).print(source.frame())
        print("(not a terminal: printed once; run `status --watch` in a terminal)", file=ctx.err)
        return 0
    stdin = sys.stdin.fileno() if sys.stdin and sys.stdin.isatty() else None
    console = Console(file=ctx.out)
    from rich.live import Live

    with (
        cbreak(stdin),
        contextlib.suppress(KeyboardInterrupt),
        Live(
            source.frame(console.width), console=console, auto_refresh=False, transient=False
        ) as live,
    ):
        while True:
            if stdin is None:
                time.sleep(interval)
            else:
                ready, _, _ = select.select([stdin], [], [], interval)
                if ready and b"q" in os.read(stdin, 64).lower():
                    break
            live.update(source.frame(console.width), refresh=True)  # follows a resize
    return 0
