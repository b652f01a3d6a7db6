"""The receiver inside the router process: its secret, its spool, draining into a `deliver`
callable, and webhook health (what makes polling a reconciliation).

The router's loop calls `drain(deliver)` whenever the receiver wakes it (and once per turn);
`deliver` is the pipeline's entry (`Poller.intake`), which this module does not know.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from relayfleet.core.errors import ConfigError
from relayfleet.fleet.model import SecretRef, WebhookConfig
from relayfleet.router.spool import Spool
from relayfleet.router.webhook import Intake, Receiver, parse_event

log = logging.getLogger("relayfleet.router.webhook")


def read_secret(ref: SecretRef, env: Mapping[str, str], base: Path | None = None) -> bytes:
    """The webhook secret from its reference. Errors name the reference, never a value."""
    where = ref.describe()
    value = ""
    if ref.from_env:
        value = env.get(ref.from_env, "")
    elif ref.from_file:
        path = Path(ref.from_file).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            value = path.read_text()
        except OSError as exc:
            raise ConfigError(f"webhook secret: cannot read {where}: {exc.strerror}") from None
    elif ref.from_command:
        try:
            proc = subprocess.run(list(ref.from_command), capture_output=True, text=True,
                                  timeout=30, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"webhook secret: {where} failed: {exc}") from None
        if proc.returncode != 0:
            raise ConfigError(f"webhook secret: {where} exited {proc.returncode}")
        value = proc.stdout
    value = value.strip()
    if not value:
        raise ConfigError(
            f"webhook secret: {where} is empty or unset",
            hints=["set it to the secret the GitHub webhook was created with"],
        )
    return value.encode()


def spool_dir(router_state: Path) -> Path:
    return Path(router_state) / "webhook"


class WebhookIntake:
    def __init__(
        self,
        router_state: Path,
        cfg: WebhookConfig,
        secret: bytes,
        *,
        previous: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.spool = Spool(spool_dir(router_state))
        self.wake = threading.Event()
        self._secret = secret
        self.receiver = Receiver(self.spool, lambda: self._secret, wake=self.wake, clock=clock)
        self.address: tuple[str, int] | None = None
        self._seed(previous or {})
        self.wake.set()  # drain what a previous router left in the spool

    def _seed(self, prev: Mapping[str, Any]) -> None:
        """A restarted router remembers when deliveries last came (status stays truthful)."""
        h = self.receiver.health  # (before the receiver's threads start)
        last = prev.get("last_delivery")
        if isinstance(last, (int, float)):
            h.last, h.last_event = float(last), str(prev.get("last_event") or "")
        repos = prev.get("repos")
        if isinstance(repos, dict):
            h.repos.update({str(k): float(v) for k, v in repos.items()
                            if isinstance(v, (int, float))})  # fmt: skip

    def set_secret(self, secret: bytes) -> None:
        self._secret = secret

    def start(self) -> tuple[str, int]:
        self.address = self.receiver.start(self.cfg.listen)
        log.info("webhook receiver listening on %s:%d", *self.address)
        return self.address

    def stop(self) -> None:
        self.receiver.stop()

    def drain(
        self, deliver: Callable[[Intake], None], commit: Callable[[], None] | None = None
    ) -> int:
        """Every spooled delivery through `deliver`, then `commit` (the cursor's save), then mark
        them drained. Returns how many."""
        entries = self.spool.pending()
        for e in entries:
            try:
                intake = parse_event(e.event, json.loads(e.body))
            except (ValueError, TypeError) as exc:
                log.warning("delivery %s (%s) skipped: %s", e.delivery, e.event, exc)
                continue
            deliver(intake)
        if entries:
            if commit is not None:
                commit()
            self.spool.drained(entries[-1].end)
        return len(entries)

    def healthy(self, repos: Iterable[str], now: float | None = None) -> set[str]:
        """Of `repos`, those with a delivery or ping (theirs or their owner's organisation
        hook's) within `reconcile_sec`."""
        now = self.clock() if now is None else now
        fresh = self.receiver.healthy_repos(now, float(self.cfg.reconcile_sec))
        out = set()
        for r in repos:
            low = r.lower()
            if low in fresh or low.split("/", 1)[0] + "/*" in fresh:
                out.add(low)
        return out

    def status(self) -> dict[str, Any]:
        return {
            "webhook": {
                **self.receiver.health_dict(),
                "listen": f"{self.address[0]}:{self.address[1]}"
                if self.address
                else self.cfg.listen,
                "reconcile_sec": self.cfg.reconcile_sec,
            }
        }


def health_line(st: Mapping[str, Any] | None, now: float) -> str:
    """`healthy, last delivery 12 s ago` / `quiet since …` / `no deliveries yet`."""
    from relayfleet.router.pipeline import iso

    if not isinstance(st, Mapping):
        return "off"
    last = st.get("last_delivery")
    window = float(st.get("reconcile_sec") or 600)
    if not isinstance(last, (int, float)):
        return f"listening on {st.get('listen')}, no deliveries yet"
    age = max(0.0, now - last)
    if age <= window:
        return f"healthy, last delivery {age:.0f} s ago"
    return f"quiet since {iso(last)} (polling at the normal cadence)"
