"""`gh fleet quarantine list|release|drop`, `status` and `validate` on a real `.fleet/` with the
router (`router run --once`) against the fake GitHub."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayfleet.cli.context import Context
from relayfleet.cli.main import main
from relayfleet.fakes.github import FakeGitHub
from tests.router.helpers import watch, write_fleet

REPO = "acme/wms"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_repo(REPO)
        yield gh


@pytest.fixture
def root(tmp_path: Path, fake: FakeGitHub) -> Path:
    write_fleet(tmp_path, ["reviewer"], [watch("wms-prs", "pulls", REPO, "--state open")], [])
    (tmp_path / ".fleet" / "routes.toml").write_text(
        '[[watch]]\nname = "wms-prs"\nkind = "pulls"\nrepo = "acme/wms"\n'
        'filter = "--state open"\npoll_sec = 30\n\n'
        '[[route]]\nto = ["reviewer"]\nuntrusted = "hold"\n[route.match]\nwatch = "wms-prs"\n'
        'association = ["OWNER", "MEMBER", "COLLABORATOR"]\n'
    )
    return tmp_path


def cli(root: Path, fake: FakeGitHub, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {**keep, "FLEET_ROOT": str(root), "FLEET_GITHUB_API_URL": fake.base_url,
           "GH_TOKEN": fake.token, "FLEET_ROUTER_MIN_PERIOD": "0"}  # fmt: skip
    rc = main(list(argv), Context(out=out, err=err, env=env, cwd=root))
    return rc, out.getvalue(), err.getvalue()


def inbox(root: Path, fake: FakeGitHub) -> list[dict]:
    rc, out, _ = cli(root, fake, "inbox", "reviewer", "--json")
    assert rc == 0
    return list(json.loads(out))


def test_list_release_drop_and_status(root: Path, fake: FakeGitHub) -> None:
    assert cli(root, fake, "router", "run", "--once")[0] == 0
    a = fake.open_pr(REPO, "Add <!-- sudo --> a feature", author="mallory", association="NONE")
    b = fake.open_pr(REPO, "Another", author="eve", association="FIRST_TIME_CONTRIBUTOR")
    rc, out, _ = cli(root, fake, "router", "run", "--once")
    assert rc == 0 and "delivered 0 event(s)" in out and out.count("held acme/wms#") == 2
    assert inbox(root, fake) == []

    rc, out, _ = cli(root, fake, "quarantine", "list", "--json")
    rows = {r["number"]: r for r in json.loads(out)}
    assert set(rows) == {a, b}
    ra = rows[a]
    assert (ra["author"], ra["association"], ra["ref"], ra["title"]) == (
        "mallory", "NONE", f"{REPO}#{a}", "Add  a feature")  # fmt: skip
    assert ra["agents"] == ["reviewer"] and ra["hygiene"] == {"html_comments": 1}
    assert "outside route #1's gate" in ra["why"][0]

    rc, out, _ = cli(root, fake, "quarantine", "list")
    assert rc == 0 and "@mallory (NONE)" in out and "[hidden: html_comments 1]" in out

    rc, out, _ = cli(root, fake, "status", "--json")
    assert json.loads(out)["router"]["held"] == 2
    rc, out, _ = cli(root, fake, "status")
    assert "quarantine: 2 item(s) held" in out

    rc, out, _ = cli(root, fake, "quarantine", "release", ra["id"])
    assert rc == 0 and f"released {ra['id']}" in out and "to reviewer" in out
    rc, _, err = cli(root, fake, "quarantine", "release", ra["id"])
    assert rc == 1 and "already released by @operator" in err
    rc, out, _ = cli(root, fake, "quarantine", "drop", rows[b]["id"])
    assert rc == 0 and "dropped" in out
    rc, _, err = cli(root, fake, "quarantine", "drop", "qnope")
    assert rc == 1 and err.startswith("gh fleet: no quarantined item 'qnope'")

    assert cli(root, fake, "router", "run", "--once")[0] == 0
    [event] = inbox(root, fake)
    assert event["metadata"]["number"] == a and event["metadata"]["released_by"] == "operator"
    assert "released by @operator" in event["body"]
    rc, out, _ = cli(root, fake, "quarantine", "list")
    assert out.strip() == "nothing held"
    rc, out, _ = cli(root, fake, "quarantine", "list", "--all", "--json")
    assert sorted(r["status"] for r in json.loads(out)) == ["dropped", "released"]
    rc, out, _ = cli(root, fake, "status", "--json")
    assert json.loads(out)["router"]["held"] == 0
