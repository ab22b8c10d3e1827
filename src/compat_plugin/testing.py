"""Pytest fixtures for testing plugins and hosts with real packages and real distributions.

An opt-in pytest plugin: enable it with ``pytest -p compat_plugin.testing``, or with
``pytest_plugins = ["compat_plugin.testing"]`` in a ``conftest.py``.  It is never loaded into
other pytest runs of an environment.  While enabled, every test runs with its own per-user
plugin cache (a temporary ``COMPAT_PLUGIN_CACHE_DIR``) and a fresh compat_plugin process state,
and gets back afterwards the ``sys.path``, ``sys.meta_path`` and import caches it started with,
without the modules the fixtures' packages and distributions added to ``sys.modules``.

Fixtures:

``plugin_package``
    ``plugin_package("acme")`` writes a package ``acme`` with a plugin package
    ``acme.plugins`` on a temporary ``sys.path`` entry; ``.module(name, source)`` adds a plugin
    module, ``.package()`` imports the plugin package.
``make_distribution``
    ``make_distribution("acme-plates", files={...}, entry_points={group: {name: value}})``
    builds a real wheel with pip and setuptools (no network, no build isolation) and installs it
    with pip onto a temporary ``sys.path`` entry, which it returns.

Helpers: :func:`expect_plugins` asserts what ``getPlugins`` yields and what ``discover``
reports; :func:`run_python` runs code in a fresh interpreter, as a new process would start.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from site import getsitepackages, getusersitepackages
from types import ModuleType
from typing import Any, cast

import pytest
from zope.interface.interface import InterfaceClass

from ._children import captured
from ._wheels import build_wheel, build_wheels, install_wheels, pip, write_project

__all__ = [
    "PluginPackage",
    "build_wheel",
    "build_wheels",
    "expect_plugins",
    "install_wheels",
    "make_distribution",
    "pip",
    "plugin_package",
    "run_python",
    "write_project",
]

PLUGINS_INIT = (
    '"""Plugin package: every sys.path entry may add modules to it."""\n'
    "from compat_plugin import pluginPackagePaths\n"
    "__path__.extend(pluginPackagePaths(__name__))\n"
)

_serial = itertools.count()


# -- processes -------------------------------------------------------------------------------


def run_python(
    code: str,
    *,
    path: Sequence[str | os.PathLike[str]] | None = None,
    env: Mapping[str, str] | None = None,
    user: int | None = None,
    check: bool = True,
    timeout: float = 300,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh interpreter, with ``path`` ahead of ``PYTHONPATH``
    and ``args`` as its ``sys.argv[1:]``.

    The child imports the same compat_plugin as this process: its directory goes ahead of
    ``PYTHONPATH``, unless it is a site directory (an installed compat_plugin), which the child
    reads anyway after the standard library.  ``user`` runs it as another user (this process
    must be root, and what the child reads open to that user: pytest's ``tmp_path`` is not).
    Raises AssertionError with the child's output if it fails and ``check`` is true.
    """
    environment = dict(os.environ)
    environment.update(env or {})
    library = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Installed, compat_plugin is in a site directory the child reads anyway: on PYTHONPATH,
    # that would come before the standard library.
    sites = {os.path.abspath(d) for d in (*getsitepackages(), getusersitepackages())}
    pythonpath = [*(os.fspath(entry) for entry in path or ()),
                  *([] if library in sites else [library]),
                  *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result = captured(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=environment, user=user, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"child failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


# -- plugin packages --------------------------------------------------------------------------


class PluginPackage:
    """A package ``name`` with a plugin package ``name.plugins``, written on disk under
    ``root`` (a ``sys.path`` entry).  ``{pkg}`` in written sources stands for ``name``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.plugins_name = f"{name}.plugins"
        self.directory = root / name / "plugins"
        self.write("__init__.py", "")
        self.write("plugins/__init__.py", PLUGINS_INIT)

    def write(self, relative: str, source: str) -> Path:
        """Write ``source`` (dedented) to ``relative`` inside the package."""
        path = self.root / self.name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).replace("{pkg}", self.name), encoding="utf-8")
        return path

    def module(self, name: str, source: str) -> Path:
        """Write the plugin module ``plugins/<name>.py``."""
        return self.write(f"plugins/{name}.py", source)

    def package(self) -> ModuleType:
        """The plugin package, imported (afresh after :meth:`forget`)."""
        importlib.invalidate_caches()
        return importlib.import_module(self.plugins_name)

    def forget(self) -> None:
        """Drop the package's modules and compat_plugin's process state, as a new process
        would start (the caches on disk stay)."""
        _forget_modules(lambda name: name == self.name or name.startswith(f"{self.name}."))
        _forget_state()


@pytest.fixture
def plugin_package(tmp_path: Path) -> Callable[..., PluginPackage]:
    """``plugin_package(name=None)``: a new :class:`PluginPackage` on a temporary ``sys.path``
    entry (a unique name if none is given)."""

    def make(name: str | None = None) -> PluginPackage:
        name = name or f"plugintest{os.getpid()}_{next(_serial)}"
        root = tmp_path / f"packages-{name}"
        root.mkdir()
        sys.path.insert(0, str(root))
        _ROOTS.append(str(root))
        return PluginPackage(root, name)

    return make


# -- distributions ------------------------------------------------------------------------------


@pytest.fixture
def make_distribution(tmp_path: Path) -> Callable[..., Path]:
    """``make_distribution(name, files=..., entry_points=..., version=..., requires=...,
    site=None)``: build the distribution, install it into ``site`` (a new temporary
    directory if None), put that at the front of ``sys.path`` and return it."""
    def make(name: str, *, site: Path | None = None, **project: Any) -> Path:
        # A directory per build: one test may make one distribution twice, or two versions.
        wheel = build_wheel(name, tmp_path / f"build-{next(_serial)}", **project)
        target = site if site is not None else tmp_path / f"site-{next(_serial)}"
        install_wheels(target, wheel)
        if str(target) not in sys.path:
            sys.path.insert(0, str(target))
            _ROOTS.append(str(target))
        importlib.invalidate_caches()
        return target

    return make


# -- what a test gets back ----------------------------------------------------------------------

# The sys.path entries the fixtures made during the current test: modules loaded from them are
# dropped from sys.modules afterwards.
_ROOTS: list[str] = []


@pytest.fixture(autouse=True)
def _isolated_plugin_discovery(tmp_path_factory: pytest.TempPathFactory,
                               monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    cache = tmp_path_factory.mktemp("compat-plugin-cache")
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(cache))
    for variable in ("COMPAT_PLUGIN_NO_CACHE_READ", "COMPAT_PLUGIN_NO_CACHE_WRITE",
                     "COMPAT_PLUGIN_DISABLE"):
        monkeypatch.delenv(variable, raising=False)
    path, meta_path, importers = list(sys.path), list(sys.meta_path), dict(sys.path_importer_cache)
    indexes = _indexes_beside(path)
    _forget_state()
    try:
        yield
    finally:
        # A test's plugin package has a group of its own, whose index would otherwise stay
        # beside the environment's site-packages.
        for index in _indexes_beside(path) - indexes:
            with contextlib.suppress(OSError):
                os.remove(index)
        roots = tuple(root.rstrip(os.sep) + os.sep for root in _ROOTS)
        _ROOTS.clear()
        _forget_modules(lambda name: _loaded_from(sys.modules.get(name), roots))
        sys.path[:] = path
        sys.meta_path[:] = meta_path
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(importers)
        importlib.invalidate_caches()
        _forget_state()


def _indexes_beside(entries: list[str]) -> set[str]:
    """The entry-point indexes kept beside ``entries``."""
    from ._entrypoints import BESIDE_PREFIX
    from ._store import bytecode_directory

    found: set[str] = set()
    for entry in entries:
        directory = bytecode_directory(entry)
        try:
            names = os.listdir(directory)
        except (OSError, TypeError, ValueError):
            continue
        found.update(os.path.join(directory, name) for name in names
                     if name.startswith(BESIDE_PREFIX))
    return found


def _loaded_from(module: object, roots: tuple[str, ...]) -> bool:
    if not roots:
        return False
    places = [getattr(module, "__file__", None) or "", *getattr(module, "__path__", ())]
    return any(isinstance(p, str) and p.startswith(roots) for p in places)


def _forget_modules(doomed: Callable[[str], bool]) -> None:
    for name in [name for name in sys.modules if doomed(name)]:
        del sys.modules[name]


def _forget_state() -> None:
    from ._resolver import forget_state

    forget_state()


# -- assertions ---------------------------------------------------------------------------------


def expect_plugins(
    interface: InterfaceClass,
    package: ModuleType,
    expected: Sequence[str],
    *,
    errors: Sequence[str] | None = None,
    skipped: Sequence[str] | None = None,
) -> None:
    """Assert that ``getPlugins(interface, package)`` yields exactly the objects named by
    ``expected`` (``module:attribute``), in that order, and that ``discover`` reports them,
    with failures for exactly the targets ``errors`` and left-out candidates ``skipped`` (each
    checked when given).  The message names what is missing, extra, or out of order."""
    from ._api import discover, getPlugins, load

    found = discover(package, interface)
    problems = _differences("discover() plugins", [r.qualified_name for r in found.plugins],
                            expected)
    if errors is not None:
        problems += _differences("errors", [e.target for e in found.errors], errors)
    if skipped is not None:
        problems += _differences("skipped", [s.target for s in found.skipped], skipped)
    yielded = list(getPlugins(cast(Any, interface), package))
    loaded = list({id(value): value for value in map(load, found.plugins)}.values())
    if [id(v) for v in yielded] != [id(v) for v in loaded]:
        problems.append(f"getPlugins() yielded {yielded!r}, not the objects of {expected!r}")
    if problems:
        raise AssertionError("; ".join(problems))


def _differences(what: str, actual: list[str], expected: Sequence[str]) -> list[str]:
    if actual == list(expected):
        return []
    missing = [name for name in expected if name not in actual]
    extra = [name for name in actual if name not in expected]
    parts = [f"{what}: expected {list(expected)}, got {actual}"]
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    if not missing and not extra:
        parts.append("same names in another order")
    return [", ".join(parts)]
