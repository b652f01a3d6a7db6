"""The fleet's git history: the ONLY module that imports pygit2 (ARCHITECTURE 3.4).

A fleet commit contains exactly the `.fleet/` paths a command changed, taken as they are on disk,
and leaves everything else about the repository alone: the user's staged and unstaged work, other
branches, the working tree. The recipe (research/deps-feasibility.md §1):

1. build an in-memory index from HEAD's tree and apply our paths to it -> the new tree;
2. apply the same paths to the real index and write it (fails cleanly on a held index.lock);
3. only then move the branch, compare-and-swap on the tip we started from (retried if it moved).

pygit2 costs ~140 ms to import, so it is imported inside the functions, never at module level.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayfleet.core.errors import GitError, NotFound
from relayfleet.core.paths import FLEET_DIR

if TYPE_CHECKING:
    import pygit2

FALLBACK_NAME = "gh-fleet"
FALLBACK_EMAIL = "gh-fleet@localhost"
LOCK_NAME = "gh-fleet.lock"  # lives in .git/: serializes fleet writers across processes
LOCK_TIMEOUT_S = 30.0
CAS_ATTEMPTS = 5  # how often we re-read a branch that moved under us before giving up


@dataclass(frozen=True)
class CommitInfo:
    """One commit that touched `.fleet/`, as `history` shows it."""

    sha: str
    short: str
    author: str
    email: str
    date: str  # ISO 8601 with the author's UTC offset
    subject: str
    message: str
    parents: tuple[str, ...]


# -- repository discovery ---------------------------------------------------------------------


def _open(root: Path) -> pygit2.Repository:
    import pygit2

    found = pygit2.discover_repository(str(root))
    if not found:
        raise GitError(
            f"{root} is not inside a git repository",
            hints=["run `git init` (or `gh fleet init`, which does it for you)"],
        )
    repo = pygit2.Repository(found)
    if repo.is_bare or not repo.workdir:
        raise GitError(f"{found} is a bare repository; the fleet needs a work tree")
    return repo


def _prefix(repo: pygit2.Repository, root: Path) -> str:
    """The repo-relative path of `<root>/.fleet` ('.fleet' when root is the work tree top)."""
    workdir = Path(repo.workdir).resolve()
    try:
        rel = (Path(root).resolve() / FLEET_DIR).relative_to(workdir)
    except ValueError as exc:
        raise GitError(f"{root} is outside the repository at {workdir}") from exc
    return rel.as_posix()


def ensure_repo(cwd: Path) -> Path:
    """The top of the git work tree around `cwd`; runs `git init` there when there is none."""
    import pygit2

    found = pygit2.discover_repository(str(cwd))
    if found:
        repo = pygit2.Repository(found)
        if repo.is_bare or not repo.workdir:
            raise GitError(f"{found} is a bare repository; the fleet needs a work tree")
        return Path(repo.workdir).resolve()
    try:
        repo = pygit2.init_repository(str(cwd), initial_head=_default_branch())
    except pygit2.GitError as exc:
        raise GitError(f"git init in {cwd} failed: {exc}") from exc
    return Path(repo.workdir).resolve()


def _default_branch() -> str:
    import pygit2

    try:
        return str(pygit2.Config.get_global_config()["init.defaultBranch"])
    except (KeyError, OSError, pygit2.GitError):
        return "main"


def head_commit(root: Path) -> str | None:
    """The full sha HEAD points at, or None in a repository with no commits yet."""
    repo = _open(root)
    if repo.head_is_unborn:
        return None
    return str(repo.head.target)


# -- committing -------------------------------------------------------------------------------


def commit_fleet(
    root: Path,
    changed: Iterable[Path],
    message: str,
    *,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Commit exactly `changed` (paths under `<root>/.fleet/`) as they are on disk, in one commit.

    A missing file is a deletion; a directory stands for every file under it (and every tracked
    file that was under it). Returns the new commit's sha, or None when nothing differs from HEAD.
    """
    from filelock import FileLock, Timeout

    env = os.environ if env is None else env
    repo = _open(root)
    prefix = _prefix(repo, root)
    workdir = Path(repo.workdir).resolve()
    targets = [_checked(workdir, prefix, Path(p)) for p in changed]
    if not targets:
        return None
    lock = FileLock(str(Path(repo.path) / LOCK_NAME), timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            return _commit_locked(repo, workdir, prefix, targets, message, env)
    except Timeout as exc:
        raise GitError(
            f"another `gh fleet` command is changing this fleet (waited {LOCK_TIMEOUT_S:.0f} s)",
            hints=[f"if none is running, delete {Path(repo.path) / LOCK_NAME}"],
        ) from exc


def preflight(root: Path) -> None:
    """Refuse BEFORE a command writes `.fleet/` when its commit is bound to fail (a held
    index.lock), so a failed command leaves the fleet's files exactly as they were."""
    repo = _open(root)
    lock = Path(repo.path) / "index.lock"
    if lock.exists():
        raise GitError(
            "the git index is locked (another git process is running, or one crashed); "
            "nothing was changed",
            hints=[
                f"another git process holds {lock}; retry when it finishes",
                f"if no git process is running, remove {lock}",
            ],
        )


def _checked(workdir: Path, prefix: str, path: Path) -> str:
    """`path` as a repo-relative posix path, refusing anything outside `.fleet/` or in state/."""
    absolute = path if path.is_absolute() else workdir / path
    # Resolve the parent, not the path: a deleted file cannot be resolved, a symlink must not be.
    absolute = absolute.parent.resolve() / absolute.name
    try:
        rel = absolute.relative_to(workdir).as_posix()
    except ValueError as exc:
        raise GitError(f"refusing to commit {path}: it is outside the repository") from exc
    if rel != prefix and not rel.startswith(prefix + "/"):
        raise GitError(f"refusing to commit {rel}: only paths under {prefix}/ are fleet config")
    if rel == f"{prefix}/state" or rel.startswith(f"{prefix}/state/"):
        raise GitError(
            f"refusing to commit {rel}: {prefix}/state/ is runtime state, never committed"
        )
    return rel


def _commit_locked(
    repo: pygit2.Repository,
    workdir: Path,
    prefix: str,
    targets: list[str],
    message: str,
    env: Mapping[str, str],
) -> str | None:
    import pygit2

    author, committer = _signatures(repo, env)
    if not message.endswith("\n"):
        message += "\n"  # what `git commit` stores; keeps `git log --format=%B` tidy
    last: Exception | None = None
    for attempt in range(CAS_ATTEMPTS):
        if attempt:
            time.sleep(0.05 * attempt)
        if repo.head_is_unborn:
            parents: list[Any] = []
            base_tree = None
            mem = pygit2.Index()
        else:
            head = repo.head.peel(pygit2.Commit)
            parents, base_tree = [head.id], head.tree_id
            mem = pygit2.Index()
            mem.read_tree(head.tree)
        updates = _updates(repo, workdir, prefix, targets, mem)
        for rel, entry in updates.items():
            if entry is None:
                if rel in mem:
                    mem.remove(rel)
            else:
                mem.add(entry)
        tree = mem.write_tree(repo)
        if tree == base_tree:
            return None
        saved = _sync_real_index(repo, updates)  # raises before any ref moves on a held lock
        try:
            oid = repo.create_commit("HEAD", author, committer, message, tree, parents)
        except (pygit2.GitError, OSError) as exc:
            last = exc
            _restore_real_index(repo, saved)
            # The branch moved under us, or another git process holds its ref lock right now
            # (libgit2 raises OSError for that): re-read it and rebuild on the new tip.
            moved = (
                "current tip is not the first parent",
                "old reference value does not match",
                "failed to lock file",
                "failed to create locked file",
            )
            if any(m in str(exc) for m in moved):
                continue
            raise GitError(f"git commit failed: {exc}") from exc
        return str(oid)
    raise GitError(
        f"the branch kept moving while committing the fleet change ({CAS_ATTEMPTS} attempts)",
        hints=["retry when other git operations in this repository have finished"],
    ) from last


def _updates(
    repo: pygit2.Repository, workdir: Path, prefix: str, targets: list[str], mem: pygit2.Index
) -> dict[str, Any]:
    """rel path -> IndexEntry to stage, or None to delete; directories expanded."""
    import pygit2
    from pygit2.enums import FileMode

    state = f"{prefix}/state"
    out: dict[str, Any] = {}
    for rel in targets:
        disk = workdir / rel
        tracked = [e.path for e in mem if e.path.startswith(rel + "/")]
        if tracked and not os.path.lexists(disk):
            names = []  # a directory that is gone: every tracked file under it goes too
            out.update(dict.fromkeys(tracked))
        elif disk.is_dir() and not disk.is_symlink():
            present: list[str] = []
            for dirpath, dirnames, filenames in os.walk(disk):
                here = Path(dirpath).relative_to(workdir).as_posix()
                # Never descend into runtime state or nested repositories.
                dirnames[:] = [
                    d
                    for d in dirnames
                    if f"{here}/{d}" != state and d != ".git" and not d.startswith(".tmp-")
                ]
                for name in filenames:
                    sub = f"{here}/{name}"
                    if not repo.path_is_ignored(sub):
                        present.append(sub)
            for sub in tracked:
                if sub not in present and not sub.startswith(state + "/"):
                    out[sub] = None
            names = present
        else:
            names = [rel]
        for sub in names:
            path = workdir / sub
            try:
                st = path.lstat()
            except FileNotFoundError:
                out[sub] = None
                continue
            if stat.S_ISLNK(st.st_mode):
                oid = repo.create_blob(os.fsencode(os.readlink(path)))
                mode = FileMode.LINK
            elif stat.S_ISREG(st.st_mode):
                oid = repo.create_blob_fromworkdir(sub)
                mode = FileMode.BLOB_EXECUTABLE if st.st_mode & 0o111 else FileMode.BLOB
            else:
                continue  # sockets, fifos: nothing git can hold
            out[sub] = pygit2.IndexEntry(sub, oid, mode)
    return out


def _sync_real_index(repo: pygit2.Repository, updates: dict[str, Any]) -> dict[str, Any]:
    """Apply our entries to the real index and write it; returns the entries it replaced."""
    import pygit2

    index = repo.index
    index.read(False)
    saved: dict[str, Any] = {}
    for rel, entry in updates.items():
        saved[rel] = index[rel] if rel in index else None  # noqa: SIM401 (Index has no .get)
        if entry is None:
            if rel in index:
                index.remove(rel)
            continue
        # Staging from the work tree records stat data, so `git status` needs no re-hash; the
        # blob must still be the one we commit (the file could change between the two reads).
        try:
            index.add(rel)
        except (pygit2.GitError, OSError, KeyError):
            pass
        if rel not in index or index[rel].id != entry.id or index[rel].mode != entry.mode:
            index.add(entry)
    try:
        index.write()
    except pygit2.GitError as exc:
        index.read(True)  # drop our in-memory edits: the index on disk is unchanged
        lock = Path(repo.path) / "index.lock"
        raise GitError(
            f"cannot update the git index: {exc}; nothing was committed",
            hints=[
                f"another git process holds {lock}; retry when it finishes",
                f"if no git process is running, remove {lock}",
            ],
        ) from exc
    return saved


def _restore_real_index(repo: pygit2.Repository, saved: dict[str, Any]) -> None:
    import pygit2

    index = repo.index
    index.read(True)
    for rel, entry in saved.items():
        if entry is None:
            if rel in index:
                index.remove(rel)
        else:
            index.add(entry)
    try:
        index.write()
    except pygit2.GitError:
        pass  # best effort: the commit did not happen either way


def _signatures(repo: pygit2.Repository, env: Mapping[str, str]) -> tuple[Any, Any]:
    """Author and committer: git's env vars, then user.name/email, then gh-fleet@localhost.

    libgit2 ignores GIT_AUTHOR_* / GIT_COMMITTER_*, so we honour them ourselves.
    """
    import pygit2

    cfg_name = cfg_email = None
    try:
        cfg_name = str(repo.config["user.name"])
    except (KeyError, pygit2.GitError):
        pass
    try:
        cfg_email = str(repo.config["user.email"])
    except (KeyError, pygit2.GitError):
        pass

    def make(kind: str) -> Any:
        name = env.get(f"GIT_{kind}_NAME") or cfg_name or FALLBACK_NAME
        email = env.get(f"GIT_{kind}_EMAIL") or cfg_email or FALLBACK_EMAIL
        return pygit2.Signature(name, email)

    return make("AUTHOR"), make("COMMITTER")


# -- pending edits ----------------------------------------------------------------------------


def differs_from_head(root: Path, targets: Iterable[Path]) -> list[str]:
    """The files at or under `targets` (paths under `.fleet/`) whose content on disk differs
    from HEAD: modified, new (not ignored) or deleted. Compares blob ids, so it costs one hash per
    file and nothing for the rest of the repository (unlike a full `git status`)."""
    import pygit2

    repo = _open(root)
    prefix = _prefix(repo, root)
    workdir = Path(repo.workdir).resolve()
    head_tree = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit).tree
    out: list[str] = []
    for target in targets:
        rel = _checked(workdir, prefix, Path(target))
        disk = _disk_ids(repo, workdir, rel, prefix)
        committed = _tree_ids(repo, head_tree, rel)
        for sub in sorted(set(disk) | set(committed)):
            if disk.get(sub) != committed.get(sub):
                out.append(sub)
    return out


