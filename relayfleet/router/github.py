"""The one module that talks HTTP to GitHub (httpx, imported lazily to keep CLI start-up fast).

    token = resolve_token(os.environ, api_host(api_url))
    cache = HttpCache.load(paths.http_cache, token_fingerprint(token))
    gh = GitHubClient(api_url, token, cache)
    page = gh.get("/repos/acme/app/issues", {"state": "all", "sort": "updated", "since": w})
    if page.status == 304: ...nothing changed, and it cost no rate-limit point...

Conditional requests: the first page of every URL is sent with `If-None-Match` /
`If-Modified-Since` from the cache; a 304 comes back as `Page(status=304, items=[])`. The first
page's validators are put into the cache (unless `store=False`) even when `max_pages` stopped the
read early: whether the pages not read matter is the caller's business (a runs stream wants only
the newest page; an issues stream remembers where to resume, `router/paging.py`). The cache is
saved only by the caller (the poller, after the cycle's deliveries are recorded).
Errors are `GitHubError` (`.transient` for 5xx, timeouts, refused connections and malformed
JSON: retry next cycle) or `RateLimited(retry_at=…)`; after a rate limit the client refuses to
send anything before `budget.paused_until`.
The token never appears in a message, a log line or the cache file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from relayfleet import __version__
from relayfleet.core.errors import GitHubError, RateLimited
from relayfleet.router.budget import Budget
from relayfleet.router.http_cache import HttpCache

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_API_URL",
    "Budget",
    "GitHubClient",
    "GitHubError",
    "HttpCache",
    "Page",
    "RateLimited",
    "api_host",
    "page_number",
    "resolve_api_url",
    "resolve_token",
    "token_fingerprint",
]

log = logging.getLogger("relayfleet.router.github")

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
SECONDARY_FLOOR = 60.0  # GitHub: without retry-after, wait at least a minute
MAX_BACKOFF = 900.0
# Object responses that wrap their list (actions/runs, search, checks, …).
LIST_KEYS = ("workflow_runs", "items", "check_runs", "jobs", "repositories", "artifacts")


@dataclass
class Page:
    status: int  # 200 or 304
    items: list[dict[str, Any]]
    poll_interval: int | None
    etag: str | None
    last_modified: str | None
    pages: int  # HTTP requests this call made
    truncated: bool = False  # stopped at max_pages with more to read
    url: str = ""  # the cache key: full URL with the sorted query
    next_url: str | None = None  # where the list goes on (rel="next" of the last page read)
    last_page: int | None = None  # the list's last page number (rel="last"), when sent


# ---- token and base URL ------------------------------------------------------------------------


def token_fingerprint(token: str) -> str:
    """A short, non-reversible name for a token (cache keys, status output)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def resolve_api_url(env: Mapping[str, str], fleet_api_url: str | None) -> str:
    """FLEET_GITHUB_API_URL > fleet.toml [github] api_url > https://api.github.com."""
    url = (env.get("FLEET_GITHUB_API_URL") or fleet_api_url or DEFAULT_API_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = "FLEET_GITHUB_API_URL" if env.get("FLEET_GITHUB_API_URL") else "[github] api_url"
        raise GitHubError(
            f"{source} is not an http(s) URL: {url!r}",
            hints=["use e.g. https://api.github.com or https://HOST/api/v3 for GHES"],
        )
    return url.rstrip("/")


def api_host(api_url: str) -> str:
    """The gh hostname for an API URL: api.github.com -> github.com, HOST/api/v3 -> HOST."""
    netloc = urlsplit(api_url).netloc
    host = netloc.lower()
    if host == "api.github.com":
        return "github.com"
    if host.startswith("api.") and host.endswith(".ghe.com"):
        return host.removeprefix("api.")
    return netloc


def _is_dotcom(host: str) -> bool:
    return host.lower() in ("github.com", "api.github.com")


def resolve_token(env: Mapping[str, str], host: str = "github.com") -> str:
    """GH_TOKEN, else GITHUB_TOKEN, else `gh auth token --hostname <host>` (ARCHITECTURE 3.5)."""
    names = ["GH_TOKEN", "GITHUB_TOKEN"]
    if not _is_dotcom(host):
        names += ["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"]
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return value
    hints = [
        f"run `gh auth login --hostname {host}`",
        "or set GH_TOKEN to a token with the repo and notifications scopes",
    ]
    gh = env.get("GH_PATH") or "gh"
    exe = shutil.which(gh, path=env.get("PATH", os.defpath))
    if exe is None:
        raise GitHubError(
            "no GitHub token: GH_TOKEN and GITHUB_TOKEN are unset and `gh` is not on PATH",
            hints=hints,
        )
    child_env = dict(env)
    child_env.update(GH_NO_UPDATE_NOTIFIER="1", GH_PROMPT_DISABLED="1", GH_PAGER="cat")
    try:
        proc = subprocess.run(
            [exe, "auth", "token", "--hostname", host],
            env=child_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitHubError(
            f"no GitHub token: could not run `gh auth token`: {exc}", hints=hints
        ) from exc
    token = proc.stdout.strip()
    if proc.returncode != 0 or not token:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
        raise GitHubError(
            f"no GitHub token for {host}: `gh auth token --hostname {host}` said: {why}",
            hints=hints,
        )
    return token.splitlines()[0].strip()


# ---- the client --------------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (GitHub) or an HTTP date."""
    if value is None:
        return None
    seconds = _int(value.strip())
    if seconds is not None:
        return float(max(0, seconds))
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _next_link(link: str | None) -> str | None:
    """The rel="next" target of a `Link` header."""
    for part in (link or "").split(","):
        target, _, rest = part.partition(";")
        if 'rel="next"' in rest.replace(" ", ""):
            return target.strip().strip("<>")
    return None


def _last_page(link: str | None) -> int | None:
    """The page number of a `Link` header's rel="last" target."""
    for part in (link or "").split(","):
        target, _, rest = part.partition(";")
        if 'rel="last"' in rest.replace(" ", ""):
            return page_number(target.strip().strip("<>"))
    return None


def page_number(url: str) -> int:
    """The `page` query parameter of a list URL (1 when absent)."""
    return _int(dict(parse_qsl(urlsplit(url).query)).get("page")) or 1


def _items(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in LIST_KEYS:
            found = data.get(key)
            if isinstance(found, list):
                return found
        return [data]
    return []


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_client(token: str, timeout: float) -> httpx.Client:
    """An httpx client for the REST API. The token lives only in its default headers; it is
    never formatted anywhere else."""
    import httpx

    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"gh-fleet/{__version__}",
        },
    )


class GitHubClient:
    """Serial, conditional, rate-limit-aware GETs against the GitHub REST API."""

    def __init__(
        self,
        base_url: str,
        token: str,
        cache: HttpCache,
        *,
        timeout: float = 20.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        import httpx  # lazy: ~100 ms of import the CLI does not pay unless it talks to GitHub

        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self.timeout = timeout
        self.clock = clock
        self._sleep = sleep
        self._rng = rng
        self.token_fp = token_fingerprint(token)
        self.budget = Budget(clock)
        self._login: str | None = None
        self._httpx = httpx
        self._http = http_client(token, timeout)

    # -- public API --

    def url_for(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The full URL (and cache key): base + path, query merged and sorted for stability."""
        if path.startswith(("http://", "https://")):
            full = path
        else:
            full = f"{self.base_url}/{path.lstrip('/')}"
        parts = urlsplit(full)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update({k: str(v) for k, v in (params or {}).items() if v is not None})
        base = full.split("?", 1)[0]
        return f"{base}?{urlencode(sorted(query.items()))}" if query else base

    def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        max_pages: int = 10,
        store: bool = True,
    ) -> Page:
        """GET a list (conditionally), following `Link: rel="next"` while pages are full, for at
        most `max_pages` pages. `store=False` leaves the validators to the caller (`cache.put`)."""
        url = self.url_for(path, params)
        self._check_pause()
        etag, last_modified = self.cache.get(url)
        resp = self._send(url, etag, last_modified)
        poll = _int(resp.headers.get("x-poll-interval"))
        if resp.status_code == 304:
            self.cache.touch(url)
            return Page(304, [], poll, etag, last_modified, 1, url=url)
        items = _items(self._json(resp, url))
        query = dict(parse_qsl(urlsplit(url).query))
        per_page = _int(query.get("per_page")) or 30
        pages, truncated, page_len = 1, False, len(items)
        link = resp.headers.get("link")
        next_url = _next_link(link)
        last = _last_page(link)
        while next_url and page_len >= per_page:
            if pages >= max_pages:
                truncated = True
                break
            more = self.fetch_page(next_url)
            items.extend(more.items)
            pages, page_len, next_url = pages + 1, len(more.items), more.next_url
            last = more.last_page or last
        if page_len < per_page:
            next_url = None  # a short page is the end, whatever the Link says
        new_etag, new_lm = resp.headers.get("etag"), resp.headers.get("last-modified")
        if store:
            # Kept even when truncated: a first page that has not changed means nothing newer
            # exists, and the caller knows whether the older pages it did not read matter.
            self.cache.put(url, new_etag, new_lm)
        return Page(200, items, poll, new_etag, new_lm, pages, truncated, url, next_url, last)

    def fetch_page(self, url: str) -> Page:
        """One page of a list, unconditionally (pages after the first have no validators)."""
        self._check_pause()
        resp = self._send(url, None, None)
        link = resp.headers.get("link")
        items = _items(self._json(resp, url))
        poll = _int(resp.headers.get("x-poll-interval"))
        return Page(200, items, poll, None, None, 1, url=url, next_url=_next_link(link),
                    last_page=_last_page(link))  # fmt: skip

    def get_object(self, path: str) -> Page:
        """GET one object conditionally (e.g. a workflow run): a 304 is free, a 200 is one point.
        Its validators are cached under its URL like a list's."""
        url = self.url_for(path)
        self._check_pause()
        etag, last_modified = self.cache.get(url)
        resp = self._send(url, etag, last_modified)
        if resp.status_code == 304:
            self.cache.touch(url)
            return Page(304, [], None, etag, last_modified, 1, url=url)
        data = self._json(resp, url)
        items = [data] if isinstance(data, dict) else []
        new_etag, new_lm = resp.headers.get("etag"), resp.headers.get("last-modified")
        self.cache.put(url, new_etag, new_lm)
        return Page(200, items, None, new_etag, new_lm, 1, url=url)

    def whoami(self) -> str:
        """The login the token belongs to (GET /user once; remembered for the client's life)."""
        if self._login is None:
            self._check_pause()
            url = self.url_for("/user")
            data = self._json(self._send(url, None, None), url)
            login = data.get("login") if isinstance(data, dict) else None
            if not isinstance(login, str):
                raise GitHubError(f"GET {url} returned no login", transient=True)
            self._login = login
        return self._login

    def wait_for_budget(self, max_wait: float) -> bool:
        """Sleep out a pause of at most `max_wait` seconds; False if the pause is longer."""
        left = self.budget.paused_until - self.clock()
        if left <= 0:
            return True
        if left > max_wait:
            return False
        self._sleep(left)
        return True

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --

    def _check_pause(self) -> None:
        until = self.budget.paused_until
        if self.clock() < until:
            raise RateLimited(
                f"GitHub rate limit ({self.budget.pause_reason or 'paused'}): "
                f"no requests until {_iso(until)}",
                retry_at=until,
            )

    def _send(self, url: str, etag: str | None, last_modified: str | None) -> httpx.Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag  # exactly as received: quotes and W/ kept
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        httpx = self._httpx
        try:
            resp = self._http.get(url, headers=headers)
        except httpx.TimeoutException as exc:
            self.budget.record(None)
            raise GitHubError(
                f"GitHub did not answer GET {url} within {self.timeout:g}s", transient=True
            ) from exc
        except httpx.HTTPError as exc:
            self.budget.record(None)
            raise GitHubError(
                f"cannot reach GitHub at {self.base_url} ({type(exc).__name__}: {exc})",
                transient=True,
            ) from exc
        self.budget.record(resp.status_code)
        self.budget.observe(resp.headers)
        log.debug("GET %s -> %s", url, resp.status_code)
        status = resp.status_code
        if status in (200, 304) or 200 <= status < 300:
            self.budget.secondary_strikes = 0
            if self.budget.remaining == 0 and self.budget.reset:
                # This answer was the last point of the window: hold everything until reset.
                self.budget.pause(self.budget.reset, "primary limit spent")
            return resp
        raise self._error(resp, url)

    def _json(self, resp: httpx.Response, url: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise GitHubError(
                f"GitHub sent malformed JSON for GET {url} ({len(resp.content)} bytes)",
                status=resp.status_code,
                transient=True,
            ) from exc

    def _error(self, resp: httpx.Response, url: str) -> GitHubError:
        status = resp.status_code
        try:
            body = resp.json()
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
        except ValueError:
            message = ""
        if status == 401:
            return GitHubError(
                f"GitHub rejected the token (401 {message or 'Bad credentials'}) "
                f"for {self.base_url}: it is missing, expired or revoked",
                status=401,
                hints=[
                    "run `gh auth login` (or `gh auth refresh`) and restart the router",
                    "or set GH_TOKEN to a valid token",
                ],
            )
        if status in (403, 429):
            limited = self._rate_limited(resp, message)
            if limited is not None:
                return limited
            return GitHubError(
                f"GitHub refused GET {url} (403 {message or 'Forbidden'})",
                status=status,
                hints=["check that the token has the repo and notifications scopes"],
            )
        if status == 404:
            return GitHubError(
                f"GitHub says GET {url} does not exist or this token cannot see it (404)",
                status=404,
                hints=["check the repo name in routes.toml and the token's access to it"],
            )
        detail = f" {message}" if message else ""
        return GitHubError(
            f"GitHub answered GET {url} with {status}{detail}",
            status=status,
            transient=status >= 500,
        )

    def _rate_limited(self, resp: httpx.Response, message: str) -> RateLimited | None:
        """403/429 that mean "slow down", with the instant to try again; None otherwise."""
        now = self.clock()
        retry_after = _retry_after(resp.headers.get("retry-after"), now)
        remaining = _int(resp.headers.get("x-ratelimit-remaining"))
        secondary_words = "secondary rate limit" in message.lower() or "abuse" in message.lower()
        if retry_after is None and remaining == 0 and not secondary_words:
            reset = _int(resp.headers.get("x-ratelimit-reset"))
            retry_at = max(float(reset or now + SECONDARY_FLOOR), now + 1)
            reason = "primary limit spent"
        elif retry_after is not None or resp.status_code == 429 or secondary_words:
            # Retry-After is a floor; repeated hits back off exponentially, with full jitter
            # above the floor so that several clients do not come back in lockstep.
            floor = retry_after if retry_after is not None else SECONDARY_FLOOR
            ceiling = min(MAX_BACKOFF, floor * 2**self.budget.secondary_strikes)
            spread = max(ceiling - floor, min(5.0, 0.1 * floor))
            retry_at = now + floor + self._rng() * spread
            self.budget.secondary_strikes += 1
            reason = "secondary limit"
        else:
            return None
        self.budget.pause(retry_at, reason)
        return RateLimited(
            f"GitHub rate limit ({reason}, {resp.status_code}): retry after {_iso(retry_at)}",
            retry_at=retry_at,
            status=resp.status_code,
        )
