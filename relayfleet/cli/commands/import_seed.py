"""`gh fleet import <seed-dir>`: bring a fleet of the seed tool (JSON) in as `.fleet/` TOML."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from relayfleet.cli.context import Context
from relayfleet.cli.edit_flags import add_edit_flags, edit_options

if TYPE_CHECKING:
    from relayfleet.fleet.seed import Plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="convert a seed fleet (fleet.json, routes.json, agents/*/config.json) into .fleet/",
        description=(
            "Reads a fleet of the seed tool: fleet.json, routes.json, agents/<name>/config.json "
            "and CLAUDE.md, and plugins/. Writes .fleet/ in this git repository (git init when "
            "there is none) in one commit, and lists everything it could not carry over. "
            "Runtime state (inboxes, the router's cursor) is not imported."
        ),
    )
    p.add_argument("seed_dir", metavar="seed-dir", help="the seed fleet's directory")
    p.add_argument("--no-commit", action="store_true", help="write the files but do not commit")
    p.add_argument("--dry-run", action="store_true", help="only say what would be imported")
    add_edit_flags(p)
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from pathlib import Path

    from relayfleet.fleet.seed import check_plan, import_seed, plan_import

    seed = (ctx.cwd / Path(args.seed_dir).expanduser()).resolve()
    if args.dry_run:
        plan = plan_import(seed)
        errors = check_plan(plan)
        _summary(ctx, plan, "Would import")
        for e in errors:
            print(f"  error: {e}", file=ctx.out)
        return 1 if errors else 0
    result = import_seed(ctx.cwd, seed, commit=not args.no_commit, edit=edit_options(ctx, args))
    _summary(ctx, result.plan, f"Imported into {result.root / '.fleet'}:")
    if result.commit:
        from relayfleet.fleet.gitops import fleet_log

        last = fleet_log(result.root, n=1)[0]
        print(f"Committed {last.short}: {last.subject}", file=ctx.out)
    print("Next: gh fleet validate && gh fleet route, then gh fleet up", file=ctx.out)
    return 0


def _summary(ctx: Context, plan: Plan, head: str) -> None:
    agents = ", ".join(plan.agents) or "none"
    print(
        f"{head} fleet {plan.name}: {len(plan.agents)} agent(s) ({agents}), "
        f"{plan.watches} watch(es), {plan.routes} route(s)",
        file=ctx.out,
    )
    if plan.notes:
        print(f"Not carried over ({len(plan.notes)}):", file=ctx.out)
        for note in plan.notes:
            print(f"  ! {note}", file=ctx.out)
    else:
        print("Everything was carried over.", file=ctx.out)
