"""A small hand-written fleet (with comments) that tests write into a repo."""

from __future__ import annotations

from pathlib import Path

FLEET_TOML = """\
# the demo fleet
[fleet]
name = "demo"

[defaults]
model = "sonnet"
"""

ROUTES_TOML = """\
# The gate.

# --- watches ---
[[watch]]
name = "wms-assigned"   # issues for the coder
kind = "issues"
repo = "acme/WMS"
filter = "--search assignee:@me --state open"

[[watch]]
name = "wms-prs"
kind = "pulls"
repo = "acme/WMS"

# --- routes ---

# the coder gets its assigned issues
[[route]]
to = ["wms-coder"]
[route.match]
watch = "wms-assigned"

# the reviewer gets open PRs
[[route]]
to = ["wms-reviewer"]
[route.match]
watch = "wms-prs"
"""


def agent_toml(name: str, role: str, port: int, **extra: str) -> str:
    lines = [f'name = "{name}"', f'role = "{role}"', 'repo = "acme/WMS"', f"port = {port}"]
    if extra:
        lines.append("")
        lines.append("[runtime]")
        lines += [f'{k} = "{v}"' for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_fleet(root: Path) -> Path:
    """Write `.fleet/` under `root` (no commit); returns the `.fleet` directory."""
    fleet = root / ".fleet"
    (fleet / "agents").mkdir(parents=True, exist_ok=True)
    (fleet / "fleet.toml").write_text(FLEET_TOML)
    (fleet / "routes.toml").write_text(ROUTES_TOML)
    (fleet / ".gitignore").write_text("state/\n")
    for name, role, port in (("wms-coder", "coder", 8801), ("wms-reviewer", "reviewer", 8802)):
        d = fleet / "agents" / name
        d.mkdir(exist_ok=True)
        (d / "agent.toml").write_text(agent_toml(name, role, port))
        (d / "CLAUDE.md").write_text(f"# {name}\n")
    return fleet
