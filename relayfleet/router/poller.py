"""One polling cycle: fetch each due stream -> items -> per-watch filter -> match -> deliver.

Lists are read to their watermark across cycles when the budget says so (`paging.py`: the
watermark only moves after a complete read); runs streams follow unfinished runs by id
(`runs.py`). `run_once(dry_run=True)` reports deliveries and writes nothing.

Write order, which is what makes delivery exactly-once under `kill -9` at any instant:

1. `transport.append(event)` (durable, idempotent by the deterministic event id),
2. `cursor.record(agent, key)` (in memory), and at the end of the cycle
3. `cursor.save()` (atomic), then
4. `cache.save()` (the HTTP validators).

A crash before 3 re-polls with the old validators (a 200, not a 304), rebuilds the same events
and the transport skips the ids it already has; a crash between 3 and 4 costs one extra 200.
Saving the validators before the cursor could turn the next poll into a 304 and lose items.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from relayfleet.core.atomic import read_json, write_json_atomic
from relayfleet.core.errors import GitHubError, RateLimited
from relayfleet.router import commands
from relayfleet.router.commands import Comment
from relayfleet.router.cursor import Cursor
from relayfleet.router.holding import Holding, learn_visibility
from relayfleet.router.items import Item, item_from_rest
from relayfleet.router.paging import Catchup, Read, read_list
from relayfleet.router.pipeline import CycleReport, Pipeline, RouterConfig, iso
from relayfleet.router.plan import Stream, comment_streams, plan
from relayfleet.router.quarantine import Quarantine
from relayfleet.router.runs import poll_runs
from relayfleet.router.schedule import Cadence, Schedule
from relayfleet.router.transport import InboxTransport

log = logging.getLogger("relayfleet.router")

FIRST_SINCE = 86_400  # a new stream's first `since`: items older than a day are not "current"
OVERLAP = 60  # seconds subtracted when the watermark moves (boundary items are deduped anyway)
STALE_SINCE = 2 * 86_400  # move an unused watermark at most every two days
HALF_PAGE = 50  # ...or as soon as a poll returns this many items (keep responses small)
HOOK_GRACE = 60  # a change this recent may still have its webhook in flight: not counted missed


def _parse_iso(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class Poller(Pipeline):
    def __init__(
        self,
        *,
        client: Any,  # router.github.GitHubClient (or anything with .get/.whoami/.budget/.cache)
        cursor: Cursor,
        transport_for: Callable[[str], InboxTransport],
        status_path: Any = None,
        clock: Callable[[], float] = time.time,
        min_period: float = 10.0,
        before_cycle: Callable[[], None] | None = None,
        rng: Callable[[], float] = random.random,
        cadence: Cadence | None = None,
        quarantine: Quarantine | None = None,
        visibility_path: Any = None,
    ) -> None:
        self.quarantine = quarantine
        self.holding = (
            None if quarantine is None else Holding(quarantine, client, self._release_to, clock)
        )
        self.visibility_path = visibility_path
        self.before_cycle = before_cycle
        self.client = client
        self.cursor = cursor
        self.transport_for = transport_for
        self.status_path = status_path
        self.clock = clock
        self.min_period = min_period
        self.schedule = Schedule(cadence or Cadence(), rng)
        self.poll_interval: dict[str, int] = {}
        self.broken: dict[str, str] = {}  # watch name -> why
        self.stream_status: dict[str, dict[str, Any]] = {}
        self.me: str | None = None
        self.last_cycle: float | None = None
        self.last_error: str | None = None
        self.cycles = 0
        self._dry = False
        # Repos whose webhooks are healthy: their streams poll only every `reconcile_sec`.
        self.reconcile_repos: set[str] = set()
        self.reconcile_sec = 0.0
        # repo -> {count, last, at}: changes webhooks should have brought but a poll did
        self.hook_misses: dict[str, dict[str, Any]] = {}
        self.started = clock()
        self.extra_status: Callable[[], dict[str, Any]] | None = None
        self._carry_over()

    def _carry_over(self) -> None:
        """A restarted router keeps what its predecessor learnt (status file): broken watches
        (until their stream answers again), the last hour's request counts, a pause, and the
        rate-limit figures until their reset, so `status` and the governor do not start blind."""
        if self.status_path is None:
            return
        prev = read_json(self.status_path, {}) or {}
        if not isinstance(prev, dict):
            return
        broken = prev.get("broken")
        if isinstance(broken, dict):
            self.broken.update({str(k): str(v) for k, v in broken.items()})
        misses = prev.get("webhook_misses")
        if isinstance(misses, dict):
            self.hook_misses.update({str(k): dict(v) for k, v in misses.items()
                                     if isinstance(v, dict)})  # fmt: skip
        budget = getattr(self.client, "budget", None)
        rate = prev.get("rate_limit")
        if budget is None or not isinstance(rate, dict):
            return
        budget.seed(rate.get("buckets"))
        paused = rate.get("paused_until")
        if isinstance(paused, (int, float)) and paused > self.clock():
            # A restart must not walk straight back into a secondary limit.
            budget.pause(float(paused), str(rate.get("pause_reason") or "paused"))
        reset = rate.get("reset")
        if budget.remaining is None and isinstance(reset, (int, float)) and reset > self.clock():
            budget.limit, budget.remaining = rate.get("limit"), rate.get("remaining")
            budget.reset, budget.resource = float(reset), rate.get("resource")

    # -- scheduling -----------------------------------------------------------------------
    def period(self, stream: Stream) -> float:
        base = max(float(stream.period), self.min_period)
        if stream.repo and stream.repo.lower() in self.reconcile_repos:
            base = max(base, self.reconcile_sec)  # webhooks bring the news; this reconciles
        return max(base, float(self.poll_interval.get(stream.key, 0)))

    def due(self, stream: Stream, now: float) -> bool:
        if self.schedule.backing_off(stream.key, now):
            return False  # even a new watch waits out its stream's backoff
        if any(not self.cursor.watch_ready(w.name) for w in stream.watches):
            return True  # a new watch takes its snapshot right away
        return now >= self.schedule.due_at(stream.key, now, self.period(stream))

    def seconds_until_due(self, config: RouterConfig, now: float) -> float:
        waits = [60.0]
        for s in plan(config.watches):
            if self.due(s, now):  # (also gives a new stream its phased first slot)
                waits.append(0.0)
            else:
                waits.append(max(0.0, (self.schedule.state(s.key).next_due or now) - now))
        paused = getattr(getattr(self.client, "budget", None), "paused_until", 0.0) - now
        return max(min(waits), paused, 0.0)

    def _govern(self, streams: list[Stream], now: float) -> None:
        """Stretch every period when the projected spend would eat the rate-limit budget."""
        self.schedule.forget_except({s.key for s in streams})
        budget = getattr(self.client, "budget", None)
        if budget is None:
            return
        before = self.schedule.governor
        bases = {s.key: self.period(s) for s in streams}
        after = self.schedule.govern(bases, budget.remaining, budget.reset, now)
        if (after > 1.0) != (before > 1.0) or abs(after - before) > 0.1 * before:
            log.warning("budget governor: periods x%.2f (%s requests left until %s)",
                        after, budget.remaining, iso(budget.reset or now))  # fmt: skip

    # -- the cycle ------------------------------------------------------------------------
    def run_once(
        self, config: RouterConfig, *, force: bool = False, dry_run: bool = False
    ) -> CycleReport:
        """Poll every due stream (all of them with `force`), deliver, then persist.

        `dry_run`: the same cycle, but deliveries are only reported (`report.would`) and nothing
        is written: no inbox, no outbox draining, no cursor, no HTTP cache, no status file."""
        report = CycleReport()
        self._dry = dry_run
        if self.holding is not None:
            self.holding.begin_cycle()
        now = self.clock()
        self.cursor.begin_cycle()
        self.cursor.sync_config(list(config.watches), list(config.routes), list(config.agents))
        for name in list(self.broken):
            if config.queries.get(name) is None:
                del self.broken[name]
        if self.before_cycle is not None and not dry_run:
            try:
                self.before_cycle()  # e.g. drain transports' outboxes
            except Exception as exc:
                log.warning("before-cycle hook failed: %s", exc)
        if not dry_run:
            self._retry_pending(report)
        fatal: GitHubError | None = None
        clean = True
        streams = plan(config.watches)
        self._govern(streams, now)
        try:
            for stream in self._with_comments(streams, config, now):
                if stream.endpoint != "comments" and not (force or self.due(stream, now)):
                    continue
                try:
                    self._poll(stream, config, report)
                except RateLimited as exc:
                    report.errors.append(f"{stream.key}: {exc}")
                    self.last_error = str(exc)
                    break  # the client refuses every request until retry_at anyway
                except GitHubError as exc:
                    if exc.status == 401:
                        fatal = exc
                        break
                    self._stream_failed(stream, exc, report)
            if not dry_run and fatal is None and self.visibility_path is not None:
                watches = [w for st in streams for w in st.watches]
                learn_visibility(self.client, self.visibility_path, watches, config.routes,
                                 self.broken, self.clock())  # fmt: skip
        except BaseException:
            clean = False  # a bug or a kill mid-stream: never save validators for it
            raise
        finally:
            self.last_cycle = now
            self.cycles += 1
            if not dry_run:
                if self.cursor.dirty or self.cursor.saved_at is None:
                    self.cursor.save(self.clock())
                if clean:
                    self.client.cache.save()
                self.write_status()
        if fatal is not None:
            self.last_error = str(fatal)
            if not dry_run:
                self.write_status()
            raise GitHubError(
                "GitHub rejected the token (401 Bad credentials); the router stopped",
                status=401,
                hints=[
                    "run `gh auth login` (or `gh auth refresh`), or set GH_TOKEN to a valid token",
                    "then `gh fleet router start`",
                ],
            )
        return report

    def _with_comments(
        self, streams: list[Stream], config: RouterConfig, now: float
    ) -> Iterator[Stream]:
        """The due streams, then each comments stream an issues poll of this cycle (or an
        earlier one) asked for: a repo's comments are read only when its issue list shows
        more comments than before, so commands cost nothing while nobody comments."""
        yield from streams
        for cs in comment_streams(config.command_repos, config.watches):
            st = self.cursor.streams.get(cs.key) or {}
            if not (st.get("wanted") and st.get("born")):
                continue
            if any(w.name in self.broken for w in cs.watches):
                continue
            if not self.schedule.backing_off(cs.key, now):
                yield cs

    def _retry_pending(self, report: CycleReport) -> None:
        still: list[dict[str, Any]] = []
        for p in self.cursor.pending:
            agent, event = p["agent"], p["event"]
            try:
                self.transport_for(agent).append(agent, event)
            except Exception as exc:  # a transport is a plugin-like edge: keep the event
                log.warning("delivery to %s still failing: %s", agent, exc)
                still.append(p)
                continue
            self.cursor.record(agent, event["metadata"]["dedup_key"])
            report.delivered.append((agent, event["id"]))
        if len(still) != len(self.cursor.pending):
            self.cursor.pending = still
            self.cursor.dirty = True

    def _stream_failed(self, stream: Stream, exc: GitHubError, report: CycleReport) -> None:
        now = self.clock()
        report.errors.append(f"{stream.key}: {exc}")
        transient = exc.transient or exc.status is None or exc.status >= 500
        if stream.endpoint == "comments":
            transient = True  # its watches are the issues stream's to judge; just back off
        self.stream_status[stream.key] = {"last_poll": iso(now), "last_status": exc.status,
                                          "error": str(exc)}  # fmt: skip
        if transient:
            # Nothing was recorded, so nothing is lost; retry with backoff, not every cycle.
            delay = self.schedule.failed(stream.key, now)
            log.warning("%s: %s (retry in %.0fs, failure %d)", stream.key, exc, delay,
                        self.schedule.state(stream.key).failures)  # fmt: skip
            return
        # 404 (repo gone, renamed, no access) or another permanent 4xx: this stream's watches
        # are broken (shown by `router status`); the others keep going.
        why = f"HTTP {exc.status} on GET {stream.path}"
        if exc.status == 404:
            why += ": the repo does not exist (renamed? deleted?) or this token cannot see it"
        else:
            why += f": {str(exc)[:200]}"
        for w in stream.watches:
            self.broken[w.name] = why
        log.error("%s: %s (watches %s marked broken)", stream.key, exc,
                  ", ".join(w.name for w in stream.watches))  # fmt: skip
        self.schedule.broken(stream.key, now, self.period(stream))

    def _poll(self, stream: Stream, config: RouterConfig, report: CycleReport) -> None:
        now = self.clock()
        state = self.cursor.stream(stream.key)
        if stream.endpoint != "runs" and not state.get("since"):
            # A comments stream starts where its repo's snapshot ended (GitHub's clock).
            state["since"] = state.get("born") or iso(now - FIRST_SINCE)
            self.cursor.dirty = True
        needs_me = any("@me" in w.filter for w in stream.watches)
        if needs_me and self.me is None:
            self.me = self.client.whoami()
        if stream.endpoint == "runs":
            page, objs, _ = poll_runs(self.client, stream.path, stream.params(None), state)
            self.cursor.dirty = True
            status = 200 if objs else page.status  # a tracked run's 200 is news too
            poll_interval, read = page.poll_interval, None
        else:
            catchup = Catchup.from_json(state.get("catchup"))
            read = read_list(self.client, stream.path, stream.params(state.get("since")), catchup)
            objs, poll_interval = read.items, read.poll_interval
            status = 200 if read.items or read.status == 200 else 304
        if poll_interval:
            self.poll_interval[stream.key] = int(poll_interval)
        self.schedule.succeeded(stream.key, now, self.period(stream), status)
        for w in stream.watches:
            self.broken.pop(w.name, None)
        self.stream_status[stream.key] = {"last_poll": iso(now), "last_status": status,
                                          "items": len(objs)}  # fmt: skip
        if status == 304:
            report.not_modified.append(stream.key)
        else:
            report.polled.append(stream.key)
            if stream.endpoint == "comments":
                self._deliver_comments(stream, objs, config, report)
            else:
                self._deliver_page(stream, objs, config, report)
        if read is not None:
            self._after_read(stream, read, now)
        if stream.endpoint == "comments":
            if read is None or read.complete:
                state["wanted"] = False
                self.cursor.dirty = True
            return
        if read is not None and not read.complete:
            return  # a snapshot is only taken of a list read to its end (no backlog later)
        if stream.endpoint == "issues" and self._commands_on(stream.repo, config):
            comments = self.cursor.stream(f"comments:{stream.repo.lower()}")
            if not comments.get("born"):
                # Comments up to now are not news: every one of them bumped its issue's
                # `updated_at`, so none was created after the newest `updated_at` seen.
                comments["born"] = state.get("max_seen") or iso(now)
                self.cursor.dirty = True
        for w in stream.watches:
            if not self.cursor.watch_ready(w.name):
                self.cursor.mark_snapshot(w.name)
                report.snapshots.append(w.name)

    def _after_read(self, stream: Stream, read: Read, now: float) -> None:
        """Keep the first page's validators; move the watermark only past what was all read."""
        state = self.cursor.stream(stream.key)
        had = Catchup.from_json(state.get("catchup"))
        if read.status == 200 or read.etag or read.last_modified:
            self.client.cache.put(read.url, read.etag, read.last_modified)
        if read.complete:
            if had is not None:
                state.pop("catchup", None)
                self.cursor.dirty = True
                log.warning("%s: caught up (%d page(s) this cycle)", stream.key, read.pages)
            self._move_watermark(stream, read.items, now, had.head_mark if had else "")
            self.stream_status[stream.key].pop("behind", None)
            return
        assert read.catchup is not None
        state["catchup"] = read.catchup.to_json()
        self.cursor.dirty = True
        self.stream_status[stream.key]["behind"] = read.catchup.behind
        why = "the rate-limit budget is low" if read.stopped == "budget" else read.stopped
        log.warning(
            "%s: catching up: %d page(s) behind, resuming at page %d next cycle (%s); "
            "the watermark stays at %s until every page is read",
            stream.key, read.catchup.behind, read.catchup.resume_page, why, state.get("since"),
        )  # fmt: skip

    def _items(self, stream: Stream, objs: Iterable[dict[str, Any]]) -> list[Item]:
        out: list[Item] = []
        for obj in objs:
            try:
                out.append(item_from_rest(stream.endpoint, stream.repo, obj))
            except (ValueError, TypeError, KeyError) as exc:
                # One odd object must not hold back the rest of the page.
                log.warning("%s: skipped an unreadable item: %s", stream.key, exc)
        return out

    def _deliver_page(
        self, stream: Stream, objs: list[dict[str, Any]], config: RouterConfig, report: CycleReport
    ) -> None:
        known_until = self._known_until(stream)
        items = self._items(stream, objs)
        if stream.endpoint == "issues" and self._commands_on(stream.repo, config):
            self._want_comments(stream.repo, items)
        reached = self.deliver_items(items, stream.watches, config, report, known_until)
        if stream.repo.lower() in self.reconcile_repos and not self._dry:
            for item in reached:  # webhooks are healthy here: what a poll still brings, they missed
                self._missed_by_webhooks(item)

    def _missed_by_webhooks(self, item: Item) -> None:
        """Count (per repo, in `status`) a change only reconciliation brought: a delivery GitHub
        failed to make, or, when it keeps happening, a hook not subscribed to that event."""
        updated = _parse_iso(item.updated_at)
        if updated is not None and not self.started <= updated <= self.clock() - HOOK_GRACE:
            return  # changed while this router was down (lost, known), or its hook is in flight
        m = self.hook_misses.setdefault(item.repo.lower(), {"count": 0})
        m.update(count=int(m["count"]) + 1, last=f"{item.ref} ({item.change})",
                 at=iso(self.clock()))  # fmt: skip
        log.warning(
            "%s (%s) came by a reconciliation poll, not by webhook: a delivery was lost, "
            "or the webhook is not subscribed to that event", item.ref, item.change,
        )  # fmt: skip

    def _deliver_comments(
        self, stream: Stream, objs: list[dict[str, Any]], config: RouterConfig, report: CycleReport
    ) -> None:
        state = self.cursor.stream(stream.key)
        found: list[Comment] = []
        for obj in objs:
            try:
                found.append(commands.comment_from_rest(stream.repo, obj))
            except (ValueError, TypeError) as exc:
                log.warning("%s: skipped an unreadable comment: %s", stream.key, exc)
        born = str(state.get("born") or "")
        self.deliver_commands([c for c in found if c.created_at > born], config, report)

    def _known_until(self, stream: Stream) -> str:
        """Up to when (GitHub's clock) this stream has seen every item: the newest `updated_at`
        of earlier polls, or the watermark they started from (read before this page moves it).
        Every item updated after the watermark was in an earlier page, so one first seen now that
        was created before this time is old; "" when the stream has not polled yet."""
        state = self.cursor.stream(stream.key)
        marks = [str(state.get(k) or "") for k in ("since", "max_seen")]
        valid = [m for m in marks if _parse_iso(m) is not None]
        return max(valid, key=lambda m: _parse_iso(m) or 0.0, default="")

    def _move_watermark(
        self, stream: Stream, objs: list[dict[str, Any]], now: float, mark: str = ""
    ) -> None:
        """Lazy `since`: keep the URL (and its ETag) stable; move only when it pays off. Called
        only after a complete read (every item since the watermark was read)."""
        if stream.endpoint == "runs":
            return
        state = self.cursor.stream(stream.key)
        newest = max([mark, *(str(o.get("updated_at") or "") for o in objs)])
        if newest > str(state.get("max_seen") or ""):
            state["max_seen"] = newest
            self.cursor.dirty = True
        since_ts = _parse_iso(str(state.get("since") or "")) or 0.0
        max_seen_ts = _parse_iso(str(state.get("max_seen") or ""))
        if max_seen_ts is None:
            return
        if len(objs) >= HALF_PAGE or now - since_ts > STALE_SINCE:
            moved = iso(max(since_ts, max_seen_ts - OVERLAP))
            if moved != state.get("since"):
                state["since"] = moved
                self.cursor.dirty = True

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        budget = getattr(self.client, "budget", None)
        req = budget.requests_last_hour() if budget else None
        nm = budget.not_modified_last_hour() if budget else None
        return {
            "last_cycle": iso(self.last_cycle) if self.last_cycle else None,
            "last_cycle_ts": self.last_cycle,
            "cycles": self.cycles,
            "requests_last_hour": req,
            "not_modified_last_hour": nm,
            "rate_limit": budget.to_dict() if budget else {},
            "broken": dict(self.broken),
            "streams": {k: {**v, **self._sched_status(k)} for k, v in self.stream_status.items()},
            "governor": round(self.schedule.governor, 2),
            "catching_up": self.catching_up(),
            "cursor_saved_at": self.cursor.saved_at,
            "pending": len(self.cursor.pending),
            "error": self.last_error,
            "webhook_misses": self.hook_misses,
        }

    def catching_up(self) -> dict[str, int]:
        """Streams whose list was not read to its watermark yet -> pages known to be left."""
        out: dict[str, int] = {}
        for key, state in self.cursor.streams.items():
            c = Catchup.from_json(state.get("catchup"))
            if c is not None:
                out[key] = c.behind
        return out

    def _sched_status(self, key: str) -> dict[str, Any]:
        st = self.schedule.streams.get(key)
        if st is None:
            return {}
        return {
            "next_due": iso(st.next_due) if st.next_due is not None else None,
            "period_s": round(st.period, 1) if st.period else None,
            "idle_polls": st.idle_polls,
            "failures": st.failures,
            "retry_in_s": round(st.retry_in, 1) if st.retry_in is not None else None,
        }

    def write_status(self, **extra: Any) -> None:
        if self.status_path is not None:
            more = self.extra_status() if self.extra_status is not None else {}
            write_json_atomic(self.status_path, {**self.status(), **more, **extra})