def _disk_ids(repo: pygit2.Repository, workdir: Path, rel: str, prefix: str) -> dict[str, str]:
    import pygit2

    path = workdir / rel
    if path.is_file():
        return {rel: str(pygit2.hashfile(str(path)))}
    out: dict[str, str] = {}
    if not path.is_dir():
        return out
    state = f"{prefix}/state"
    for dirpath, dirnames, filenames in os.walk(path):
        here = Path(dirpath).relative_to(workdir).as_posix()
        dirnames[:] = [d for d in dirnames if f"{here}/{d}" != state and d != ".git"]
        for name in filenames:
            sub = f"{here}/{name}"
            if not repo.path_is_ignored(sub) and os.path.isfile(workdir / sub):
                out[sub] = str(pygit2.hashfile(str(workdir / sub)))
    return out


def _tree_ids(repo: pygit2.Repository, tree: Any, rel: str) -> dict[str, str]:
    import pygit2

    if tree is None:
        return {}
    try:
        obj = repo[tree[rel].id]
    except KeyError:
        return {}
    if isinstance(obj, pygit2.Blob):
        return {rel: str(obj.id)}
    out: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [(rel, obj)]
    while stack:
        base, node = stack.pop()
        for entry in node:
            child = repo[entry.id]
            if isinstance(child, pygit2.Tree):
                stack.append((f"{base}/{entry.name}", child))
            else:
                out[f"{base}/{entry.name}"] = str(entry.id)
    return out


