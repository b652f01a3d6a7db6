"""`gh fleet init`: create `.fleet/` at the top of the git work tree."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context
from relayfleet.cli.edit_flags import add_edit_flags, edit_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="create .fleet/ in this git repo (runs git init if needed)")
    p.add_argument("--name", help="the fleet's name (default: the directory's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing fleet's config")
    p.add_argument("--no-commit", action="store_true", help="write the files but do not commit")
    add_edit_flags(p)
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.fleet.gitops import fleet_log
    from relayfleet.fleet.scaffold import init_fleet

    root = init_fleet(
        ctx.cwd,
        name=args.name,
        force=args.force,
        commit=not args.no_commit,
        edit=edit_options(ctx, args),
    )
    print(f"Created {root / '.fleet'}", file=ctx.out)
    if not args.no_commit:  # like every other editing command: say which commit holds it
        last = fleet_log(root, n=1)
        if last:
            print(f"Committed {last[0].short}: {last[0].subject}", file=ctx.out)
    print("Next: gh fleet new-agent <name> --role coder --repo owner/name", file=ctx.out)
    return 0
