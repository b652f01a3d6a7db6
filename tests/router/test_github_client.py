"""The GitHub client against a real loopback fake GitHub: what it sends, costs, and how it fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from relayfleet.core.errors import GitHubError, RateLimited
from relayfleet.fakes.github import DEFAULT_TOKEN, FakeGitHub, ManualClock
from relayfleet.router.budget import Budget
from relayfleet.router.github import (
    GitHubClient,
    HttpCache,
    api_host,
    resolve_api_url,
    resolve_token,
    token_fingerprint,
)
from relayfleet.router.github import _retry_after as _retry_after

TOKEN = DEFAULT_TOKEN
REPO = "acme/app"
ISSUES = f"/repos/{REPO}/issues"
ALL = {"state": "all", "sort": "updated", "direction": "desc"}

# On the real time, as a client meets GitHub; a test that steps time brings its own clock.
pytestmark = pytest.mark.fake_github(repos=[REPO], wall_clock=True)


def client_for(
    fake: FakeGitHub, cache: HttpCache | None = None, token: str = TOKEN, **kw
) -> GitHubClient:
    cache = cache if cache is not None else HttpCache.memory(token_fingerprint(token))
    return GitHubClient(fake.base_url, token, cache, **kw)


# ---- conditional requests and the cache --------------------------------------------------------


def test_second_poll_of_an_unchanged_url_is_a_free_304(fake: FakeGitHub) -> None:
    fake.open_issue(REPO, "Scanner crashes")
    gh = client_for(fake)

    first = gh.get(ISSUES, ALL)
    remaining_after_200 = gh.budget.remaining
    second = gh.get(ISSUES, ALL)

    assert first.status == 200 and [i["title"] for i in first.items] == ["Scanner crashes"]
    assert first.etag and first.etag.startswith('"')
    assert second.status == 304 and second.items == []
    assert fake.requests[1].headers["if-none-match"] == first.etag
    assert gh.budget.remaining == remaining_after_200  # a 304 costs no point
    assert fake.count(ISSUES, status=304) == 1


def test_a_change_turns_the_304_back_into_a_200(fake: FakeGitHub) -> None:
    n = fake.open_issue(REPO, "Scanner crashes")
    gh = client_for(fake)
    gh.get(ISSUES, ALL)

    fake.label(REPO, n, "bug")
    page = gh.get(ISSUES, ALL)

    assert page.status == 200
    assert [x["name"] for x in page.items[0]["labels"]] == ["bug"]
    assert gh.get(ISSUES, ALL).status == 304


def test_validators_survive_a_restart_through_the_cache_file(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    fake.open_issue(REPO, "Scanner crashes")
    cache_file = tmp_path / "state" / "router" / "http-cache.json"
    fp = token_fingerprint(TOKEN)
    gh = client_for(fake, HttpCache.load(cache_file, fp))
    gh.get(ISSUES, ALL)
    gh.cache.save()
    gh.close()

    restarted = client_for(fake, HttpCache.load(cache_file, fp))
    page = restarted.get(ISSUES, ALL)

    assert page.status == 304
    assert stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
    assert TOKEN not in cache_file.read_text()


def test_validators_earned_by_another_token_are_ignored(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.open_issue(REPO, "Scanner crashes")
    other = "ghp_anotherTokenAfterReLogin000000000000002"
    fake.add_token(other)
    cache_file = tmp_path / "http-cache.json"
    gh = client_for(fake, HttpCache.load(cache_file, token_fingerprint(TOKEN)))
    gh.get(ISSUES, ALL)
    gh.cache.save()

    relogged = client_for(fake, HttpCache.load(cache_file, token_fingerprint(other)), token=other)
    page = relogged.get(ISSUES, ALL)

    assert page.status == 200
    assert "if-none-match" not in fake.requests[-1].headers
    relogged.cache.save()
    assert TOKEN not in cache_file.read_text() and other not in cache_file.read_text()


def test_validators_are_not_saved_until_the_caller_saves(fake: FakeGitHub, tmp_path: Path) -> None:
    # The poller saves only after deliveries are recorded; a crash before that must re-fetch.
    fake.open_issue(REPO, "Scanner crashes")
    cache_file = tmp_path / "http-cache.json"
    gh = client_for(fake, HttpCache.load(cache_file, token_fingerprint(TOKEN)))
    gh.get(ISSUES, ALL)

    crashed = client_for(fake, HttpCache.load(cache_file, token_fingerprint(TOKEN)))
    assert crashed.get(ISSUES, ALL).status == 200


def test_query_order_does_not_change_the_url(fake: FakeGitHub) -> None:
    gh = client_for(fake)
    a = gh.url_for(ISSUES, {"state": "all", "sort": "updated", "since": "2026-01-01T00:00:00Z"})
    b = gh.url_for(f"{ISSUES}?since=2026-01-01T00:00:00Z", {"sort": "updated", "state": "all"})
    assert (
        a == b == (f"{fake.base_url}{ISSUES}?since=2026-01-01T00%3A00%3A00Z&sort=updated&state=all")
    )


def test_every_request_carries_the_github_headers(fake: FakeGitHub) -> None:
    gh = client_for(fake)
    gh.get(ISSUES, ALL)
    headers = fake.requests[0].headers
    assert headers["authorization"] == "Bearer ***"  # the fake records only the scheme
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("gh-fleet/")


# ---- pagination --------------------------------------------------------------------------------


def test_pagination_follows_link_next_while_pages_are_full(fake: FakeGitHub) -> None:
    for i in range(5):
        fake.open_issue(REPO, f"issue {i}")
    gh = client_for(fake)

    page = gh.get(ISSUES, {**ALL, "per_page": "2"})

    assert page.status == 200 and page.pages == 3 and not page.truncated
    assert sorted(i["number"] for i in page.items) == [1, 2, 3, 4, 5]
    assert fake.count(ISSUES) == 3
    assert gh.get(ISSUES, {**ALL, "per_page": "2"}).status == 304


def test_a_short_page_ends_pagination_even_with_a_next_link(fake: FakeGitHub) -> None:
    for i in range(3):
        fake.open_issue(REPO, f"issue {i}")
    gh = client_for(fake)
    # per_page=5 asked, the fake caps pages at 2: the first page is "short", so no more requests.
    fake.per_page_max = 2
    page = gh.get(ISSUES, {**ALL, "per_page": "5"})
    assert page.pages == 1 and len(page.items) == 2


def test_max_pages_truncates_but_keeps_the_first_pages_validators(fake: FakeGitHub) -> None:
    for i in range(5):
        fake.open_issue(REPO, f"issue {i}")
    gh = client_for(fake)

    page = gh.get(ISSUES, {**ALL, "per_page": "2"}, max_pages=2)
    again = gh.get(ISSUES, {**ALL, "per_page": "2"}, max_pages=2)

    assert page.truncated and page.pages == 2 and len(page.items) == 4
    assert page.next_url is not None and page.last_page == 3  # where the caller would go on
    # An unchanged first page is free even when the list is longer than what was read (a runs
    # stream reads only its newest page by design; paging.py remembers where to resume).
    assert again.status == 304


def test_a_full_runs_page_of_a_busy_repo_is_conditional(fake: FakeGitHub) -> None:
    fake.seed_repo(REPO, runs=120, in_progress=3, issues=0)
    gh = client_for(fake)
    runs = f"/repos/{REPO}/actions/runs"
    first = gh.get(runs, {"per_page": "30"}, max_pages=1)
    assert first.status == 200 and len(first.items) == 30 and first.truncated
    assert gh.get(runs, {"per_page": "30"}, max_pages=1).status == 304


def test_one_run_is_fetched_conditionally(fake: FakeGitHub) -> None:
    run_id = fake.add_run(REPO, "CI", "in_progress")
    gh = client_for(fake)
    path = f"/repos/{REPO}/actions/runs/{run_id}"
    first = gh.get_object(path)
    assert first.status == 200 and first.items[0]["status"] == "in_progress"
    assert gh.get_object(path).status == 304
    fake.update_run(REPO, run_id, "completed", "failure")
    done = gh.get_object(path)
    assert done.status == 200 and done.items[0]["conclusion"] == "failure"


def test_workflow_runs_are_unwrapped_into_items(fake: FakeGitHub) -> None:
    run_id = fake.add_run(REPO, "CI", "completed", "failure")
    page = client_for(fake).get(f"/repos/{REPO}/actions/runs", {"per_page": "30"})
    assert [(r["id"], r["conclusion"]) for r in page.items] == [(run_id, "failure")]


def test_whoami_asks_once(fake: FakeGitHub) -> None:
    gh = client_for(fake)
    assert gh.whoami() == "octocat"
    assert gh.whoami() == "octocat"
    assert fake.count("/user") == 1


# ---- failures ----------------------------------------------------------------------------------


def test_a_bad_token_says_so_and_how_to_fix_it(fake: FakeGitHub) -> None:
    bad = "ghp_revokedToken00000000000000000000000009"
    with pytest.raises(GitHubError) as info:
        client_for(fake, token=bad).get(ISSUES, ALL)
    err = info.value
    assert err.status == 401 and not err.transient
    assert "token" in str(err)
    assert any("gh auth login" in h for h in err.hints)
    assert any("GH_TOKEN" in h for h in err.hints)
    assert bad not in str(err) + " ".join(err.hints)


def test_a_missing_repo_is_a_404_naming_the_url(fake: FakeGitHub) -> None:
    with pytest.raises(GitHubError) as info:
        client_for(fake).get("/repos/acme/gone/issues", ALL)
    assert info.value.status == 404 and not info.value.transient
    assert f"{fake.base_url}/repos/acme/gone/issues" in str(info.value)


def test_a_5xx_is_transient_and_the_next_cycle_succeeds(fake: FakeGitHub) -> None:
    fake.open_issue(REPO, "Scanner crashes")
    fake.fail_next(1, status=502)
    gh = client_for(fake)

    with pytest.raises(GitHubError) as info:
        gh.get(ISSUES, ALL)
    assert info.value.status == 502 and info.value.transient
    assert gh.get(ISSUES, ALL).status == 200


def test_malformed_json_is_transient_and_keeps_no_validator(fake: FakeGitHub) -> None:
    fake.open_issue(REPO, "Scanner crashes")
    fake.malformed_next(1)
    gh = client_for(fake)

    with pytest.raises(GitHubError) as info:
        gh.get(ISSUES, ALL)
    assert info.value.transient and "malformed JSON" in str(info.value)
    page = gh.get(ISSUES, ALL)
    assert page.status == 200 and len(page.items) == 1


def test_a_slow_answer_times_out_as_a_transient_error(fake: FakeGitHub) -> None:
    fake.slow_next(1, delay=5.0)
    gh = client_for(fake, timeout=0.3)
    with pytest.raises(GitHubError) as info:
        gh.get(ISSUES, ALL)
    assert info.value.transient and info.value.status is None
    assert "within 0.3s" in str(info.value)
    assert client_for(fake).get(ISSUES, ALL).status == 200


def test_connection_refused_is_transient() -> None:
    fake = FakeGitHub(TOKEN)
    fake.start()
    url = fake.base_url
    fake.stop()
    gh = GitHubClient(url, TOKEN, HttpCache.memory(), timeout=5)
    with pytest.raises(GitHubError) as info:
        gh.get(ISSUES, ALL)
    assert info.value.transient and info.value.status is None


# ---- rate limits -------------------------------------------------------------------------------


def test_secondary_limit_honours_retry_after_and_pauses_every_request(fake: FakeGitHub) -> None:
    clock = ManualClock(1_800_000_000)
    gh = client_for(fake, clock=clock, rng=lambda: 1.0)
    fake.secondary_limit(1, retry_after=30, status=403)

    with pytest.raises(RateLimited) as info:
        gh.get(ISSUES, ALL)
    retry_at = info.value.retry_at
    assert clock() + 30 <= retry_at <= clock() + 30 + 5  # the floor plus a little jitter
    assert info.value.status == 403

    sent = fake.count()
    with pytest.raises(RateLimited) as again:
        gh.get(f"/repos/{REPO}/pulls")  # another URL: the pause is global
    assert again.value.retry_at == retry_at
    assert fake.count() == sent  # refused locally, no request left

    clock.advance(retry_at - clock() + 0.1)
    assert gh.get(ISSUES, ALL).status == 200


def test_repeated_secondary_limits_back_off_exponentially(fake: FakeGitHub) -> None:
    clock = ManualClock(1_800_000_000)
    gh = client_for(fake, clock=clock, rng=lambda: 1.0)
    waits = []
    for _ in range(3):
        fake.secondary_limit(1, retry_after=None, status=429)
        with pytest.raises(RateLimited) as info:
            gh.get(ISSUES, ALL)
        waits.append(info.value.retry_at - clock())
        clock.advance(waits[-1] + 1)
    assert waits[0] >= 60  # no Retry-After: at least a minute, as GitHub asks
    assert waits[0] < waits[1] < waits[2]

    assert gh.get(ISSUES, ALL).status == 200
    assert gh.budget.secondary_strikes == 0


def test_spending_the_last_point_pauses_until_reset(fake: FakeGitHub) -> None:
    fake.set_rate_limit(remaining=1, reset_in=600)
    gh = client_for(fake)

    assert gh.get(ISSUES, ALL).status == 200
    assert gh.budget.remaining == 0
    with pytest.raises(RateLimited) as info:
        gh.get(ISSUES, ALL)
    assert info.value.retry_at == gh.budget.reset == fake.rate.reset
    assert fake.count(ISSUES) == 1


def test_a_403_with_no_remaining_points_waits_for_reset(fake: FakeGitHub) -> None:
    fake.set_rate_limit(remaining=0, reset_in=1200)
    with pytest.raises(RateLimited) as info:
        client_for(fake).get(ISSUES, ALL)
    assert info.value.retry_at == fake.rate.reset and info.value.status == 403


def test_budget_counts_requests_and_304s_of_the_last_hour(fake: FakeGitHub) -> None:
    clock = ManualClock(1_800_000_000)
    gh = client_for(fake, clock=clock)
    gh.get(ISSUES, ALL)
    gh.get(ISSUES, ALL)
    gh.get(ISSUES, ALL)

    b = gh.budget
    assert (b.limit, b.remaining, b.used, b.resource) == (5000, 4999, 1, "core")
    assert b.requests_last_hour() == 3 and b.not_modified_last_hour() == 2
    assert b.charged_last_hour() == 1
    clock.advance(3601)
    assert b.requests_last_hour() == 0


def test_notifications_use_last_modified_and_report_the_poll_interval(fake: FakeGitHub) -> None:
    fake.poll_interval = 90
    n = fake.open_issue(REPO, "Scanner crashes")
    fake.mention(REPO, n, "octocat")
    gh = client_for(fake)

    page = gh.get("/notifications", {"all": "true"})
    again = gh.get("/notifications", {"all": "true"})

    assert page.status == 200 and page.poll_interval == 90
    assert page.last_modified and page.items[0]["reason"] == "mention"
    assert again.status == 304 and again.poll_interval == 90
    assert fake.requests[-1].headers["if-modified-since"] == page.last_modified


# ---- the token never leaks ---------------------------------------------------------------------


def test_the_token_appears_in_no_error(fake: FakeGitHub, tmp_path: Path) -> None:
    secret = "ghp_superSecretValue0000000000000000000007"
    fake.add_token(secret)
    errors: list[BaseException] = []

    def attempt(gh: GitHubClient, path: str = ISSUES) -> None:
        try:
            gh.get(path, ALL)
        except GitHubError as exc:
            errors.append(exc)

    gh = client_for(fake, HttpCache.load(tmp_path / "c.json", token_fingerprint(secret)), secret)
    attempt(gh, "/repos/acme/gone/issues")
    fake.fail_next(1)
    attempt(gh)
    fake.malformed_next(1)
    attempt(gh)
    fake.secondary_limit(1, retry_after=1)
    attempt(gh)
    attempt(gh)  # refused locally while paused
    fake.slow_next(1, delay=3)
    attempt(client_for(fake, token=secret, timeout=0.2))
    fake.revoke_token(secret)
    attempt(client_for(fake, token=secret))
    gh.cache.put("https://example/x", '"e"', None)
    gh.cache.save()

    assert len(errors) == 7
    for exc in errors:
        text = f"{exc} {getattr(exc, 'hints', '')} {exc!r} {exc.__cause__!r} {exc.__cause__}"
        assert secret not in text
    assert secret not in (tmp_path / "c.json").read_text()


# ---- token and URL resolution ------------------------------------------------------------------


def fake_gh(tmp_path: Path, script: str) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    gh = bindir / "gh"
    gh.write_text("#!/bin/sh\n" + script)
    gh.chmod(0o755)
    return {"PATH": f"{bindir}:/usr/bin:/bin"}


def test_gh_token_wins_then_github_token() -> None:
    assert resolve_token({"GH_TOKEN": "a", "GITHUB_TOKEN": "b"}, "github.com") == "a"
    assert resolve_token({"GITHUB_TOKEN": "b", "PATH": ""}, "github.com") == "b"


def test_gh_auth_token_is_asked_for_the_right_host(tmp_path: Path) -> None:
    env = fake_gh(
        tmp_path,
        'if [ "$1 $2 $3 $4" = "auth token --hostname ghe.example" ]; then echo ghs_fromgh; '
        'exit 0; fi\necho "unexpected: $*" >&2; exit 1\n',
    )
    assert resolve_token(env, "ghe.example") == "ghs_fromgh"


def test_enterprise_tokens_are_used_for_other_hosts_only(tmp_path: Path) -> None:
    env = fake_gh(tmp_path, "echo from-gh\n")
    assert resolve_token({**env, "GH_ENTERPRISE_TOKEN": "e"}, "ghe.example") == "e"
    assert resolve_token({**env, "GH_ENTERPRISE_TOKEN": "e"}, "github.com") == "from-gh"


def test_no_token_anywhere_explains_how_to_log_in(tmp_path: Path) -> None:
    env = fake_gh(tmp_path, 'echo "no oauth token" >&2; exit 1\n')
    with pytest.raises(GitHubError) as info:
        resolve_token(env, "github.com")
    assert "no oauth token" in str(info.value)
    assert any("gh auth login --hostname github.com" in h for h in info.value.hints)
    with pytest.raises(GitHubError) as missing:
        resolve_token({"PATH": str(tmp_path / "empty")}, "github.com")
    assert "not on PATH" in str(missing.value)


def test_api_url_resolution_order() -> None:
    assert resolve_api_url({}, None) == "https://api.github.com"
    assert resolve_api_url({}, "https://ghe.example/api/v3/") == "https://ghe.example/api/v3"
    env = {"FLEET_GITHUB_API_URL": "http://127.0.0.1:9"}
    assert resolve_api_url(env, "https://ghe.example/api/v3") == "http://127.0.0.1:9"
    with pytest.raises(GitHubError, match="FLEET_GITHUB_API_URL"):
        resolve_api_url({"FLEET_GITHUB_API_URL": "ftp://x"}, None)


def test_api_host_maps_api_urls_to_gh_hostnames() -> None:
    assert api_host("https://api.github.com") == "github.com"
    assert api_host("https://ghe.example/api/v3") == "ghe.example"
    assert api_host("https://api.acme.ghe.com") == "acme.ghe.com"
    assert api_host("http://127.0.0.1:8123") == "127.0.0.1:8123"


def test_fingerprint_is_short_and_not_the_token() -> None:
    fp = token_fingerprint(TOKEN)
    assert len(fp) == 16 and TOKEN not in fp and fp == token_fingerprint(TOKEN)
    assert fp != token_fingerprint(TOKEN + "x")


def test_a_corrupt_cache_file_starts_empty(tmp_path: Path) -> None:
    cache_file = tmp_path / "http-cache.json"
    cache_file.write_text('{"version": 1, "entries": {"http://x": {"etag"')
    cache = HttpCache.load(cache_file, "fp")
    assert len(cache) == 0 and cache.get("http://x") == (None, None)
    cache.put("http://x", '"e"', "Tue, 10 Oct 2017 16:00:00 GMT")
    cache.save()
    assert HttpCache.load(cache_file, "fp").get("http://x") == (
        '"e"',
        "Tue, 10 Oct 2017 16:00:00 GMT",
    )
    assert HttpCache.load(cache_file, "other").get("http://x") == (None, None)
    cache_file.write_text("[]")  # valid JSON, but not the cache's object
    assert len(HttpCache.load(cache_file, "fp")) == 0


def test_budget_reads_recorded_github_headers() -> None:
    # Headers as recorded in octokit/fixtures (its normaliser writes the reset in milliseconds).
    budget = Budget(clock=lambda: 1_507_651_000.0)
    budget.observe(
        {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": "1507651200000",
            "x-ratelimit-resource": "core",
            "x-ratelimit-used": "1",
        }
    )
    assert (budget.limit, budget.remaining, budget.used) == (5000, 4999, 1)
    assert budget.reset == 1_507_651_200.0 and budget.resource == "core"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = 1_507_651_200.0  # Tue, 10 Oct 2017 16:00:00 GMT
    assert _retry_after("30", now) == 30.0
    assert _retry_after("Tue, 10 Oct 2017 16:01:00 GMT", now) == 60.0
    assert _retry_after("soon", now) is None and _retry_after(None, now) is None