# -- reading history --------------------------------------------------------------------------


def _peel_commit(repo: pygit2.Repository, rev: str) -> Any:
    import pygit2

    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        # `gh fleet diff main` in a repository whose branch is `master`: name what exists.
        branches = sorted(repo.branches.local)[:8]
        hint = f"branches here: {', '.join(branches)}" if branches else "no branches yet"
        raise NotFound(f"unknown git revision {rev!r}", hints=[hint]) from exc


def _fleet_tree(repo: pygit2.Repository, commit: Any, prefix: str) -> Any:
    import pygit2

    try:
        obj = commit.tree[prefix]
    except KeyError:
        return None
    return obj if isinstance(obj, pygit2.Tree) else None


def fleet_texts_at(root: Path, rev: str) -> dict[str, str]:
    """Every `.fleet/**/*.toml` at `rev`, keyed relative to `.fleet/` (empty: no fleet there)."""
    repo = _open(root)
    prefix = _prefix(repo, root)
    tree = _fleet_tree(repo, _peel_commit(repo, rev), prefix)
    return {} if tree is None else _toml_texts(repo, tree)


def _toml_texts(repo: pygit2.Repository, tree: Any) -> dict[str, str]:
    import pygit2

    out: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", tree)]
    while stack:
        base, node = stack.pop()
        for entry in node:
            rel = f"{base}{entry.name}"
            obj = repo[entry.id]
            if isinstance(obj, pygit2.Tree):
                if rel != "state":
                    stack.append((rel + "/", obj))
            elif entry.name.endswith(".toml") and isinstance(obj, pygit2.Blob):
                out[rel] = obj.data.decode("utf-8", errors="replace")
    return dict(sorted(out.items()))


