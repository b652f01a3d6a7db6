"""`gh fleet sandbox issue|pr|comment|label`: make things happen on the fake GitHub that a
running `gh fleet up --sandbox` serves, to watch the fleet's routes deliver them."""

from __future__ import annotations

import argparse
from typing import Any

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sandbox",
        help="open issues and PRs, comment, label on the fake GitHub of `gh fleet up --sandbox`",
        description="Drives the fake GitHub that a running `gh fleet up --sandbox` serves for "
        "this fleet. Items are made as an outside user would make them; the sandbox's router "
        "picks them up on its next poll and routes them as your routes.toml says.",
    )
    s = p.add_subparsers(dest="sandbox_cmd", metavar="<subcommand>", parser_class=type(p))
    p.set_defaults(func=_need_sub, parser=p)

    def who(q: argparse.ArgumentParser) -> None:
        q.add_argument("--repo", help="owner/name (default: the sandbox's first repo)")
        q.add_argument("--author", default="alice", help="the author's login (default alice)")
        q.add_argument(
            "--association",
            default="MEMBER",
            help="the author's association: OWNER, MEMBER, COLLABORATOR, NONE, … (default MEMBER)",
        )

    issue = s.add_parser("issue", help="open an issue")
    issue.add_argument("title", help="the issue's title")
    issue.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    issue.add_argument("--assign", action="append", default=[], help="a login, or @me (the fleet)")
    issue.add_argument("--body", default="", help="the issue's text")
    who(issue)
    issue.set_defaults(func=run, kind="issue")

    pr = s.add_parser("pr", help="open a pull request")
    pr.add_argument("title", help="the pull request's title")
    pr.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    pr.add_argument("--body", default="", help="the pull request's text")
    who(pr)
    pr.set_defaults(func=run, kind="pr")

    comment = s.add_parser("comment", help="comment on an issue or PR (it re-fires)")
    comment.add_argument("number", type=int, help="the issue or PR number")
    comment.add_argument("body", help="the comment's text")
    who(comment)
    comment.set_defaults(func=run, kind="comment")

    label = s.add_parser("label", help="add a label to an issue or PR")
    label.add_argument("number", type=int, help="the issue or PR number")
    label.add_argument("name", help="the label")
    who(label)
    label.set_defaults(func=run, kind="label")


def _need_sub(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.core.errors import UsageError

    raise UsageError("`gh fleet sandbox` needs a subcommand (see `gh fleet sandbox --help`)")


def run(ctx: Context, args: argparse.Namespace) -> int:
    from relayfleet.core.errors import FleetError, UsageError
    from relayfleet.demo.sandbox import running_sandbox
    from relayfleet.fakes.github import RemoteFakeGitHub

    sb = running_sandbox(ctx.paths)
    repos: list[str] = list(sb.get("repos") or [])
    repo = args.repo or (repos[0] if repos else "")
    if repo not in repos:
        raise UsageError(f"the sandbox has no repo {repo!r} (it has: {', '.join(repos) or 'none'})")
    gh: Any = RemoteFakeGitHub(sb["url"], sb["token"])
    login = str(sb.get("login") or "")
    try:
        if args.kind == "issue":
            assignees = [login if a == "@me" else a for a in args.assign]
            n = gh.open_issue(
                repo, args.title, args.author, args.association, args.label, assignees, args.body
            )
            what = f"opened issue {repo}#{n}"
        elif args.kind == "pr":
            n = gh.open_pr(repo, args.title, args.author, args.association, args.label)
            what = f"opened pull request {repo}#{n}"
        elif args.kind == "comment":
            gh.comment(repo, args.number, args.author, args.association, args.body)
            what = f"commented on {repo}#{args.number}"
        else:
            gh.label(repo, args.number, args.name)
            what = f"labelled {repo}#{args.number} {args.name}"
    except OSError as exc:
        import json
        import urllib.error

        if isinstance(exc, urllib.error.HTTPError):  # it answered, with a reason
            try:
                why = json.loads(exc.read()).get("message") or str(exc)
            except ValueError:
                why = str(exc)
            raise FleetError(f"the sandbox's fake GitHub refused: {why}") from None
        raise FleetError(f"the sandbox's fake GitHub did not answer: {exc}") from None
    print(f"{what}; the sandbox's router polls every few seconds. See where it went:", file=ctx.out)
    print(f"  FLEET_ROOT={sb['root']} gh fleet status", file=ctx.out)
    return 0
