"""Exactly-once under `kill -9`: a real router process killed at random instants, many times."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.router.crash_harness import run_crash_fuzz, summary


@pytest.mark.slow
def test_sigkill_at_random_instants_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    result = run_crash_fuzz(tmp_path, kills=24, seed=11)
    print(summary(result))
    assert result.kills == 24 and result.mutations > 50
    assert result.lost == []
    assert result.duplicates == []
    assert result.regressions == []
    assert result.delivered >= result.expected > 0
