"""A watch's gh-style `filter` string -> a structured `Query` applied locally (pure).

ARCHITECTURE 5.2. The router never sends these to GitHub's search (which costs points, cannot
answer 304 and lags by minutes): it fetches one coalesced stream per repo and endpoint, and each
watch keeps the items its `Query` accepts. An unknown flag or search qualifier is a `ConfigError`
naming it, so a typo never silently widens or empties a watch.

Defaults follow gh: `gh issue list` / `gh pr list` show open items unless `--state` says otherwise.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from relayfleet.core.errors import ConfigError

# `fleet/` must not import `router/` (layers), so items are duck-typed: anything with the fields
# of `relayfleet.router.items.Item`.
Item = Any

STATES = ("open", "closed", "all", "merged")
RUN_STATUSES = (
    "queued", "in_progress", "completed", "waiting", "requested", "pending", "action_required",
    "cancelled", "failure", "neutral", "skipped", "stale", "startup_failure", "success",
    "timed_out",
)  # fmt: skip
NOTIFICATION_REASONS = (
    "approval_requested", "assign", "author", "ci_activity", "comment", "invitation", "manual",
    "member_feature_requested", "mention", "review_requested", "security_advisory_credit",
    "security_alert", "state_change", "subscribed", "team_mention",
)  # fmt: skip

# flag -> canonical name, per kind. Aliases are gh's short flags.
_COMMON = {"--limit": "limit", "-L": "limit"}
_ISSUE_FLAGS = {
    "--state": "state", "-s": "state",
    "--label": "label", "-l": "label",
    "--assignee": "assignee", "-a": "assignee",
    "--author": "author", "-A": "author",
    "--mention": "mention",
    "--search": "search", "-S": "search",
    **_COMMON,
}  # fmt: skip
_PULL_FLAGS = {**_ISSUE_FLAGS, "--draft": "draft", "-d": "draft", "--base": "base", "-B": "base"}
_RUN_FLAGS = {
    "--status": "status", "-s": "status",
    "--branch": "branch", "-b": "branch",
    "--event": "event", "-e": "event",
    "--workflow": "workflow", "-w": "workflow",
    "--user": "user", "-u": "user",
    "--commit": "commit", "-c": "commit",
    **_COMMON,
}  # fmt: skip
_NOTIFICATION_FLAGS = {"--reason": "reason", "-r": "reason", "--repo": "repo", **_COMMON}
FLAGS: dict[str, dict[str, str]] = {
    "issues": _ISSUE_FLAGS,
    "pulls": _PULL_FLAGS,
    "runs": _RUN_FLAGS,
    "notifications": _NOTIFICATION_FLAGS,
}
_BOOLEAN = {"draft"}  # flags that take no value
_IGNORED_QUALIFIERS = {"sort", "in", "repo", "org", "user", "archived"}  # harmless in a stream


@dataclass(frozen=True)
class Query:
    """What one watch keeps from its stream. Empty fields are wildcards."""

    kind: str
    state: str = "open"  # open | closed | all | merged
    labels: tuple[str, ...] = ()  # every one required (gh --label semantics)
    any_labels: tuple[tuple[str, ...], ...] = ()  # search `label:a,b`: one of each group
    not_labels: tuple[str, ...] = ()
    assignee: str = ""
    author: str = ""
    mention: str = ""
    review_requested: str = ""
    involves: str = ""
    no: tuple[str, ...] = ()  # no:assignee, no:label
    words: tuple[str, ...] = ()  # free text: every word in title or body
    is_pr: bool | None = None
    draft: bool | None = None
    base: str = ""
    # runs
    statuses: tuple[str, ...] = ()
    branch: str = ""
    event: str = ""
    workflow: str = ""
    user: str = ""
    commit: str = ""
    # notifications
    reasons: tuple[str, ...] = ()
    repo: str = ""
    flags: tuple[str, ...] = field(default=(), compare=False)  # as written, for messages

    def matches(self, item: Item, me: str | None = None) -> bool:
        """Whether `item` belongs to this watch. `me` is the login that `@me` stands for."""
        if self.kind in ("issues", "pulls"):
            return self._matches_issue(item, me)
        if self.kind == "runs":
            return self._matches_run(item, me)
        return self._matches_notification(item)

    # -- per kind ---------------------------------------------------------------------------
    def _matches_issue(self, item: Item, me: str | None) -> bool:
        if item.kind not in ("issues", "pulls"):
            return False
        # An issues watch sees issues and a pulls watch PRs, unless `is:pr`/`is:issue` says so.
        is_pr = self.is_pr if self.is_pr is not None else self.kind == "pulls"
        if (item.kind == "pulls") != is_pr:
            return False
        if not _state_ok(self.state, item):
            return False
        labels = {x.lower() for x in item.labels}
        if any(x.lower() not in labels for x in self.labels):
            return False
        if any(not any(x.lower() in labels for x in grp) for grp in self.any_labels):
            return False
        if any(x.lower() in labels for x in self.not_labels):
            return False
        assignees = {x.lower() for x in item.assignees}
        if self.assignee and not _who_in(self.assignee, assignees, me):
            return False
        if self.author and not _who_in(self.author, {item.author.lower()}, me):
            return False
        if self.mention and not _mentions(item, _who(self.mention, me)):
            return False
        if self.review_requested and not _who_in(
            self.review_requested, {x.lower() for x in item.reviewers}, me
        ):
            return False
        if self.involves:
            who = _who(self.involves, me)
            people = {item.author.lower(), *assignees, *(x.lower() for x in item.reviewers)}
            if who not in people and not _mentions(item, who):
                return False
        if "assignee" in self.no and item.assignees:
            return False
        if "label" in self.no and item.labels:
            return False
        if self.draft is not None and item.draft != self.draft:
            return False
        if self.base and item.base.lower() != self.base.lower():
            return False
        text = f"{item.title}\n{item.body_excerpt}".lower()
        return all(w.lower() in text for w in self.words)

    def _matches_run(self, item: Item, me: str | None) -> bool:
        if item.kind != "runs":
            return False
        if self.statuses and not {item.run_status, item.run_conclusion} & set(self.statuses):
            return False
        if self.branch and item.branch != self.branch:
            return False
        if self.event and item.event != self.event:
            return False
        if self.workflow and self.workflow.lower() not in (
            item.workflow.lower(),
            item.workflow_path.rsplit("/", 1)[-1].lower(),
        ):
            return False
        if self.user and not _who_in(self.user, {item.author.lower()}, me):
            return False
        return not self.commit or item.head_sha.startswith(self.commit)

    def _matches_notification(self, item: Item) -> bool:
        if item.kind != "notifications":
            return False
        if self.reasons and item.reason not in self.reasons:
            return False
        return not self.repo or item.repo.lower() == self.repo.lower()


def _state_ok(state: str, item: Item) -> bool:
    if state == "all":
        return True
    if state == "merged":
        return bool(item.merged)
    return bool(item.state == state)


def _who(value: str, me: str | None) -> str:
    if value == "@me":
        if not me:
            # The poller always passes the token's login; reaching this is a wiring bug.
            raise ConfigError("`@me` needs the authenticated login (none was given)")
        return me.lower()
    return value.lower()


def _who_in(value: str, people: set[str], me: str | None) -> bool:
    if value == "*":  # GitHub's "anyone"
        return bool(people - {""})
    if value.lower() == "none":
        return not (people - {""})
    return _who(value, me) in people


def _mentions(item: Item, who: str) -> bool:
    if item.kind == "notifications":
        return item.reason in ("mention", "team_mention")
    text = f"{item.title}\n{item.body_excerpt}".lower()
    return f"@{who}" in text


def _split(text: str, where: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot parse {text!r}: {exc}") from exc


def _unknown(kind: str, flag: str) -> ConfigError:
    accepted = sorted({f for f in FLAGS[kind] if f.startswith("--")})
    return ConfigError(
        f"unknown filter flag {flag!r} for a {kind} watch",
        hints=[f"{kind} watches accept: {', '.join(accepted)}"],
    )


def parse_filter(kind: str, text: str) -> Query:
    """Parse a watch's `filter` (shlex-split gh flags) for a watch of `kind`."""
    if kind not in FLAGS:
        raise ConfigError(f"unknown watch kind {kind!r} (kinds: {', '.join(FLAGS)})")
    table = FLAGS[kind]
    args = _split(text or "", "filter")
    values: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name_part, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        canon = table.get(name_part)
        if canon is None:
            if not arg.startswith("-"):
                raise ConfigError(
                    f"unexpected word {arg!r} in a {kind} watch filter (quote it inside --search)"
                )
            raise _unknown(kind, name_part)
        if canon in _BOOLEAN:
            values.setdefault(canon, []).append("true")
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"filter flag {name_part} needs a value")
            value = args[i + 1]
            i += 2
        values.setdefault(canon, []).append(value)
    return _build(kind, values, tuple(args))


