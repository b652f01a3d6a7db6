"""One fleet edit as a transaction: lock, refuse pending edits, check the tree HEAD will hold,
commit exactly the change.

Every mutating command runs the same steps (`edit.py`, `scaffold.py`):

1. `locked()`: hold the fleet lock from the first read to the commit, so two commands never
   build on the same old file (the lost-update race) or pick the same port;
2. `refuse_pending()`: a file the command changes must not carry uncommitted edits, or the
   commit would silently take them in (and `history` would credit them to this command);
   `--include-pending` takes them in on purpose and says so in the subject;
3. `check_head_after()`: the fleet HEAD will hold after the commit (HEAD's files with this
   change applied, not the working tree) must validate, so HEAD never points at a fleet that
   `gh fleet validate` rejects;
4. `commit()`: one commit of exactly the changed paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relayfleet.core.errors import ConfigError, FleetError
from relayfleet.core.fleetlock import DEFAULT_WAIT_S, fleet_lock
from relayfleet.core.paths import FleetPaths


@dataclass(frozen=True)
class EditOptions:
    """How an edit treats its surroundings: the lock and the user's uncommitted edits."""

    wait: float = DEFAULT_WAIT_S  # seconds to wait for another edit's lock
    include_pending: bool = False  # take uncommitted edits of the changed files into the commit
    notify: Callable[[str], None] | None = None  # told once when the wait exceeds a second


DEFAULT = EditOptions()


@contextmanager
def locked(paths: FleetPaths, opts: EditOptions | None = None) -> Iterator[None]:
    opts = opts or DEFAULT
    with fleet_lock(paths.state, wait=opts.wait, notify=opts.notify):
        yield


def refuse_pending(
    paths: FleetPaths, targets: Iterable[Path], opts: EditOptions | None = None
) -> list[str]:
    """The changed files' uncommitted edits (repo-relative paths). Refuses unless
    `include_pending`; then the caller names them in its commit subject (`subject`)."""
    from relayfleet.fleet.gitops import differs_from_head

    opts = opts or DEFAULT
    pending = differs_from_head(paths.root, targets)
    if pending and not opts.include_pending:
        more = f" and {len(pending) - 4} more" if len(pending) > 4 else ""
        shown = ", ".join(pending[:4]) + more
        raise FleetError(
            f"{shown} {'has' if len(pending) == 1 else 'have'} uncommitted changes; "
            "this command would commit them as part of its own change (nothing was changed)",
            hints=[
                "commit or stash them first (git commit / git stash), then re-run",
                "or re-run with --include-pending to take them into this commit",
            ],
        )
    return pending


def subject(message: str, pending: Sequence[str]) -> str:
    """The commit subject, naming pending edits that ride along."""
    if not pending:
        return message
    names = sorted({p.removeprefix(".fleet/") for p in pending})
    return f"{message} + pending edits of {', '.join(names)}"


def check_head_after(paths: FleetPaths, overrides: Mapping[str, str | None]) -> None:
    """Refuse a commit that would leave HEAD's fleet with an error it does not have now.

    `overrides` maps paths relative to `.fleet/` to their new text (None: deleted; a key ending
    in '/' deletes everything under it). Only `.toml` files matter to validation."""
    from relayfleet.fleet.gitops import fleet_texts_at, head_commit
    from relayfleet.fleet.validate import validate_texts

    base = fleet_texts_at(paths.root, "HEAD") if head_commit(paths.root) else {}
    after = dict(base)
    for rel, text in overrides.items():
        if rel.endswith("/"):
            for key in [k for k in after if k.startswith(rel)]:
                del after[key]
        elif text is None:
            after.pop(rel, None)
        elif rel.endswith(".toml"):
            after[rel] = text
    # Lines are only looked up once there is something to report (a large fleet's warnings
    # would otherwise cost an index of every file).
    if not any(p.level == "error" for p in validate_texts(after, locate=False)):
        return
    known = {(p.file, p.message) for p in validate_texts(base) if p.level == "error"}
    errors = [p for p in validate_texts(after) if p.level == "error"]
    new = [p for p in errors if (p.file, p.message) not in known]
    if not new:
        return  # HEAD was already broken this way; do not block the edits that fix it
    raise ConfigError(
        f"this change would leave the committed fleet invalid: {new[0]}; nothing was changed",
        hints=[
            "commit the files it depends on first (`gh fleet diff` shows what is uncommitted)",
            "or pass --no-commit to change only the working tree",
        ],
    )


def commit(
    paths: FleetPaths,
    changed: Iterable[Path],
    message: str,
    pending: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> str | None:
    from relayfleet.fleet.gitops import commit_fleet

    return commit_fleet(paths.root, changed, subject(message, pending), env=env)


__all__ = [
    "DEFAULT",
    "EditOptions",
    "check_head_after",
    "commit",
    "locked",
    "refuse_pending",
    "subject",
]
