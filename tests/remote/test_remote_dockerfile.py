"""The project's Dockerfile builds for real with the docker SDK, offline: `BASE` names a local
image (this machine's Debian python, imported: no registry here) and the package is installed
from the build context alone (pip --no-index --no-deps)."""

from __future__ import annotations

import pytest
import remote_support as rs

from relayfleet.core.paths import project_dir

pytestmark = pytest.mark.slow


def test_the_dockerfile_builds_offline_on_a_local_base(dockerd: rs.Dockerd) -> None:
    client = dockerd.client()
    base = rs.import_python_base(client)
    tag = "relayfleet-test-built:offline"
    import docker

    try:
        client.images.build(
            path=str(project_dir()),
            tag=tag,
            rm=True,
            pull=False,
            network_mode="none",  # proves nothing is fetched
            buildargs={
                "BASE": base,
                "OFFLINE": "1",
                "PIP_ARGS": "--no-index --no-deps --no-build-isolation",
            },
        )
    except docker.errors.BuildError as exc:  # show pip's own words, not just "exit 1"
        log = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)
        raise AssertionError(log[-3000:]) from exc
    try:
        out = client.containers.run(
            tag,
            ["python", "-c", "import relayfleet, relayfleet.core.inboxfile as m; "
             "print(relayfleet.__version__, m.__file__)"],
            remove=True,
            network_mode="none",
        ).decode()  # fmt: skip
        from relayfleet import __version__

        assert out.split() == [__version__, "/opt/relayfleet/relayfleet/core/inboxfile.py"]
    finally:
        client.images.remove(tag, force=True)
