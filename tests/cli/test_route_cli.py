"""`gh fleet route|watch …` through the real `./gh-fleet` executable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleet_samples import ROUTES_TOML, write_fleet

from relayfleet.fleet.gitops import commit_fleet
from tests.conftest import RunCli, git


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit_fleet(git_repo, [write_fleet(git_repo)], "fleet: init")
    return git_repo


def one_error_line(proc: object) -> str:
    lines = proc.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert lines and lines[0].startswith("gh fleet: "), proc.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in proc.stderr  # type: ignore[attr-defined]
    return lines[0]


def test_route_prints_the_gate(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("route", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "wms-assigned  issues  acme/WMS" in proc.stdout
    assert "#1  watch=wms-assigned → wms-coder" in proc.stdout
    assert "✓ no problems" in proc.stdout


def test_route_json_shape_and_problems(repo: Path, run_cli: RunCli) -> None:
    (repo / ".fleet" / "routes.toml").write_text(
        ROUTES_TOML + '\n[[route]]\nto = ["ghost"]\n\n[[route]]\nto = ["wms-coder"]\n'
    )
    proc = run_cli("route", "--json", cwd=repo)
    assert proc.returncode == 1  # a route to an unknown agent is an error
    gate = json.loads(proc.stdout)
    assert set(gate) == {"watches", "routes", "problems"}
    assert gate["watches"][0] == {
        "name": "wms-assigned",
        "kind": "issues",
        "repo": "acme/WMS",
        "filter": "--search assignee:@me --state open",
        "poll_sec": 240,
    }
    assert gate["routes"][0] == {
        "index": 1,
        "match": {"watch": ["wms-assigned"]},
        "to": ["wms-coder"],
        "untrusted": "drop",
    }
    levels = {
        (p["level"], "ghost" in p["message"], "catch-all" in p["message"]) for p in gate["problems"]
    }
    assert ("error", True, False) in levels  # unknown agent
    assert ("warning", False, True) in levels  # catch-all flagged
    assert all(set(p) >= {"level", "message"} for p in gate["problems"])


def test_watch_and_route_add_commit_and_keep_comments(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("watch", "add", "wms-bugs", "--kind", "issues", "--repo", "acme/WMS",
                   "--filter", "--label bug", cwd=repo)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Added watch wms-bugs (issues acme/WMS)" in proc.stdout
    proc = run_cli("route", "add", "--to", "wms-coder,wms-reviewer", "--watch", "wms-bugs",
                   "--association", "OWNER,MEMBER", cwd=repo)  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    text = (repo / ".fleet" / "routes.toml").read_text()
    assert "# the reviewer gets open PRs" in text and "# issues for the coder" in text
    assert git(repo, "log", "-2", "--format=%s").splitlines() == [
        "fleet: add route #3 (watch=wms-bugs association=OWNER,MEMBER → wms-coder, wms-reviewer)",
        "fleet: add watch wms-bugs (issues acme/WMS)",
    ]
    assert git(repo, "status", "--porcelain").strip() == ""
    gate = json.loads(run_cli("route", "--json", cwd=repo).stdout)
    assert gate["routes"][2]["match"] == {"watch": ["wms-bugs"], "association": ["OWNER", "MEMBER"]}


def test_route_remove_and_no_commit(repo: Path, run_cli: RunCli) -> None:
    head = git(repo, "rev-parse", "HEAD")
    proc = run_cli("route", "remove", "2", "--no-commit", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain").strip() == "M .fleet/routes.toml"
    assert (
        "wms-reviewer" not in (repo / ".fleet" / "routes.toml").read_text().split("[[route]]")[-1]
    )


def test_watch_remove_refuses_while_routed(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("watch", "remove", "wms-prs", cwd=repo)
    assert proc.returncode == 1
    assert "used by route #2" in one_error_line(proc)
    assert "--prune-routes" in proc.stderr
    proc = run_cli("watch", "remove", "wms-prs", "--prune-routes", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert (
        git(repo, "log", "-1", "--format=%s").strip() == "fleet: remove watch wms-prs and route #2"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["route", "add", "--to", "ghost", "--watch", "wms-prs"], "no agent named 'ghost'"),
        (["route", "add", "--to", "wms-coder", "--kind", "prs"], "invalid kind 'prs'"),
        (["route", "add", "--to", "wms-coder", "--watch", "nope"], "no watch named 'nope'"),
        (["route", "remove", "9"], "no route #9"),
        (["watch", "add", "x", "--kind", "issues", "--repo", "acme"], "expected owner/name"),
        (
            ["watch", "add", "x", "--kind", "issues", "--repo", "a/b", "--filter", "--nope 1"],
            "'--nope'",
        ),
        (["watch", "remove", "nope"], "no watch named 'nope'"),
    ],
)
def test_bad_inputs_exit_1_with_one_line_and_touch_nothing(
    repo: Path, run_cli: RunCli, args: list[str], needle: str
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    proc = run_cli(*args, cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert needle in one_error_line(proc)
    assert (repo / ".fleet" / "routes.toml").read_text() == ROUTES_TOML
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain").strip() == ""


def test_syntax_error_points_at_the_line_and_keeps_the_file(repo: Path, run_cli: RunCli) -> None:
    broken = ROUTES_TOML + "\n[[route]\n"
    (repo / ".fleet" / "routes.toml").write_text(broken)
    proc = run_cli("route", "add", "--to", "wms-coder", "--label", "x", cwd=repo)
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("gh fleet: .fleet/routes.toml:")
    assert (repo / ".fleet" / "routes.toml").read_text() == broken


def test_route_test_with_flags_explains_each_route(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("route", "test", "--repo", "acme/WMS", "--kind", "pulls",
                   "--watch", "wms-prs", "--label", "bug", cwd=repo)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "✗ route #1 → wms-coder: no match" in out
    assert "✗ watch: wants wms-assigned; item has wms-prs" in out
    assert "✓ route #2 → wms-reviewer: matches" in out
    assert out.strip().endswith("Recipients: wms-reviewer")


def test_route_test_with_a_raw_github_pull_json(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    (repo / ".fleet" / "routes.toml").write_text(
        ROUTES_TOML
        + '\n[[route]]\nto = ["wms-coder"]\n[route.match]\nlabel = "needs-human"\n'
        + 'association = ["OWNER", "MEMBER"]\n'
    )
    pull = {
        "url": "https://api.github.com/repos/acme/WMS/pulls/7",
        "html_url": "https://github.com/acme/WMS/pull/7",
        "number": 7,
        "state": "open",
        "title": "Fix the scanner",
        "user": {"login": "mallory"},
        "author_association": "NONE",
        "labels": [{"name": "needs-human"}],
        "head": {"sha": "abc", "ref": "fix"},
        "base": {"ref": "main", "repo": {"full_name": "acme/WMS"}},
        "updated_at": "2026-11-24T09:59:58Z",
    }
    item = tmp_path / "pull.json"
    item.write_text(json.dumps(pull))
    proc = run_cli("route", "test", "--item", str(item), "--watch", "wms-prs", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["item"]["kind"] == "pulls" and report["item"]["number"] == 7
    assert report["recipients"] == ["wms-reviewer"]
    third = report["routes"][2]
    assert third["matched"] is False
    label = next(c for c in third["checks"] if c["key"] == "label")
    assert label["ok"] is True
    assoc = next(c for c in third["checks"] if c["key"] == "association")
    assert assoc["ok"] is False and "NONE" in assoc["why"]


def test_route_test_with_a_simple_item_json(repo: Path, run_cli: RunCli, tmp_path: Path) -> None:
    item = tmp_path / "item.json"
    item.write_text(json.dumps({"repo": "acme/WMS", "kind": "issues", "number": 12,
                                "title": "Scanner crash", "watch": "wms-assigned"}))  # fmt: skip
    proc = run_cli("route", "test", "--item", str(item), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert 'Item: issues acme/WMS#12 "Scanner crash"' in proc.stdout
    assert "Recipients: wms-coder" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["route", "test"], "needs an item"),
        (["route", "test", "--item", "missing.json"], "no such file"),
        (["route", "test", "--kind", "prs"], "invalid --kind 'prs'"),
        (["route", "test", "--repo", "a"], "invalid --repo 'a': expected owner/name"),
        (["route", "test", "--repo", "a/b/c", "--kind", "issues"], "invalid --repo 'a/b/c'"),
    ],
)
def test_route_test_bad_inputs(repo: Path, run_cli: RunCli, args: list[str], needle: str) -> None:
    proc = run_cli(*args, cwd=repo)
    assert proc.returncode == 1
    assert needle in one_error_line(proc)


def test_route_test_rejects_non_json(repo: Path, run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    proc = run_cli("route", "test", "--item", str(bad), cwd=repo)
    assert proc.returncode == 1
    assert "not JSON" in one_error_line(proc)


def test_route_test_in_the_readme_form_derives_the_watch(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("route", "test", "--repo", "acme/WMS", "--kind", "issues",
                   "--label", "needs-human", "--json", cwd=repo)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["fetched_by"] == ["wms-assigned"]  # the pulls watch never sees issues
    assert report["recipients"] == ["wms-coder"]
    assert report["deliveries"] == [{"agent": "wms-coder", "watch": "wms-assigned", "route": 1}]
    text = run_cli("route", "test", "--repo", "acme/WMS", "--kind", "issues", cwd=repo).stdout
    assert "✓ watch wms-assigned fetches it" in text and "@me assumed to be you" in text
    assert "✗ watch wms-prs does not fetch it: a pulls watch never sees issues" in text
    assert "✓ route #1 → wms-coder: matches (via watch wms-assigned)" in text
    assert "  wms-coder: via watch wms-assigned, route #1" in text


def test_route_test_an_item_no_watch_fetches_has_no_recipient(repo: Path, run_cli: RunCli) -> None:
    proc = run_cli("route", "test", "--repo", "other/repo", "--kind", "pulls", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "✗ watch wms-prs does not fetch it: it watches acme/WMS, the item is in other/repo" in (
        proc.stdout
    )
    assert "! no watch fetches this item, so the router never delivers it" in proc.stdout
    assert proc.stdout.strip().endswith("Recipients: (none)")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--watch", "nosuch", "--repo", "acme/WMS", "--kind", "issues"],
         "no watch named 'nosuch' (known: wms-assigned, wms-prs)"),
        (["--watch", "wms-prs", "--kind", "issues", "--repo", "other/repo"],
         "watch 'wms-prs' cannot see issues other/repo#0: a pulls watch never sees issues; "
         "it watches acme/WMS, the item is in other/repo"),
        (["--watch", "wms-prs", "--kind", "pulls", "--repo", "other/repo"],
         "watch 'wms-prs' cannot see pulls other/repo#0: it watches acme/WMS"),
        (["--watch", "wms-prs", "--kind", "pulls", "--repo", "acme/WMS", "--state", "closed"],
         "its filter '' does not keep the item"),
    ],
)  # fmt: skip
def test_route_test_watch_must_exist_and_see_the_item(
    repo: Path, run_cli: RunCli, args: list[str], needle: str
) -> None:
    proc = run_cli("route", "test", *args, cwd=repo)
    assert proc.returncode == 1
    assert needle in one_error_line(proc)
