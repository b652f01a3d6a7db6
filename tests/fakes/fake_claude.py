"""Re-export: the fake `claude` lives in the package (the demo runs it too)."""

from relayfleet.fakes.fake_claude import FakeClaude, main, parse_args

__all__ = ["FakeClaude", "main", "parse_args"]
