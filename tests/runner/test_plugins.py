"""Plugin discovery, validation at load, isolation of failures, and tools reaching MCP."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from relayfleet.core.errors import PluginError
from relayfleet.core.paths import bundled_plugins_dir
from relayfleet.runner.plugins import PluginHost, discover, load_module, read_manifest


def write_plugin(base: Path, folder: str, code: str, manifest: dict | None = None) -> Path:
    d = base / folder
    d.mkdir(parents=True, exist_ok=True)
    m = {"name": folder, "version": "1.0", "description": "test"} if manifest is None else manifest
    (d / "plugin.json").write_text(json.dumps(m))
    (d / "plugin.py").write_text(code)
    return d


def host(tmp: Path, sections: dict | None = None) -> PluginHost:
    return PluginHost(
        agent="coder",
        config={"name": "coder", "role": "coder"},
        sections=sections or {},
        agent_dir=tmp / "agent",
        state_dir=tmp / "state",
        inbox=tmp / "state" / "inbox.jsonl",
        log=logging.getLogger("test.plugins"),
        reserved_tools=("ack_event",),
    )


GOOD = """
async def setup(api):
    @api.tool(name="where", description="where am I")
    def where() -> str:
        return f"{api.name}@{api.agent}:{api.config['plugin'].get('color')}"
