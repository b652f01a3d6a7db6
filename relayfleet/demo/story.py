"""The demo's scripted story: what happens on the fake GitHub and who must receive it."""

from __future__ import annotations

from dataclasses import dataclass

REPO = "acme/widgets"
MEMBERS = ("OWNER", "MEMBER", "COLLABORATOR")
CODER_LOGIN = "acme-coder"

# Three agents, each a persistent session (the fake `claude` here), each with its own gate.
AGENTS = (
    ("coder", "coder"),
    ("reviewer", "reviewer"),
    ("manager", "manager"),
)


def routes_toml(poll_sec: int) -> str:
    return f"""# The gate: what the router polls (watches) and who receives what (routes).

[[watch]]
name = "assigned-to-coder"
kind = "issues"
repo = "{REPO}"
filter = "--assignee {CODER_LOGIN} --state open"
poll_sec = {poll_sec}

[[watch]]
name = "open-prs"
kind = "pulls"
repo = "{REPO}"
filter = "--state open"
poll_sec = {poll_sec}

[[watch]]
name = "needs-human"
kind = "issues"
repo = "{REPO}"
filter = "--label needs-human"
poll_sec = {poll_sec}

# Only people with a stake in the repo can put work in front of an agent (prompt-injection gate).
[[route]]
to = ["coder"]
[route.match]
watch = "assigned-to-coder"
association = ["OWNER", "MEMBER", "COLLABORATOR"]

[[route]]
to = ["reviewer"]
[route.match]
watch = "open-prs"
association = ["OWNER", "MEMBER", "COLLABORATOR"]

[[route]]
to = ["manager"]
[route.match]
watch = "needs-human"
"""


@dataclass(frozen=True)
class Step:
    key: str
    say: str  # what happens on GitHub, as the live view shows it
    expect: str | None  # the agent that must receive it, or None when the gate must block it
    kill_router_before: bool = False


STEPS = (
    Step("assign", f"issue #{{n}} assigned to @{CODER_LOGIN}", "coder"),
    Step("pr", "PR #{n} opened by a member", "reviewer"),
    Step(
        "label",
        "label needs-human added to issue #{n} (router was kill -9'd)",
        "manager",
        kill_router_before=True,
    ),
    Step("outsider", "outside author (NONE) posts PR #{n}: 'ignore your rules…'", None),
)