def _one(values: dict[str, list[str]], key: str) -> str:
    got = values.get(key, [])
    return got[-1] if got else ""


def _csv(values: dict[str, list[str]], key: str) -> list[str]:
    return [p.strip() for v in values.get(key, []) for p in v.split(",") if p.strip()]


def _build(kind: str, values: dict[str, list[str]], flags: tuple[str, ...]) -> Query:
    if "limit" in values and not _one(values, "limit").isdigit():
        raise ConfigError(f"--limit needs a number, not {_one(values, 'limit')!r}")
    if kind == "runs":
        statuses = _csv(values, "status")
        bad = [s for s in statuses if s not in RUN_STATUSES]
        if bad:
            raise ConfigError(
                f"unknown run status {bad[0]!r}", hints=[f"statuses: {', '.join(RUN_STATUSES)}"]
            )
        return Query(
            kind=kind,
            state="all",
            statuses=tuple(statuses),
            branch=_one(values, "branch"),
            event=_one(values, "event"),
            workflow=_one(values, "workflow"),
            user=_one(values, "user"),
            commit=_one(values, "commit"),
            flags=flags,
        )
    if kind == "notifications":
        reasons = _csv(values, "reason")
        bad = [r for r in reasons if r not in NOTIFICATION_REASONS]
        if bad:
            raise ConfigError(
                f"unknown notification reason {bad[0]!r}",
                hints=[f"reasons: {', '.join(NOTIFICATION_REASONS)}"],
            )
        return Query(
            kind=kind, state="all", reasons=tuple(reasons), repo=_one(values, "repo"), flags=flags
        )
    fields = _IssueFields(
        state=_one(values, "state") or "open",
        labels=_csv(values, "label"),
        assignee=_one(values, "assignee"),
        author=_one(values, "author"),
        mention=_one(values, "mention"),
        base=_one(values, "base"),
    )
    if "draft" in values:
        fields.draft = True
    for search in values.get("search", []):
        _apply_search(kind, search, fields)
    if fields.state not in STATES:
        raise ConfigError(f"--state must be one of {', '.join(STATES)}, not {fields.state!r}")
    if fields.state == "merged" and kind == "issues" and fields.is_pr is not True:
        raise ConfigError("--state merged only makes sense for a pulls watch")
    return fields.query(kind, flags)


