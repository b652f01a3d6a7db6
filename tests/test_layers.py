"""The layer rule of ARCHITECTURE §2, read from the source: every `import` of every module.

cli -> (fleet, router, runner, backends, gateway) -> core. router, runner, backends and gateway
never import one another (from fleet they take only the model), and nothing below the CLI imports
`cli`. `up` (the `gh fleet up` orchestrator) and `demo` compose the layers for the CLI; the fakes
stand alone. Imports under `if TYPE_CHECKING:` and inside functions count too: a lazy import is
still an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "relayfleet"
PEERS = ("router", "runner", "backends", "gateway")

# layer -> the layers (or single modules) it may import, besides itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": (),
    "fakes": (),
    "fleet": ("core",),
    **{peer: ("core", "fleet.model") for peer in PEERS},
    "up": ("core", "fleet", *PEERS),
    "demo": ("core", "fleet", "fakes", "up", *PEERS),
    "cli": ("core", "fleet", "fakes", "up", "demo", *PEERS),
    "": ("cli",),  # relayfleet/__init__.py, relayfleet/__main__.py (`python -m relayfleet`)
}

# (importing module, imported module): each a deliberate, explained edge.
EXCEPTIONS = {
    # The runner process's composition root wires the local backend's credential resolver in,
    # so the runner layer itself never imports backends.
    ("runner.__main__", "backends.local"),
    # ... and the inbox API and backends a runner reaches the rest of the fleet through.
    ("runner.__main__", "backends.reach"),
    # run_agent is the runner process's entry point: it loads the fleet it was started for.
    ("runner.supervisor", "fleet.load"),
    # `python -m relayfleet.runner.workspace` (remove-agent's check on an ssh host) is one too.
    ("runner.workspace", "fleet.load"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every `relayfleet.*` module `path` imports, without the `relayfleet.` prefix."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from relayfleet import cli` names a module; `from relayfleet import __version__`
            # names the package itself.
            if node.module == "relayfleet":
                names = [f"relayfleet.{a.name}" for a in node.names if a.name != "__version__"]
            else:
                names = [node.module]
        else:
            assert not isinstance(node, ast.ImportFrom), f"{path}: relative import"
            continue
        found.update(n.removeprefix("relayfleet.") for n in names if n.startswith("relayfleet."))
    return found


def _layer(module: str) -> str:
    return module.split(".")[0] if "." in module or module in ALLOWED else ""


def _allowed(src: str, target: str) -> bool:
    layer = _layer(src)
    if _layer(target) == layer or (src, target) in EXCEPTIONS:
        return True
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[layer])


def edges() -> list[tuple[str, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _module(path)
        out += [(src, target) for target in sorted(_imports(path))]
    return out


def test_every_layer_is_known() -> None:
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert layers <= set(ALLOWED), f"add the new layer to ALLOWED: {layers - set(ALLOWED)}"


def test_no_import_crosses_the_layers() -> None:
    forbidden = [f"{src} -> {target}" for src, target in edges() if not _allowed(src, target)]
    assert forbidden == []


def test_the_exceptions_are_still_needed() -> None:
    assert set(edges()) >= EXCEPTIONS, "drop exceptions for edges that are gone"


def test_the_walk_sees_a_forbidden_edge(tmp_path: Path) -> None:
    """The checker itself: a peer importing a peer, and core importing the CLI, are caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from relayfleet.router.github import x\n")
    assert _imports(bad) == {"router.github"}
    assert not _allowed("runner.tools", "router.github")
    assert not _allowed("core.paths", "cli.context")
    assert not _allowed("backends.local", "fleet.load")
    assert _allowed("backends.local", "fleet.model")
    assert _allowed("cli.main", "router.github")
