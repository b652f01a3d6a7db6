"""`/fleet <agent> <text>` and `@<agent> <text>` in a comment's first line (pure: no I/O).

A command addresses one agent directly, bypassing routes, so it is gated on the comment
author's GitHub association (`[commands] allow`, OWNER/MEMBER/COLLABORATOR by default): anyone
else's command is dropped (and logged by the caller). Its dedup key names the comment, so a
command seen by a webhook and then by the comments poll reaches the agent once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from relayfleet.router import hygiene
from relayfleet.router.delivery import one_line

_SLASH = re.compile(r"^/fleet\s+([A-Za-z0-9][A-Za-z0-9-]*)(?:\s+(.*))?$", re.DOTALL)
_AT = re.compile(r"^@([A-Za-z0-9][A-Za-z0-9-]*)(?:\s+(.*))?$", re.DOTALL)
MAX_TEXT = 4000  # a command is an instruction, not a document: the url has the rest


@dataclass(frozen=True)
class Comment:
    """An issue or PR comment, as both the webhook and the comments poll see it."""

    repo: str
    number: int  # the issue or PR it is on
    id: str  # the comment's own id
    author: str
    association: str
    body: str
    url: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class Command:
    agent: str
    text: str
    comment: Comment

    @property
    def key(self) -> str:
        """The ledger key: one per comment (an edit does not re-send it)."""
        return f"command:{self.comment.repo.lower()}#{self.comment.number}/{self.comment.id}"

    @property
    def body(self) -> str:
        c = self.comment
        head = f"[FROM github | command by @{one_line(c.author)} on {c.repo}#{c.number}]"
        return f"{head} {self.text}"


def parse(body: str, agents: Iterable[str]) -> tuple[str, str] | None:
    """(agent, text) when the first line addresses a known agent; None otherwise.

    `/fleet <agent> <text>` or `@<agent> <text>` (the agent's name is its handle). Text on the
    following lines belongs to the command, folded into one line."""
    # What a reader of the page sees: a command hidden in an HTML comment is no command.
    text = hygiene.clean(body or "").text.lstrip()
    first = text.split("\n", 1)[0].strip()
    m = _SLASH.match(first) or _AT.match(first)
    if not m:
        return None
    known = {a.lower(): a for a in agents}
    agent = known.get(m.group(1).lower())
    if agent is None:
        return None
    rest = (m.group(2) or "") + "\n" + (text.split("\n", 1)[1] if "\n" in text else "")
    words = one_line(rest)
    if not words:
        return None
    if len(words) > MAX_TEXT:
        words = words[: MAX_TEXT - 1] + "…"
    return agent, words


def addressed(body: str) -> str | None:
    """The handle a first line addresses (`/fleet x …` or `@x …`), known agent or not."""
    first = (body or "").lstrip().split("\n", 1)[0].strip()
    m = _SLASH.match(first) or _AT.match(first)
    return m.group(1) if m else None


def decide(
    comment: Comment, agents: Iterable[str], allow: Iterable[str]
) -> tuple[Command | None, str]:
    """(the command, "") or (None, why it is not one). An empty why: not a command at all."""
    agents = tuple(agents)
    handle = addressed(comment.body)
    if handle and handle.lower() == "ok":
        return None, ""  # `/fleet ok` releases a held item: the quarantine's (router/holding.py)
    got = parse(comment.body, agents)
    if got is None:
        if handle and comment.body.lstrip().startswith("/fleet"):
            return None, f"/fleet {handle}: no agent by that name"
        return None, ""
    if comment.association.upper() not in {a.upper() for a in allow}:
        who = f"@{comment.author} ({comment.association or 'no association'})"
        return None, f"{who} may not command {got[0]}: not in [commands] allow"
    return Command(agent=got[0], text=got[1], comment=comment), ""


def comment_from_rest(repo: str, obj: dict[str, Any], number: int = 0) -> Comment:
    """A REST/webhook comment object. The issue number comes from `issue_url` when not given."""
    if not isinstance(obj, dict) or "id" not in obj:
        raise ValueError("a comment needs an `id`")
    if not number:
        m = re.search(r"/(?:issues|pulls)/(\d+)$", str(obj.get("issue_url") or ""))
        number = int(m.group(1)) if m else 0
    user = obj.get("user")
    return Comment(
        repo=repo,
        number=number,
        id=str(obj["id"]),
        author=str(user.get("login") or "") if isinstance(user, dict) else "",
        association=str(obj.get("author_association") or ""),
        body=str(obj.get("body") or ""),
        url=str(obj.get("html_url") or ""),
        created_at=str(obj.get("created_at") or ""),
    )


def build_event(cmd: Command, *, ts: str, event_id: str) -> dict[str, Any]:
    """The 3.7 envelope of a command event."""
    c = cmd.comment
    return {
        "id": event_id,
        "ts": ts,
        "source": "github",
        "body": cmd.body,
        "metadata": {
            "kind": "command",
            "repo": c.repo,
            "number": c.number,
            "url": c.url,
            "author": c.author,
            "association": c.association,
            "comment_id": c.id,
            "dedup_key": cmd.key,
        },
    }