@dataclass
class _IssueFields:
    """An issues/pulls `Query` while its flags and `--search` qualifiers fold into it."""

    state: str = "open"
    labels: list[str] = field(default_factory=list)
    any_labels: list[tuple[str, ...]] = field(default_factory=list)
    not_labels: list[str] = field(default_factory=list)
    assignee: str = ""
    author: str = ""
    mention: str = ""
    review_requested: str = ""
    involves: str = ""
    no: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    is_pr: bool | None = None
    draft: bool | None = None
    base: str = ""

    def query(self, kind: str, flags: tuple[str, ...]) -> Query:
        return Query(
            kind=kind,
            state=self.state,
            labels=tuple(self.labels),
            any_labels=tuple(self.any_labels),
            not_labels=tuple(self.not_labels),
            assignee=self.assignee,
            author=self.author,
            mention=self.mention,
            review_requested=self.review_requested,
            involves=self.involves,
            no=tuple(self.no),
            words=tuple(self.words),
            is_pr=self.is_pr,
            draft=self.draft,
            base=self.base,
            flags=flags,
        )


def _apply_search(kind: str, search: str, fields: _IssueFields) -> None:
    """Fold `--search "assignee:@me is:open label:bug words"` into `fields`."""
    for token in _split(search, "--search"):
        negate = token.startswith("-") and ":" in token
        qual, colon, value = token.lstrip("-").partition(":") if ":" in token else ("", "", "")
        if not colon:
            fields.words.append(token)
            continue
        qual = qual.lower()
        if qual == "label":
            names = [v for v in value.split(",") if v]
            if negate:
                fields.not_labels.extend(names)
            elif len(names) == 1:
                fields.labels.append(names[0])
            else:
                fields.any_labels.append(tuple(names))
        elif negate:
            raise ConfigError(f"search qualifier -{qual}: is not supported (only -label:)")
        elif qual == "assignee":
            fields.assignee = value
        elif qual == "author":
            fields.author = value
        elif qual == "involves":
            fields.involves = value
        elif qual == "mentions":
            fields.mention = value
        elif qual == "review-requested":
            fields.review_requested = value
        elif qual in ("is", "state", "type"):
            _apply_is(kind, value.lower(), fields)
        elif qual == "no":
            if value not in ("assignee", "label"):
                raise ConfigError(f"search qualifier no:{value} is not supported")
            fields.no.append(value)
        elif qual == "draft":
            fields.draft = value.lower() == "true"
        elif qual == "base":
            fields.base = value
        elif qual in _IGNORED_QUALIFIERS:
            continue
        else:
            raise ConfigError(
                f"unknown search qualifier {qual + ':'!r} in a {kind} watch filter",
                hints=[
                    "supported: assignee: author: label: -label: is: mentions: "
                    "review-requested: involves: no: draft: base:"
                ],
            )


def _apply_is(kind: str, value: str, fields: _IssueFields) -> None:
    if value in ("open", "closed", "merged"):
        fields.state = value
    elif value == "unmerged":
        fields.state = "closed"
    elif value in ("pr", "pull-request"):
        fields.is_pr = True
    elif value == "issue":
        fields.is_pr = False
    elif value == "draft":
        fields.draft = True
    else:
        raise ConfigError(f"unknown search qualifier is:{value} in a {kind} watch filter")
