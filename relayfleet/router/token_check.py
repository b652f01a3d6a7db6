"""What `doctor` asks GitHub: is the token good, what may it do, can it see each watched repo.

`GET /rate_limit` is free (GitHub does not charge it to the primary limit) and answers for any
valid token, so it tells valid/invalid, the classic scopes (`X-OAuth-Scopes`; fine-grained and
app tokens send none) and the remaining budget in one request. Each repo then costs one
`GET /repos/{owner}/{name}`. The token never appears in anything returned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relayfleet.router.github import http_client

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class TokenReport:
    valid: bool
    status: int  # HTTP status of /rate_limit; 0 when GitHub was not reached
    message: str  # GitHub's message, or why it was not reached
    scopes: tuple[str, ...] | None = None  # None: the token kind reports none
    remaining: int | None = None
    limit: int | None = None
    reset: int | None = None


@dataclass(frozen=True)
class RepoReport:
    repo: str
    reachable: bool
    status: int
    message: str


class TokenChecker:
    def __init__(self, api_url: str, token: str, *, timeout: float = 15.0) -> None:
        import httpx

        self._httpx = httpx
        self.api_url = api_url.rstrip("/")
        self._http = http_client(token, timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TokenChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str) -> httpx.Response | str:
        try:
            return self._http.get(f"{self.api_url}{path}")
        except self._httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def token(self) -> TokenReport:
        resp = self._get("/rate_limit")
        if isinstance(resp, str):
            return TokenReport(False, 0, f"GitHub not reached at {self.api_url}: {resp}")
        body = _json(resp)
        if resp.status_code != 200:
            return TokenReport(
                False, resp.status_code, str(body.get("message") or resp.reason_phrase)
            )
        core = (body.get("resources") or {}).get("core") or body.get("rate") or {}
        header = resp.headers.get("x-oauth-scopes")
        scopes = (
            None if header is None else tuple(s.strip() for s in header.split(",") if s.strip())
        )
        return TokenReport(
            True,
            200,
            "",
            scopes=scopes,
            remaining=_int(core.get("remaining")),
            limit=_int(core.get("limit")),
            reset=_int(core.get("reset")),
        )

    def repo(self, repo: str) -> RepoReport:
        resp = self._get(f"/repos/{repo}")
        if isinstance(resp, str):
            return RepoReport(repo, False, 0, resp)
        if resp.status_code == 200:
            return RepoReport(repo, True, 200, "")
        message = str(_json(resp).get("message") or resp.reason_phrase)
        return RepoReport(repo, False, resp.status_code, message)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None
