"""The tests' one way to wait for an observable condition (never a bare sleep)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relayfleet.core.waiting import poll_until


class WaitTimeout(AssertionError, TimeoutError):
    """A condition a test waited for never came true (fails the test; fixtures may catch it)."""


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    value = poll_until(pred, timeout, step)
    if not value:
        raise WaitTimeout(f"condition not met within {timeout}s: {pred.__doc__ or pred}")
    return value
