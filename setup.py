"""Build hook: a wheel carries the bundled plugins inside the package.

The checkout keeps them in `plugins/` (next to `relayfleet/`), where an editable install finds
them; a wheel has no such sibling, so the build copies them to `relayfleet/bundled_plugins/`,
which `relayfleet.core.paths.bundled_plugins_dir()` prefers when it exists. Everything else is
declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithPlugins(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable: the package runs from the checkout, plugins/ and all
        shutil.copytree(
            HERE / "plugins",
            Path(self.build_lib) / "relayfleet" / "bundled_plugins",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


setup(cmdclass={"build_py": BuildWithPlugins})
