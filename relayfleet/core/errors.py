"""The one exception family that reaches users.

    FleetError                 exit 1, one line "gh fleet: <message>" plus hint lines
    ├── UsageError             exit 2 (bad flags or arguments)
    ├── ConfigError            a .fleet/ file is invalid (carries file:line when known)
    ├── NotFound               no fleet, agent, host, watch or route by that name
    ├── GitError               the commit could not be made (index lock, moved branch, …)
    ├── GitHubError            the GitHub API failed
    │   └── RateLimited        the budget is spent; carries when to retry
    ├── BackendError           a runner could not be started, stopped or reached
    ├── CredentialError        a declared credential has no value
    └── PluginError            a plugin failed to load

Foreign exceptions are translated at the edge (`raise FleetError(...) from exc`).
"""

from __future__ import annotations


class FleetError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hints: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hints = list(hints)

    def __str__(self) -> str:
        return self.message


class UsageError(FleetError):
    exit_code = 2


class ConfigError(FleetError):
    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hints: list[str] | tuple[str, ...] = (),
    ) -> None:
        where = file or ""
        if file and line:
            where = f"{file}:{line}"
        super().__init__(f"{where}: {message}" if where else message, hints=hints)
        self.file = file
        self.line = line
        self.detail = message


class NotFound(FleetError):
    pass


class GitError(FleetError):
    pass


class GitHubError(FleetError):
    # transient: a 5xx, timeout, refused connection or malformed body; retry next cycle.
    transient = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hints: list[str] | tuple[str, ...] = (),
        transient: bool | None = None,
    ) -> None:
        super().__init__(message, hints=hints)
        self.status = status
        if transient is not None:
            self.transient = transient


class RateLimited(GitHubError):
    transient = True  # nothing is wrong; wait until retry_at

    def __init__(self, message: str, *, retry_at: float, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_at = retry_at


class BackendError(FleetError):
    pass


class CredentialError(FleetError):
    pass


class PluginError(FleetError):
    pass