def fleet_log(root: Path, n: int = 20, rev: str = "HEAD") -> list[CommitInfo]:
    """Up to `n` commits reachable from `rev` that changed `.fleet/`, newest first."""
    from pygit2.enums import SortMode

    repo = _open(root)
    prefix = _prefix(repo, root)
    if repo.head_is_unborn and rev == "HEAD":
        return []
    start = _peel_commit(repo, rev)
    out: list[CommitInfo] = []
    walker = repo.walk(start.id, SortMode.TOPOLOGICAL | SortMode.TIME)
    for commit in walker:
        if len(out) >= n:
            break
        mine = _tree_id(repo, commit, prefix)
        theirs = [_tree_id(repo, p, prefix) for p in commit.parents]
        # Like `git log -- .fleet`: a commit counts when it differs from every parent.
        if (not theirs and mine is None) or any(t == mine for t in theirs):
            continue
        out.append(_info(commit))
    return out


def _tree_id(repo: pygit2.Repository, commit: Any, prefix: str) -> Any:
    tree = _fleet_tree(repo, commit, prefix)
    return None if tree is None else tree.id


def _info(commit: Any) -> CommitInfo:
    sig = commit.author
    tz = timezone(timedelta(minutes=sig.offset))
    date = datetime.fromtimestamp(sig.time, tz).isoformat()
    message = commit.message
    subject = message.splitlines()[0] if message else ""
    return CommitInfo(
        sha=str(commit.id),
        short=str(commit.id)[:7],
        author=sig.name,
        email=sig.email,
        date=date,
        subject=subject,
        message=message,
        parents=tuple(str(p) for p in commit.parent_ids),
    )


