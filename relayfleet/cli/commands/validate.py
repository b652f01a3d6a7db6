"""`gh fleet validate`: check every file under .fleet/ (what a PR check runs)."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="check .fleet/ against the schema (exit 1 on any error)",
        description="Check every file under .fleet/: TOML syntax, types, unknown keys, dangling "
        "references, duplicate ports and names, watch filters. Prints `file:line: level: "
        "message`; exits 1 on any error (warnings alone pass).",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.fleet.validate import has_errors, validate

    problems = validate(ctx.paths)
    failed = has_errors(problems)
    if args.json:
        print_json(
            ctx.out,
            {"ok": not failed, "problems": [p.to_json() for p in problems]},
        )
        return 1 if failed else 0
    for p in problems:
        print(str(p), file=ctx.out)
    errors = sum(p.level == "error" for p in problems)
    warnings = len(problems) - errors
    if failed:
        print(
            f"gh fleet: {errors} error(s), {warnings} warning(s) in {ctx.paths.fleet}", file=ctx.err
        )
        return 1
    suffix = f" ({warnings} warning(s))" if warnings else ""
    print(f"✓ {ctx.paths.fleet} is valid{suffix}", file=ctx.out)
    return 0
