"""`up --pull`: fetch and fast-forward the branch, and say clearly, once, why when it cannot.

    upstream_of(root)            # raises FleetError before `up` starts when there is none
    puller = Puller(root)
    outcome = puller.pull()      # Outcome(moved, before, after, error, news)

A failure keeps git's whole reason (every line, not only the last `Aborting`) and a fix hint.
`news` is true only when the reason differs from the last failure's, so a diverged branch is
reported once, not every interval; `error` holds since-when for `status`.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from relayfleet.core.errors import FleetError

GIT_TIMEOUT = 120.0


@dataclass(frozen=True)
class PullError:
    since: float  # epoch seconds of the first failure with this reason
    step: str  # "fetch" | "merge"
    reason: str  # git's message, whole, lines joined with " / "
    hint: str

    def as_json(self) -> dict[str, object]:
        return {
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "step": self.step,
            "reason": self.reason,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Outcome:
    before: str | None
    after: str | None
    error: PullError | None
    news: bool  # a new failure (or a recovery) worth one line in the log

    @property
    def moved(self) -> bool:
        return self.error is None and self.before != self.after


def _git(root: Path, *args: str) -> tuple[int, str]:
    try:
        r = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, f"git {args[0]} did not finish within {GIT_TIMEOUT:.0f} s"
    except OSError as exc:
        return 127, f"cannot run git: {exc.strerror or exc}"
    return r.returncode, (r.stderr.strip() or r.stdout.strip())


def upstream_of(root: Path) -> str:
    """The current branch's upstream (`origin/main`), or a FleetError saying how to set one."""
    rc, out = _git(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}")
    if rc == 0 and out:
        return out.splitlines()[0]
    rc_b, branch = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    if rc_b != 0 or not branch:
        raise FleetError(
            "--pull needs a branch, but HEAD is detached",
            hints=["check out the branch the fleet follows: git switch main"],
        )
    raise FleetError(
        f"--pull: branch {branch!r} has no upstream to pull from",
        hints=[
            f"set one: git branch --set-upstream-to origin/{branch}",
            "or run `gh fleet up` without --pull",
        ],
    )


def hint_for(step: str, reason: str, upstream: str) -> str:
    low = reason.lower()
    if "would be overwritten" in low or "local changes" in low or "untracked working tree" in low:
        return "commit or stash the local changes to the files git lists; the next pull applies"
    if "not possible to fast-forward" in low or "diverg" in low or "not a fast-forward" in low:
        return (
            f"the branch has commits that {upstream} lacks: merge or rebase by hand "
            f"(git pull --rebase), then `up` follows again"
        )
    if step == "fetch":
        return "check the remote and your access to it: git fetch"
    return f"run it by hand to see more: git merge --ff-only {upstream}"


class Puller:
    def __init__(self, root: Path, upstream: str = "@{u}") -> None:
        self.root = root
        self.upstream = upstream
        self.error: PullError | None = None

    def pull(self) -> Outcome:
        before = _safe_head(self.root)
        for step, args in (
            ("fetch", ("fetch", "--quiet")),
            ("merge", ("merge", "--ff-only", "--quiet", "@{u}")),
        ):
            rc, out = _git(self.root, *args)
            if rc != 0:
                reason = " / ".join(x.strip() for x in out.splitlines() if x.strip())
                reason = reason or f"git {step} exited {rc}"
                prev = self.error
                news = prev is None or (prev.step, prev.reason) != (step, reason)
                since = time.time() if news or prev is None else prev.since
                self.error = PullError(since, step, reason, hint_for(step, reason, self.upstream))
                return Outcome(before, before, self.error, news)
        recovered = self.error is not None
        self.error = None
        return Outcome(before, _safe_head(self.root), None, recovered)


def _safe_head(root: Path) -> str | None:
    from relayfleet.fleet.gitops import head_commit

    try:
        return head_commit(root)
    except Exception:  # a ref mid-update: the next interval looks again
        return None