# -- state, for `doctor` -----------------------------------------------------------------------


@dataclass(frozen=True)
class RepoState:
    workdir: str
    branch: str | None  # None when HEAD is detached
    head: str | None  # None in a repository with no commits
    fleet_dirty: tuple[str, ...]  # .fleet/ paths that differ from HEAD (state/ excluded)
    state_ignored: bool  # .fleet/state/ is gitignored, as it must be

    @property
    def detached(self) -> bool:
        return self.branch is None and self.head is not None


def repo_state(root: Path) -> RepoState:
    repo = _open(root)
    prefix = _prefix(repo, root)
    head = None if repo.head_is_unborn else str(repo.head.target)
    branch: str | None
    if repo.head_is_detached:
        branch = None
    else:
        ref = repo.references.get("HEAD")
        target = ref.target if ref is not None else ""
        branch = str(target).removeprefix("refs/heads/") if isinstance(target, str) else None
    dirty = tuple(
        sorted(
            path
            for path, flags in repo.status(untracked_files="all").items()
            if path.startswith(prefix + "/")
            and not path.startswith(f"{prefix}/state/")
            and int(flags) != 0
        )
    )
    ignored = repo.path_is_ignored(f"{prefix}/state/x")
    return RepoState(
        workdir=str(Path(repo.workdir).resolve()),
        branch=branch,
        head=head,
        fleet_dirty=dirty,
        state_ignored=ignored,
    )
