"""Session-wide real daemons for the remote tests: one sshd, one dockerd (started lazily)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import remote_support as rs


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rs.Sshd]:
    why = rs.ensure_packages(rs.SSHD, ["openssh-server"])
    if why:
        pytest.skip(why)
    server = rs.start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rs.Dockerd]:
    # docker-init (tini) backs `init=True`; --no-install-recommends leaves it out.
    why = rs.ensure_packages("dockerd", ["docker.io"]) or rs.ensure_packages(
        "docker-init", ["tini"]
    )
    if why:
        pytest.skip(why)
    try:
        daemon = rs.start_dockerd(tmp_path_factory.mktemp("dockerd"))
    except (RuntimeError, TimeoutError) as exc:
        pytest.skip(f"dockerd could not start here: {exc}")
    try:
        rs.import_skeleton_image(daemon.client())
        yield daemon
    finally:
        daemon.stop()
