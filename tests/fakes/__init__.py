"""Fakes for tests. The fake GitHub lives in the package (the demo uses it) and is re-exported."""

from relayfleet.fakes.github import DEFAULT_TOKEN, FakeGitHub, ManualClock, RemoteFakeGitHub

__all__ = ["DEFAULT_TOKEN", "FakeGitHub", "ManualClock", "RemoteFakeGitHub"]