"""


def test_bundled_plugins_are_discovered_and_load(tmp_path: Path) -> None:
    found, failures = discover([bundled_plugins_dir()])
    assert {"inbox", "_template"} <= set(found)
    assert failures == []
    h = host(tmp_path)
    asyncio.run(h.load(["inbox", "_template"], [bundled_plugins_dir()]))
    assert h.errors == []
    assert h.loaded == ["inbox", "_template"]
    assert {t.name for t in h.tools} == {"inbox_history", "reply_operator", "template_echo"}


def test_template_tool_works_with_its_documented_defaults(tmp_path: Path) -> None:
    h = host(tmp_path, {"_template": {"greeting": "hi"}})
    asyncio.run(h.load(["_template"], [bundled_plugins_dir()]))
    (echo,) = h.tools
    assert asyncio.run(echo.fn("there")) == "hi: there"


def test_fleet_local_plugin_wins_over_bundled_and_gets_its_section(tmp_path: Path) -> None:
    bundled, local = tmp_path / "bundled", tmp_path / "fleet-plugins"
    write_plugin(bundled, "paint", GOOD.replace("api.name", "'bundled'"))
    write_plugin(local, "paint", GOOD)
    h = host(tmp_path, {"paint": {"color": "blue"}})
    asyncio.run(h.load(["paint"], [bundled, local]))
    (tool,) = h.tools
    assert tool.fn() == "paint@coder:blue"
    assert (tmp_path / "state" / "plugins" / "paint").is_dir()


@pytest.mark.parametrize(
    ("code", "manifest", "message"),
    [
        ("x = 1\n", None, "has no `async def setup(api)`"),
        ("def setup(api):\n    pass\n", None, "setup must be `async def setup(api)`"),
        ("async def setup():\n    pass\n", None, "exactly one argument"),
        ("import no_such_module_xyz\n", None, "import failed: ModuleNotFoundError"),
        ("async def setup(api):\n    pass\n", {"version": "1"}, 'needs a non-empty string "name"'),
    ],
)
def test_invalid_plugins_raise_plugin_error_naming_the_plugin(
    tmp_path: Path, code: str, manifest: dict | None, message: str
) -> None:
    d = write_plugin(tmp_path, "broken", code, manifest)
    with pytest.raises(PluginError) as exc:
        load_module(read_manifest(d))
    assert "plugin broken" in str(exc.value)
    assert message in str(exc.value)


def test_bad_json_manifest_is_reported(tmp_path: Path) -> None:
    d = tmp_path / "garbled"
    d.mkdir()
    (d / "plugin.json").write_text("{not json")
    with pytest.raises(PluginError, match=r"plugin garbled: plugin\.json is not valid JSON"):
        read_manifest(d)


def test_broken_plugins_are_reported_and_the_rest_still_load(tmp_path: Path) -> None:
    base = tmp_path / "plugins"
    write_plugin(base, "good", GOOD)
    write_plugin(base, "nosetup", "x = 1\n")
    write_plugin(base, "raises", "async def setup(api):\n    raise RuntimeError('boom')\n")
    write_plugin(
        base,
        "clash",
        "async def setup(api):\n    api.tool(name='ack_event')(lambda: 1)\n",
    )
    h = host(tmp_path)
    asyncio.run(h.load(["nosetup", "raises", "good", "clash", "missing"], [base]))
    assert h.loaded == ["good"]
    by = {e.plugin: e for e in h.errors}
    assert by["nosetup"].stage == "load"
    assert by["raises"].stage == "setup" and "RuntimeError: boom" in by["raises"].message
    assert "already taken" in by["clash"].message
    assert "not found" in by["missing"].message


def test_a_crashing_spawned_task_is_reported_not_fatal(tmp_path: Path) -> None:
    base = tmp_path / "plugins"
    write_plugin(
        base,
        "flaky",
        "import asyncio\n"
        "async def setup(api):\n"
        "    async def work():\n"
        "        await asyncio.sleep(0)\n"
        "        raise ValueError('lost the connection')\n"
        "    api.spawn(work())\n"
        "    async def forever():\n"
        "        await asyncio.sleep(3600)\n"
        "    api.spawn(forever())\n",
    )

    async def main() -> PluginHost:
        h = host(tmp_path)
        await h.load(["flaky"], [base])
        for _ in range(50):
            if h.errors:
                break
            await asyncio.sleep(0.01)
        await h.stop()  # cancels `forever`
        return h

    h = asyncio.run(main())
    assert h.loaded == ["flaky"]
    assert [(e.plugin, e.stage) for e in h.errors] == [("flaky", "task")]
    assert "ValueError: lost the connection" in h.errors[0].message


def test_emit_appends_an_event_to_the_agents_inbox(tmp_path: Path) -> None:
    base = tmp_path / "plugins"
    write_plugin(
        base,
        "pinger",
        "async def setup(api):\n    await api.emit('[FROM pinger] ping', metadata={'n': 1})\n",
    )
    h = host(tmp_path)
    asyncio.run(h.load(["pinger"], [base]))
    (line,) = (tmp_path / "state" / "inbox.jsonl").read_text().splitlines()
    ev = json.loads(line)
    assert ev["source"] == "pinger"
    assert ev["body"] == "[FROM pinger] ping"
    assert ev["metadata"] == {"n": 1}
    assert ev["id"].startswith("evt_pinger_")


def test_inbox_plugin_history_and_reply(tmp_path: Path) -> None:
    from relayfleet.core.atomic import append_json, read_jsonl

    inbox = tmp_path / "state" / "inbox.jsonl"
    for i, src in enumerate(["github", "operator", "github"]):
        append_json(inbox, {"id": f"e{i}", "source": src, "body": f"body {i}"})
    h = host(tmp_path)
    asyncio.run(h.load(["inbox"], [bundled_plugins_dir()]))
    tools = {t.name: t.fn for t in h.tools}
    hist = asyncio.run(tools["inbox_history"](limit=2))
    assert [e["id"] for e in hist] == ["e1", "e2"]
    only_ops = asyncio.run(tools["inbox_history"](source="operator"))
    assert [e["id"] for e in only_ops] == ["e1"]
    assert asyncio.run(tools["reply_operator"]("done with e1")).startswith("sent (evt_")
    (reply,) = read_jsonl(tmp_path / "state" / "plugins" / "inbox" / "outbox.jsonl")
    assert reply["body"] == "done with e1" and reply["source"] == "coder"
