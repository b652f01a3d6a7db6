"""`gh fleet history` (the fleet's topology changes, commit by commit) and `gh fleet diff`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayfleet.cli.context import Context

if TYPE_CHECKING:
    from relayfleet.fleet.model import Fleet

NO_CHANGE = "(no topology change: comments or formatting)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history",
        help="the fleet's changes as a readable log (commits touching .fleet/)",
    )
    p.add_argument("-n", type=int, default=20, metavar="N", help="at most N commits (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_history)

    d = sub.add_parser(
        "diff",
        help="what changed in the fleet between a git ref and the working tree",
        description="The semantic difference between <ref> (default HEAD) and .fleet/ as it is "
        "on disk now: agents, watches, routes and hosts added, removed or changed.",
    )
    d.add_argument("ref", nargs="?", default="HEAD", help="a commit, branch or tag (default HEAD)")
    d.add_argument("--json", action="store_true", help="print the changes as a JSON list")
    d.set_defaults(func=run_diff)


def _fleet_from(texts: dict[str, str]) -> tuple[Fleet | None, bool]:
    """The fleet a tree holds (None: no `.fleet/` TOML at all), and whether it is partial:
    agent or route files without `fleet.toml` (committed before it, e.g. after
    `init --no-commit`). A partial fleet gets default settings; only errors in the files it
    does have are raised."""
    from relayfleet.core.errors import ConfigError
    from relayfleet.fleet.schema import FLEET_TOML, display, load_fleet_from_texts

    if not texts:
        return None, False
    if FLEET_TOML in texts:
        return load_fleet_from_texts(texts), False
    problems: list[ConfigError] = []
    fleet = load_fleet_from_texts(texts, problems)
    for exc in problems:
        if exc.file != display(FLEET_TOML):
            raise exc
    return fleet, True


def commit_changes(root: Path, sha: str, parent: str | None) -> list[str]:
    """The semantic summary of one commit (against its first parent)."""
    from relayfleet.core.errors import ConfigError
    from relayfleet.fleet.gitops import fleet_texts_at
    from relayfleet.fleet.semantic import diff_fleets

    try:
        new, new_partial = _fleet_from(fleet_texts_at(root, sha))
    except ConfigError as exc:
        return [f"! the fleet at this commit does not load: {exc}"]
    try:
        old, old_partial = _fleet_from(fleet_texts_at(root, parent)) if parent else (None, False)
    except ConfigError:
        old, old_partial = None, False  # the parent was broken; show this commit's fleet in full
    if new is None:
        return ["-fleet (.fleet/ removed)"] if old is not None else [NO_CHANGE]
    changes = diff_fleets(old, new, old_partial=old_partial, new_partial=new_partial)
    return changes or [NO_CHANGE]


def history_entries(root: Path, n: int) -> list[dict[str, Any]]:
    from relayfleet.fleet.gitops import fleet_log

    entries = []
    for c in fleet_log(root, n):
        entries.append(
            {
                "commit": c.sha,
                "author": c.author,
                "date": c.date,
                "subject": c.subject,
                "changes": commit_changes(root, c.sha, c.parents[0] if c.parents else None),
            }
        )
    return entries


def run_history(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.core.errors import UsageError

    if args.n < 1:
        raise UsageError("-n must be at least 1")
    entries = history_entries(ctx.paths.root, args.n)
    if args.json:
        print_json(ctx.out, entries)
        return 0
    if not entries:
        print("No commits touch .fleet/ yet.", file=ctx.out)
        return 0
    for i, e in enumerate(entries):
        if i:
            print(file=ctx.out)
        date = e["date"].replace("T", " ")[:16]
        print(f"{e['commit'][:7]}  {date}  {e['author']}  {e['subject']}", file=ctx.out)
        for line in e["changes"]:
            print(f"    {line}", file=ctx.out)
    return 0


def run_diff(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.fleet.gitops import fleet_texts_at, head_commit
    from relayfleet.fleet.semantic import diff_fleets

    paths = ctx.paths
    if args.ref == "HEAD" and head_commit(paths.root) is None:
        old, old_partial = None, False  # no commits yet: everything on disk is new
    else:
        old, old_partial = _fleet_from(fleet_texts_at(paths.root, args.ref))
    new = ctx.load(fallback=True)
    changes = diff_fleets(old, new, old_partial=old_partial)
    if args.json:
        print_json(ctx.out, changes)
        return 0
    if not changes:
        print(f"No fleet changes since {args.ref}.", file=ctx.out)
    for line in changes:
        print(line, file=ctx.out)
    return 0
