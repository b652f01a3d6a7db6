"""`gh fleet quarantine list|release|drop`, `status` and `validate` on a real `.fleet/` with the
router (`router run --once`) against the fake GitHub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relayfleet.fakes.github import FakeGitHub
from tests.router.helpers import cli, watch, write_fleet

REPO = "acme/wms"

# On the real time: the router under test runs as it does in production.
pytestmark = pytest.mark.fake_github(repos=[REPO], wall_clock=True)


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
    _, out, _ = cli(root, fake, "inbox", "reviewer")
    assert out.rstrip().endswith("[hidden: html_comments 1]")  # the operator sees it too
    rc, out, _ = cli(root, fake, "quarantine", "list")
    assert out.strip() == "nothing held"
    rc, out, _ = cli(root, fake, "quarantine", "list", "--all", "--json")
    assert sorted(r["status"] for r in json.loads(out)) == ["dropped", "released"]
    rc, out, _ = cli(root, fake, "status", "--json")
    assert json.loads(out)["router"]["held"] == 0


def ungated_fleet(root: Path) -> None:
    (root / ".fleet" / "routes.toml").write_text(
        '[[watch]]\nname = "wms-prs"\nkind = "pulls"\nrepo = "acme/wms"\npoll_sec = 30\n\n'
        '[[watch]]\nname = "intra"\nkind = "issues"\nrepo = "acme/intra"\npoll_sec = 30\n\n'
        '[[route]]\nto = ["reviewer"]\n[route.match]\nwatch = "wms-prs"\n\n'
        '[[route]]\nto = ["reviewer"]\n[route.match]\nwatch = "intra"\n\n'
        '[[route]]\nto = ["reviewer"]\nuntrusted = "hold"\n[route.match]\nwatch = "intra"\n'
    )


def test_route_and_validate_warn_about_an_ungated_route_on_a_public_repo(
    root: Path, fake: FakeGitHub
) -> None:
    fake.add_repo("acme/intra", private=True)
    ungated_fleet(root)
    _, out, _ = cli(root, fake, "route", "--json")
    msgs = [p["message"] for p in json.loads(out)["problems"]]
    # Before the router has looked, visibility is unknown: no network in `route`, no guess.
    assert not any("public" in m for m in msgs)
    assert any('untrusted = "hold" does nothing' in m for m in msgs)
    before = len(fake.requests)

    assert cli(root, fake, "router", "run", "--once")[0] == 0
    assert cli(root, fake, "router", "run", "--once")[0] == 0  # once a day, not every cycle
    looked = [r.path for r in fake.requests[before:] if r.path.count("/") == 3]
    assert sorted(looked) == ["/repos/acme/intra", "/repos/acme/wms"]

    after = len(fake.requests)
    _rc, out, _ = cli(root, fake, "route", "--json")
    gate = json.loads(out)
    public = [p for p in gate["problems"] if "public" in p["message"]]
    assert [p["line"] for p in public] == [gate_line(root, 1)]
    assert "acme/wms is public" in public[0]["message"] and "reviewer" in public[0]["message"]
    assert [r["untrusted"] for r in gate["routes"]] == ["drop", "drop", "hold"]
    _, out, err = cli(root, fake, "validate")
    assert "acme/wms is public" in out + err and "acme/intra is public" not in out + err
    assert len(fake.requests) == after  # neither command touched the network
    rc, _, err = cli(root, fake, "route", "add", "--to", "reviewer", "--watch", "wms-prs",
                     "--label", "bug", "--no-commit")  # fmt: skip
    assert rc == 0 and "warning: no --association gate, and acme/wms is public" in err
    rc, _, err = cli(root, fake, "route", "add", "--to", "reviewer", "--watch", "intra",
                     "--label", "bug", "--no-commit")  # fmt: skip
    assert rc == 0 and "public" not in err  # acme/intra is private


def gate_line(root: Path, n: int) -> int:
    lines = (root / ".fleet" / "routes.toml").read_text().splitlines()
    return [i + 1 for i, line in enumerate(lines) if line == "[[route]]"][n - 1]


def test_route_add_untrusted_hold(root: Path, fake: FakeGitHub) -> None:
    rc, _, err = cli(root, fake, "route", "add", "--to", "reviewer", "--watch", "wms-prs",
                     "--untrusted", "hold", "--no-commit")  # fmt: skip
    assert rc == 1 and "needs --association" in err
    rc, out, err = cli(root, fake, "route", "add", "--to", "reviewer", "--watch", "wms-prs",
                       "--association", "OWNER", "--untrusted", "hold", "--no-commit")  # fmt: skip
    assert rc == 0, err
    _, out, _ = cli(root, fake, "route")
    assert "#2  watch=wms-prs association=OWNER → reviewer (untrusted: hold)" in out


def test_a_runs_route_is_not_asked_for_a_gate(root: Path, fake: FakeGitHub) -> None:
    (root / ".fleet" / "routes.toml").write_text(
        '[[watch]]\nname = "ci"\nkind = "runs"\nrepo = "acme/wms"\npoll_sec = 30\n\n'
        '[[route]]\nto = ["reviewer"]\n[route.match]\nwatch = "ci"\n'
    )
    assert cli(root, fake, "router", "run", "--once")[0] == 0
    _, out, _ = cli(root, fake, "route", "--json")
    assert not any("public" in p["message"] for p in json.loads(out)["problems"])


def test_route_test_and_dry_run_say_an_outsiders_item_would_be_held(
    root: Path, fake: FakeGitHub
) -> None:
    _, out, _ = cli(root, fake, "route", "test", "--repo", REPO, "--kind", "pulls",
                    "--author", "mallory", "--association", "NONE")  # fmt: skip
    assert "route #1 → reviewer: held: the author is outside its gate" in out
    assert "Recipients: (none)" in out and "Held for: reviewer" in out
    _, out, _ = cli(root, fake, "route", "test", "--repo", REPO, "--kind", "pulls",
                    "--author", "alice", "--association", "MEMBER", "--json")  # fmt: skip
    report = json.loads(out)
    assert report["recipients"] == ["reviewer"] and report["held_for"] == []

    assert cli(root, fake, "router", "run", "--once")[0] == 0
    fake.open_pr(REPO, "Outside", author="mallory", association="NONE")
    _, out, _ = cli(root, fake, "router", "run", "--once", "--dry-run")
    assert f"would hold {REPO}#1" in out
    _, out, _ = cli(root, fake, "quarantine", "list", "--json")
    assert json.loads(out) == []  # a dry run writes nothing
