"""`gh fleet webhook status [--json]` and `gh fleet webhook test <event-file> [--event NAME]`."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

from relayfleet.cli.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("webhook", help="the router's GitHub webhook receiver: status, test")
    wsub = p.add_subparsers(dest="webhook_cmd", metavar="<status|test>")
    wsub.required = True
    st = wsub.add_parser("status", help="settings, and whether deliveries are arriving")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=run)
    t = wsub.add_parser(
        "test",
        help="sign a payload with the fleet's secret and post it to the running receiver",
        description="Sign the JSON payload in EVENT_FILE with the webhook secret (HMAC-SHA256, "
        "as GitHub does) and POST it to the receiver the router runs. The event name is taken "
        "from --event, else guessed from the payload's keys.",
    )
    t.add_argument("event_file", help="a webhook payload (JSON), e.g. saved from GitHub")
    t.add_argument("--event", help="the X-GitHub-Event name (issues, issue_comment, ping, …)")
    t.add_argument("--url", help="post here instead of the [webhook] listen address")
    t.set_defaults(func=run)


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.webhook_cmd == "status":
        return _status(ctx, json_out=args.json)
    return _test(ctx, Path(args.event_file), args.event, args.url)


def guess_event(payload: Any) -> str:
    """The X-GitHub-Event a payload belongs to, from its keys (as `gh webhook forward` saves
    them, the name is not in the body)."""
    if not isinstance(payload, dict):
        return ""
    keys = set(payload)
    if "zen" in keys and "hook_id" in keys:
        return "ping"
    if "workflow_run" in keys:
        return "workflow_run"
    if "pull_request" in keys:
        if "review" in keys:
            return "pull_request_review"
        return "pull_request_review_comment" if "comment" in keys else "pull_request"
    if "issue" in keys:
        return "issue_comment" if "comment" in keys else "issues"
    return ""


def _status(ctx: Context, *, json_out: bool) -> int:
    from relayfleet.cli.output import print_json
    from relayfleet.router import daemon

    fleet = ctx.load()
    wh = fleet.webhook
    live = daemon.status(ctx.paths).get("webhooks")
    out = {
        "enabled": wh.enabled,
        "listen": wh.listen,
        "secret": wh.secret.describe(),
        "reconcile_sec": wh.reconcile_sec,
        "commands_allow": list(fleet.commands.allow),
        "receiver": live,
    }
    if json_out:
        print_json(ctx.out, out)
        return 0
    rows = [
        ("webhooks", "enabled" if wh.enabled else "off ([webhook] enabled = false)"),
        ("listen", wh.listen),
        ("secret", wh.secret.describe()),
        ("reconcile", f"every {wh.reconcile_sec} s while deliveries arrive"),
        ("commands from", ", ".join(fleet.commands.allow) or "nobody"),
    ]
    if live:
        rows.append(("receiver", live["summary"]))
        rows.append(("deliveries", f"{live['accepted']} accepted, {live['duplicates']} "
                     f"redelivered, {live['ignored']} ignored, {live['rejected']} refused (bad "
                     "signature)"))  # fmt: skip
        if live.get("missed"):
            rows.append(("missed", f"{live['missed']} change(s) came only by reconciliation, "
                         f"last {live['missed_last']} at {live['missed_last_at']}: a delivery "
                         "GitHub failed to make, or, if it recurs, an event the webhook is not "
                         "subscribed to (docs/webhooks.md)"))  # fmt: skip
    elif wh.enabled:
        rows.append(("receiver", "not running (`gh fleet router start`)"))
    width = max(len(k) for k, _ in rows) + 2
    ctx.out.write("".join(f"{k + ':':<{width}}{v}\n" for k, v in rows))
    return 0


def _test(ctx: Context, path: Path, event: str | None, url: str | None) -> int:
    from relayfleet.core.errors import ConfigError, FleetError
    from relayfleet.router.webhook import post_delivery
    from relayfleet.router.webhook_loop import read_secret

    fleet = ctx.load()
    try:
        raw = (ctx.cwd / path).read_bytes()
    except OSError as exc:
        raise FleetError(f"cannot read {path}: {exc.strerror}") from None
    try:
        payload = json.loads(raw)
    except ValueError:
        raise FleetError(f"{path} is not JSON") from None
    name = event or guess_event(payload)
    if not name:
        raise FleetError(f"cannot tell which event {path} is", hints=["pass --event NAME"])
    if fleet.webhook.secret.empty:
        raise ConfigError("no [webhook] secret configured in .fleet/fleet.toml")
    secret = read_secret(fleet.webhook.secret, ctx.env, ctx.paths.fleet)
    if url is None:
        host, _, port = fleet.webhook.listen.rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host
        url = f"http://{host}:{port}/"
    try:
        status, text = post_delivery(url, secret, name, raw, delivery=f"test-{uuid.uuid4()}")
    except OSError as exc:
        raise FleetError(
            f"could not reach the receiver at {url}: {getattr(exc, 'reason', exc)}",
            hints=["is the router running with [webhook] enabled? `gh fleet webhook status`"],
        ) from None
    try:
        message = json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        message = text.strip()
    print(f"{name} -> {url}: {status} {message}", file=ctx.out)
    if status >= 300:
        raise FleetError(f"the receiver answered {status}: {message}")
    return 0
