"""docs/plugins.md and PluginApi describe the same contract: pinned in both directions."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from relayfleet.runner.plugin_api import PUBLIC_API, PluginApi

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def documented() -> set[str]:
    heads = re.findall(r"^### `(?:await |@)?api\.(\w+)", DOC.read_text(), flags=re.M)
    return set(heads)


def test_every_public_attribute_is_documented_and_nothing_else() -> None:
    assert documented() == set(PUBLIC_API)


def test_every_documented_attribute_exists_on_the_api() -> None:
    api = PluginApi(
        name="p",
        agent="a",
        config={},
        agent_dir=Path("."),
        state_dir=Path("."),
        inbox=Path("inbox.jsonl"),
        log=logging.getLogger("t"),
        on_crash=lambda *_: None,
    )
    public = {n for n in set(vars(api)) | set(dir(PluginApi)) if not n.startswith("_")}
    # `tools` and `tasks` are the host's bookkeeping, not the plugin contract.
    assert public - {"tools", "tasks"} == set(PUBLIC_API)
    for name in documented():
        assert hasattr(api, name), name
