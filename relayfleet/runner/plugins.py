"""Plugin discovery, validation at load, and per-plugin failure isolation.

Plugins come from the bundled `plugins/` folder and the fleet's `.fleet/plugins/`; on a name
clash the fleet-local one wins (a fleet can patch a bundled plugin without forking relayfleet).
A broken plugin (bad `plugin.json`, import error, no `async def setup`, `setup` raising, a spawned
task crashing) is recorded in `PluginHost.errors`, logged, and shown by `gh fleet status`; the
runner and the session keep going.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import json
import logging
import sys
import time
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayfleet.core.errors import PluginError
from relayfleet.runner.plugin_api import PluginApi, PluginManifest, PluginTool

MANIFEST = "plugin.json"


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    stage: str  # "load" | "setup" | "task"
    message: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "stage": self.stage, "message": self.message, "at": self.at}


def read_manifest(folder: Path) -> PluginManifest:
    """Parse and check `plugin.json`; PluginError names the plugin (its folder) on any fault."""
    label = folder.name
    try:
        raw = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise PluginError(f"plugin {label}: no {MANIFEST} in {folder}") from None
    except ValueError as exc:
        raise PluginError(f"plugin {label}: {MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise PluginError(f"plugin {label}: {MANIFEST} must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PluginError(f'plugin {label}: {MANIFEST} needs a non-empty string "name"')
    entry = raw.get("entry") or raw.get("module") or "plugin.py"
    if not isinstance(entry, str):
        raise PluginError(f'plugin {name}: "entry" must be a file name')
    if not entry.endswith(".py"):
        entry = entry.replace(".", "/") + ".py"
    config = raw.get("config", {})
    if not isinstance(config, dict):
        raise PluginError(f'plugin {name}: "config" must be a table of defaults')
    return PluginManifest(
        name=name,
        version=str(raw.get("version", "0")),
        description=str(raw.get("description", "")),
        entry=entry,
        path=folder,
        config=config,
    )


def discover(dirs: Iterable[Path]) -> tuple[dict[str, PluginManifest], list[PluginFailure]]:
    """Every plugin in `dirs`; a later directory wins on a name clash (fleet-local last)."""
    found: dict[str, PluginManifest] = {}
    failures: list[PluginFailure] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for folder in sorted(p for p in d.iterdir() if p.is_dir()):
            if not (folder / MANIFEST).exists():
                continue
            try:
                m = read_manifest(folder)
            except PluginError as exc:
                failures.append(PluginFailure(folder.name, "load", str(exc), time.time()))
                continue
            found[m.name] = m
    return found, failures


def load_module(manifest: PluginManifest) -> types.ModuleType:
    """Import the entry module and check `setup` is an `async def` taking one argument."""
    name = manifest.name
    path = manifest.path / manifest.entry
    if not path.is_file():
        raise PluginError(f"plugin {name}: entry module {manifest.entry} not in {path.parent}")
    mod_name = "relayfleet_plugin_" + "".join(c if c.isalnum() else "_" for c in name)
    spec = importlib.util.spec_from_file_location(
        mod_name, path, submodule_search_locations=[str(manifest.path)]
    )
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {name}: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # so the plugin's own relative imports resolve
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise PluginError(f"plugin {name}: import failed: {type(exc).__name__}: {exc}") from exc
    setup = getattr(module, "setup", None)
    if setup is None:
        raise PluginError(f"plugin {name}: {manifest.entry} has no `async def setup(api)`")
    if not inspect.iscoroutinefunction(setup):
        raise PluginError(f"plugin {name}: setup must be `async def setup(api)`, not a plain def")
    try:
        inspect.signature(setup).bind(object())
    except TypeError:
        raise PluginError(f"plugin {name}: setup must take exactly one argument (api)") from None
    return module


class PluginHost:
    """Loads the plugins one agent enables and owns their tools and background tasks."""

    def __init__(
        self,
        *,
        agent: str,
        config: Mapping[str, Any],
        sections: Mapping[str, Mapping[str, Any]],
        agent_dir: Path,
        state_dir: Path,
        inbox: Path,
        log: logging.Logger,
        reserved_tools: Iterable[str] = (),
    ) -> None:
        self.agent = agent
        self.config = config
        self.sections = sections  # each plugin's own section from the agent's config
        self.agent_dir = agent_dir
        self.state_dir = state_dir
        self.inbox = inbox
        self.log = log
        self.reserved = set(reserved_tools)
        self.apis: dict[str, PluginApi] = {}
        self.loaded: list[str] = []
        self.errors: list[PluginFailure] = []

    def _fail(self, plugin: str, stage: str, message: str) -> None:
        self.errors.append(PluginFailure(plugin, stage, message, time.time()))
        self.log.error("plugin %s failed (%s): %s", plugin, stage, message)

    def _crashed(self, plugin: str, exc: BaseException) -> None:
        self._fail(plugin, "task", f"{type(exc).__name__}: {exc}")

    async def load(self, enabled: Iterable[str], search: Iterable[Path]) -> None:
        """Discover, import, and `setup` every enabled plugin, once, in the order enabled."""
        found, failures = discover(search)
        for f in failures:
            self._fail(f.plugin, f.stage, f.message)
        for name in dict.fromkeys(enabled):  # each once, even if listed twice
            manifest = found.get(name)
            if manifest is None:
                self._fail(name, "load", f"plugin {name}: not found (looked in bundled and .fleet)")
                continue
            await self.load_one(manifest)

    async def load_one(self, manifest: PluginManifest) -> PluginApi | None:
        name = manifest.name
        try:
            module = load_module(manifest)
        except PluginError as exc:
            self._fail(name, "load", str(exc))
            return None
        state_dir = self.state_dir / "plugins" / name
        state_dir.mkdir(parents=True, exist_ok=True)
        section = {**manifest.config, **dict(self.sections.get(name, {}))}
        api = PluginApi(
            name=name,
            agent=self.agent,
            config={**self.config, "plugin": section},
            agent_dir=self.agent_dir,
            state_dir=state_dir,
            inbox=self.inbox,
            log=self.log.getChild(f"plugin.{name}"),
            on_crash=self._crashed,
        )
        try:
            await module.setup(api)
        except Exception as exc:  # a plugin's fault stays the plugin's
            self._fail(name, "setup", f"{type(exc).__name__}: {exc}")
            for t in api.tasks:
                t.cancel()
            return None
        clash = [t.name for t in api.tools if t.name in self.reserved]
        if clash:
            self._fail(name, "load", f"plugin {name}: tool name(s) already taken: {clash}")
            for t in api.tasks:
                t.cancel()
            return None
        self.reserved.update(t.name for t in api.tools)
        self.apis[name] = api
        self.loaded.append(name)
        self.log.info("plugin %s %s loaded (%d tools)", name, manifest.version, len(api.tools))
        return api

    @property
    def tools(self) -> list[PluginTool]:
        return [t for api in self.apis.values() for t in api.tools]

    async def stop(self) -> None:
        tasks = [t for api in self.apis.values() for t in api.tasks if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, 2)
