"""`gh fleet demo`: the whole system offline, in a minute, leaving nothing behind."""

from __future__ import annotations

import argparse

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline offline: fake GitHub, router, three agent sessions",
        description=(
            "Creates a throwaway fleet in a temp dir, starts a fake GitHub and three agents "
            "(coder, reviewer, manager) whose sessions are a fake `claude`, then plays a short "
            "story: an assigned issue, a PR, a needs-human label, an outsider blocked by the gate, "
            "and a kill -9 of the router mid-story. No GitHub account or Claude login needed."
        ),
    )
    p.add_argument("--keep", action="store_true", help="keep the fleet and print how to explore it")
    p.add_argument("--fast", action="store_true", help="shorter pauses (used by the test suite)")
    p.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.core.errors import FleetError
    from relayfleet.demo.run import Demo, summary

    demo = Demo(ctx.out, fast=args.fast, colour=ctx.is_tty)
    print("relayfleet demo: GitHub → router → agent sessions, offline\n", file=ctx.out)
    try:
        result = demo.run()
    except KeyboardInterrupt:
        if not args.keep:
            demo.cleanup()
        raise
    except FleetError as exc:
        # A failed demo is worth reading: keep its files and name one that exists.
        exc.hints += [f"the demo's files are kept in {demo.tmp}", f"see {demo.log_file()}"]
        raise
    except Exception:
        print(f"gh fleet: the demo's files are kept in {demo.tmp}", file=ctx.err)
        print(f"  hint: see {demo.log_file()}", file=ctx.err)
        raise
    print("", file=ctx.out)
    for line in summary(result):
        print(line, file=ctx.out)
    if not result.ok:
        print("gh fleet: the demo did not go as scripted (see above)", file=ctx.err)
        print(f"  hint: its files are kept in {demo.tmp}; see {demo.log_file()}", file=ctx.err)
        return 1
    if args.keep:
        root = demo.paths.root
        print(f"\nThe fleet is kept in {root}. Explore it", file=ctx.out)
        print(
            "(`gh fleet` once installed as an extension, `./gh-fleet` from a checkout):",
            file=ctx.out,
        )
        print(f"  cd {root} && gh fleet route && gh fleet history", file=ctx.out)
        print("  gh fleet inbox coder    # what the router delivered", file=ctx.out)
        print(f"  cat {demo.tmp / 'up.log'}   # every process's output", file=ctx.out)
    else:
        demo.cleanup()
        print(
            "\nNext: `gh fleet demo --keep` to explore the fleet it built, or in your own repo:",
            file=ctx.out,
        )
        print(
            "  gh fleet init && gh fleet new-agent coder --role coder --repo you/repo", file=ctx.out
        )
    return 0
