"""Fixtures that build real plugin packages on disk and run real interpreters."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from compat_plugin import _resolver

_serial = itertools.count()

INTERFACES = """
from zope.interface import Interface, Attribute

class ITestPlugin(Interface):
    "A test interface."

class ITestPlugin2(Interface):
    "Another, unrelated, test interface."

class IDerived(ITestPlugin):
    "Extends ITestPlugin."

class INobody(Interface):
    "Provided by no plugin."
"""

PLUGINS_INIT = """
from compat_plugin import pluginPackagePaths
__path__.extend(pluginPackagePaths(__name__))
"""


class PluginTree:
    """A package ``<name>`` with ``<name>.ifaces`` and a plugin package ``<name>.plugins``.

    Files are real; the tree's root is put on ``sys.path`` for the test and every module of the
    tree is removed from ``sys.modules`` afterwards.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.top = root / name
        self.plugins_dir = self.top / "plugins"
        self.write("__init__.py", "")
        self.write("ifaces.py", INTERFACES)
        self.write("plugins/__init__.py", PLUGINS_INIT)

    @property
    def plugins_name(self) -> str:
        return f"{self.name}.plugins"

    def write(self, relative: str, text: str) -> Path:
        path = self.top / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).format(pkg=self.name), encoding="utf-8")
        return path

    def plugin(self, name: str, text: str) -> Path:
        """Write ``plugins/<name>.py``; ``{pkg}`` in ``text`` is the tree's package name."""
        return self.write(f"plugins/{name}.py", text)

    def package(self) -> ModuleType:
        importlib.invalidate_caches()
        return importlib.import_module(self.plugins_name)

    def ifaces(self) -> ModuleType:
        return importlib.import_module(f"{self.name}.ifaces")

    def purge(self) -> None:
        """Forget the tree's imported modules and the resolver's memory, as a new process would."""
        for module in [m for m in sys.modules if m == self.name or m.startswith(self.name + ".")]:
            del sys.modules[module]
        _resolver.forget_state()
        importlib.invalidate_caches()

    def cache_files(self) -> list[Path]:
        return sorted(self.plugins_dir.glob("__pycache__/compat_plugin.*.json"))

    def cache_document(self) -> dict[str, object]:
        """The header (first line) of the directory's one cache file."""
        (path,) = self.cache_files()
        document: dict[str, object] = json.loads(path.read_text().split("\n", 1)[0])
        return document


@pytest.fixture(autouse=True)
def _private_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own per-user cache and a fresh resolver memory."""
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(tmp_path_factory.mktemp("usercache")))
    monkeypatch.delenv("COMPAT_PLUGIN_NO_CACHE_WRITE", raising=False)
    _resolver.forget_state()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginTree]:
    name = f"cpt{os.getpid()}_{next(_serial)}"
    made = PluginTree(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield made
    made.purge()


def run_python(
    code: str,
    *,
    path: list[str] | None = None,
    env: dict[str, str] | None = None,
    user: int | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``path`` in front of ``PYTHONPATH``."""
    environment = dict(os.environ)
    environment.update(env or {})
    pythonpath = [*(path or []), *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        user=user,
        timeout=300,
    )
    if check and result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        raise AssertionError(f"child failed ({result.returncode}):\n{output}")
    return result
