"""`gh fleet gateway start|status|routes|stats|stop`, black-box, against a fake upstream."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_support import FakeUpstream, wait_until

pytestmark = pytest.mark.slow

REAL_KEY = "sk-ant-api03-REAL-operator-key-for-cli-test"


def write_fleet(root: Path, upstream: str) -> None:
    fleet = root / ".fleet"
    (fleet / "agents").mkdir(parents=True)
    (fleet / "fleet.toml").write_text(
        f"""[fleet]
name = "gw-test"

[gateway]
listen = "127.0.0.1:0"
upstream = "{upstream}"

[gateway.stages]
pii = "{upstream}/pii-stage-not-used"
"""
    )
    agents = {
        "coder": 'mode = "gateway"',
        "local-model": f'mode = "custom"\nurl = "{upstream}"\nvia_gateway = true',
        "direct": 'mode = "default"',
    }
    for port, (name, endpoint) in enumerate(agents.items(), start=8801):
        d = fleet / "agents" / name
        d.mkdir()
        (d / "agent.toml").write_text(
            f'name = "{name}"\nrole = "coder"\nport = {port}\n\n[claude.endpoint]\n{endpoint}\n'
        )


def gh_fleet(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relayfleet", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def test_gateway_lifecycle_black_box(tmp_path: Path, upstream: FakeUpstream) -> None:
    root = tmp_path / "repo"
    write_fleet(root, upstream.url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "FLEET_"))},
        "HOME": str(tmp_path / "home"),
        "ANTHROPIC_API_KEY": REAL_KEY,
    }
    env.pop("RELAYFLEET_GATEWAY_SECRET", None)

    started = gh_fleet(root, "gateway", "start", env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert "gateway running at http://127.0.0.1:" in started.stdout

        status = json.loads(gh_fleet(root, "gateway", "status", "--json", env=env).stdout)
        assert status["running"] is True and status["credential"] == "api_key"
        url = status["url"]

        routes = json.loads(gh_fleet(root, "gateway", "routes", "--json", env=env).stdout)
        assert [(r["agent"], r["upstream"]) for r in routes] == [
            ("coder", upstream.url),
            ("local-model", upstream.url),
        ]
        assert all({"agent", "sentinel", "upstream"} <= r.keys() for r in routes)
        secret = root / ".fleet" / "state" / "gateway" / "secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600

        coder = routes[0]["sentinel"]
        resp = httpx.post(
            f"{url}/v1/messages", headers={"x-api-key": coder}, json={"m": 1}, timeout=30
        )
        assert resp.status_code == 200
        assert upstream.seen[-1].header("x-api-key") == REAL_KEY
        bad = httpx.post(f"{url}/v1/messages", headers={"x-api-key": "nope"}, timeout=30)
        assert bad.status_code == 401 and len(upstream.seen) == 1

        def stats() -> dict:
            out = gh_fleet(root, "gateway", "stats", "--json", env=env)
            return json.loads(out.stdout)

        saved = wait_until(lambda: (s := stats()).get("agents", {}).get("coder") and s, 30)
        assert saved["agents"]["coder"]["requests"] == 1
        assert saved["agents"]["coder"]["input_tokens"] == 11
        table = gh_fleet(root, "gateway", "stats", env=env).stdout
        assert "coder" in table and "rejected (unknown key): " in table
    finally:
        stopped = gh_fleet(root, "gateway", "stop", env=env)
    assert stopped.returncode == 0 and "gateway stopped" in stopped.stdout
    after = json.loads(gh_fleet(root, "gateway", "status", "--json", env=env).stdout)
    assert after["running"] is False
    saved = json.loads((root / ".fleet" / "state" / "gateway" / "stats.json").read_text())
    assert saved["rejected"] == 1
    log = (root / ".fleet" / "state" / "gateway" / "gateway.log").read_text()
    assert "agent=coder POST /v1/messages 200" in log
    assert REAL_KEY not in log and coder not in log
