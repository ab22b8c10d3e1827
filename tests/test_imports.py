"""Modules by dotted name, asked of the finders without importing anything
(``compat_plugin._imports``): whether a name has become importable, and which file importing a
module would read.

Every module here is a real file found by the real import system; the finders are the
interpreter's own, plus the few a test adds to ``sys.meta_path`` on purpose.
"""

from __future__ import annotations

import importlib
import importlib.abc
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from compat_plugin._imports import importable, would_read

from .conftest import PluginTree, ProvidingFinder, plugin_source

# -- whether a name has become importable, without importing it ------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("json", True),
        ("json.decoder", True),
        ("email.mime.text", True),
        ("compat_plugin_test_nowhere", False),
        ("json.no_such_submodule", False),
        ("compat_plugin_test_nowhere.sub", False),
        # json.decoder is a module, not a package: nothing can be below it.
        ("json.decoder.anything", False),
    ],
)
def test_importable_top_level_and_dotted_names(name: str, expected: bool) -> None:
    assert importable(name) is expected


def test_importable_imports_nothing(tree: PluginTree) -> None:
    tree.plugin("a", plugin_source("a"))
    assert importable(f"{tree.plugins_name}.a")
    assert not importable(f"{tree.plugins_name}.b")
    assert not [name for name in sys.modules if name.split(".")[0] == tree.name]


def test_importable_namespace_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"compat_plugin_test_ns_{tmp_path.name}".replace("-", "_")
    (tmp_path / name).mkdir()
    (tmp_path / name / "mod.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importable(name)
    assert importable(f"{name}.mod")
    assert not importable(f"{name}.absent")
    assert not importable(f"{name}.mod.below")
    assert name not in sys.modules


def test_importable_below_a_namespace_package_that_is_not_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An optional dependency in a nested namespace package (``google.cloud.storage``, say)
    is seen once installed, though neither namespace package has been imported."""
    name = f"compat_plugin_test_nested_{tmp_path.name}".replace("-", "_")
    first, second = tmp_path / "first", tmp_path / "second"
    (first / name / "inner").mkdir(parents=True)
    (second / name / "inner" / "deeper").mkdir(parents=True)
    (second / name / "inner" / "deeper" / "feature.py").write_text("")
    (first / name / "inner" / "regular").mkdir()
    (first / name / "inner" / "regular" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    assert importable(f"{name}.inner")
    assert importable(f"{name}.inner.deeper.feature")
    assert importable(f"{name}.inner.regular")
    assert not importable(f"{name}.inner.deeper.absent")
    assert not importable(f"{name}.inner.absent.feature")
    assert not [module for module in sys.modules if module.startswith(name)]
    importlib.import_module(f"{name}.inner.deeper.feature")
    assert importable(f"{name}.inner.deeper.feature")


def test_a_blocked_name_is_not_importable(
    tree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sys.modules[name] = None`` makes ``import name`` fail, whatever is on disk."""
    tree.plugin("a", plugin_source("a"))
    assert importable("json.decoder")
    monkeypatch.setitem(sys.modules, "json.decoder", None)
    assert not importable("json.decoder")
    assert importable(f"{tree.plugins_name}.a")
    monkeypatch.setitem(sys.modules, tree.plugins_name, None)
    assert not importable(f"{tree.plugins_name}.a")


def test_an_imported_parent_is_searched_through_its_path(
    tree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below an imported package, its ``__path__`` (which a plugin package extends) is
    searched; below one not imported, the locations its spec gives."""
    second = tmp_path / "second"
    (second / tree.name / "plugins").mkdir(parents=True)
    (second / tree.name / "plugins" / "elsewhere.py").write_text("")
    monkeypatch.syspath_prepend(str(second))
    assert not importable(f"{tree.plugins_name}.elsewhere")
    tree.package()
    assert importable(f"{tree.plugins_name}.elsewhere")


def test_a_plain_module_has_nothing_below_it(tree: PluginTree) -> None:
    tree.write("plainmodule.py", "")
    assert importable(f"{tree.name}.plainmodule")
    assert not importable(f"{tree.name}.plainmodule.sub")
    importlib.import_module(f"{tree.name}.plainmodule")
    assert not importable(f"{tree.name}.plainmodule.sub")


class _Raises(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        raise RuntimeError("a broken finder")


class _Legacy:
    """A finder of the old protocol (find_module only), which the import system skips."""

    def find_module(self, fullname: str, path: object = None) -> None:  # pragma: no cover
        raise AssertionError("never asked")


def test_a_new_finder_can_make_a_name_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "compat_plugin_test_virtual"
    assert not importable(name)
    monkeypatch.setattr(sys, "meta_path", [_Raises(), _Legacy(), *sys.meta_path])
    assert not importable(name)
    sys.meta_path.append(ProvidingFinder(name))
    assert importable(name)
    assert name not in sys.modules
    assert importable("json")  # a finder that raises hides nothing behind it


# -- which file importing a module would read ----------------------------------------------------

_ELSEWHERE = os.path.join(os.sep, "compat-plugin-test-elsewhere", "mod.py")

# What ``would_read`` says of a module, asked of one file and of a file that is nowhere.
READS_IT = (True, False)
READS_NOTHING_OR_ANOTHER = (False, False)
CANNOT_TELL = (True, True)


def told(name: str, path: object = _ELSEWHERE) -> tuple[bool, bool]:
    return would_read(name, str(path)), would_read(name, _ELSEWHERE)


def test_the_file_of_a_module_not_imported_is_the_one_its_finder_names(tree: PluginTree) -> None:
    source = tree.plugin("a", plugin_source("a"))
    assert told(f"{tree.plugins_name}.a", source) == READS_IT
    assert not [name for name in sys.modules if name.split(".")[0] == tree.name]


def test_nothing_is_read_where_no_finder_would_find_the_module(
    tree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the search is complete: on ``sys.path``, below an imported package, below a
    namespace package, below a plain module, or a name blocked in ``sys.modules``."""
    tree.write("plainmodule.py", "")
    spaced = tmp_path / "spaced"
    name = f"compat_plugin_test_spaced_{tmp_path.name}".replace("-", "_")
    (spaced / name).mkdir(parents=True)
    (spaced / name / "mod.py").write_text("")
    monkeypatch.syspath_prepend(str(spaced))
    tree.package()
    importlib.import_module(f"{tree.name}.plainmodule")  # not a package, once it has run
    monkeypatch.setitem(sys.modules, "compat_plugin_test_blocked", None)
    for absent in ("compat_plugin_test_nowhere", f"{tree.plugins_name}.absent",
                   f"{name}.absent", f"{tree.name}.plainmodule.sub",
                   "compat_plugin_test_blocked"):
        assert told(absent) == READS_NOTHING_OR_ANOTHER, absent
    assert told(f"{name}.mod", spaced / name / "mod.py") == READS_IT


def test_below_a_package_not_imported_a_module_not_found_cannot_be_told(
    tree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running the package's ``__init__`` could extend its ``__path__``; and where a finder
    fails, what it would have found is unknown."""
    assert told(f"{tree.plugins_name}.absent") == CANNOT_TELL
    assert tree.name not in sys.modules
    monkeypatch.setattr(sys, "meta_path", [_Raises(), *sys.meta_path])
    assert told("compat_plugin_test_nowhere") == CANNOT_TELL


def test_below_a_plain_module_what_is_imported_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``import plain.sub`` finds ``plain.sub`` in ``sys.modules``, put there by ``plain``."""
    plain, sub = ModuleType("compat_plugin_test_plain"), ModuleType("compat_plugin_test_plain.sub")
    sub.__file__ = str(tmp_path / "sub.py")
    monkeypatch.setitem(sys.modules, plain.__name__, plain)
    monkeypatch.setitem(sys.modules, sub.__name__, sub)
    assert told(sub.__name__, sub.__file__) == READS_IT
    assert told(f"{plain.__name__}.other") == READS_NOTHING_OR_ANOTHER


def test_below_a_namespace_portion_of_a_package_not_imported_nothing_is_certain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portion's locations come from a package whose ``__init__`` (pkgutil's) has not run."""
    name = f"compat_plugin_test_extended_{tmp_path.name}".replace("-", "_")
    extend = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
    for entry in ("one", "two"):
        (tmp_path / entry / name / "inner").mkdir(parents=True)
        (tmp_path / entry / name / "__init__.py").write_text(extend)
        monkeypatch.syspath_prepend(str(tmp_path / entry))
    (tmp_path / "one" / name / "inner" / "mod.py").write_text("")
    assert told(f"{name}.inner.mod") == CANNOT_TELL
    importlib.import_module(name)  # now its __path__ holds both portions
    assert told(f"{name}.inner.mod", tmp_path / "one" / name / "inner" / "mod.py") == READS_IT
    assert told(f"{name}.inner.absent") == READS_NOTHING_OR_ANOTHER


def test_below_a_plain_module_not_imported_yet_nothing_is_certain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its code may make it a package (``six`` sets ``__path__``) when it runs."""
    name = f"compat_plugin_test_selfmade_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(f"__path__ = [{str(tmp_path / 'inside')!r}]\n")
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "child.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert told(f"{name}.child") == CANNOT_TELL
    importlib.import_module(name)
    assert told(f"{name}.child", tmp_path / "inside" / "child.py") == READS_IT


class _FindModuleOnly:
    """A finder of the protocol older than ``find_spec``, which Python asks before 3.12."""

    def find_module(self, fullname: str, path: object = None) -> None:
        return None


def test_a_finder_of_the_older_protocol_leaves_nothing_certain_where_it_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"compat_plugin_test_behind_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [_FindModuleOnly(), *sys.meta_path])
    asked = sys.version_info < (3, 12)
    assert told("compat_plugin_test_nowhere") == (
        CANNOT_TELL if asked else READS_NOTHING_OR_ANOTHER)
    # Asked first, it could have found the module elsewhere.
    assert told(name, tmp_path / f"{name}.py") == (CANNOT_TELL if asked else READS_IT)
    assert importable(name)


class _PathEntryFinderOfModules:
    """A path entry's finder of the protocol older than ``find_spec``: ``find_module`` only."""

    def __init__(self, entry: str) -> None:
        if not entry.endswith("compat-plugin-test-old-entry"):
            raise ImportError(entry)

    def find_module(self, fullname: str) -> importlib.abc.Loader | None:
        return _Empty() if fullname == "compat_plugin_test_old_entry_mod" else None


class _Empty(importlib.abc.Loader):
    def create_module(self, spec: object) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        return None


def test_a_path_entry_finder_of_the_older_protocol_is_asked_as_import_asks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "path_hooks", [_PathEntryFinderOfModules, *sys.path_hooks])
    monkeypatch.syspath_prepend("/compat-plugin-test-old-entry")
    asked = sys.version_info < (3, 12)
    assert importable("compat_plugin_test_old_entry_mod") is asked
    assert not importable("compat_plugin_test_old_entry_other")


def test_an_imported_module_answers_for_itself(tree: PluginTree, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Once imported, a module is read from where it was, whatever came ahead of it since."""
    tree.write("helper.py", "")
    module = importlib.import_module(f"{tree.name}.helper")
    ahead = tmp_path / "ahead"
    (ahead / tree.name).mkdir(parents=True)
    (ahead / tree.name / "__init__.py").write_text("")
    (ahead / tree.name / "helper.py").write_text("")
    monkeypatch.syspath_prepend(str(ahead))
    assert told(f"{tree.name}.helper", module.__file__) == READS_IT


def test_a_working_copy_ahead_on_sys_path_is_the_file_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"compat_plugin_test_copy_{tmp_path.name}".replace("-", "_")
    installed, working = tmp_path / "installed", tmp_path / "working"
    for root in (installed, working):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "mod.py").write_text("")
    monkeypatch.syspath_prepend(str(installed))
    assert told(f"{name}.mod", installed / name / "mod.py") == READS_IT
    monkeypatch.syspath_prepend(str(working))
    assert told(f"{name}.mod", working / name / "mod.py") == READS_IT
    assert name not in sys.modules


class _Strict:
    """A finder that wants all three arguments, as the import system passes them."""

    def find_spec(self, name: str, path: object, target: object) -> None:
        return None


def test_finders_are_asked_as_the_import_system_asks_them(
    tree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finder that takes three arguments hides nothing behind it; one that raises hides
    nothing from ``importable``, but what it would have found is not known."""
    source = tree.plugin("a", plugin_source("a"))
    monkeypatch.setattr(sys, "meta_path", [_Strict(), *sys.meta_path])
    assert told(f"{tree.plugins_name}.a", source) == READS_IT
    sys.meta_path.insert(1, _Raises())
    assert told(f"{tree.plugins_name}.a", source) == CANNOT_TELL
    assert importable(f"{tree.plugins_name}.a")
    sys.meta_path.insert(0, ProvidingFinder("compat_plugin_test_virtual_file"))
    assert importable("compat_plugin_test_virtual_file")
    assert told("compat_plugin_test_virtual_file") == CANNOT_TELL  # found, but no file


def test_modules_in_a_zip_archive_are_found_below_their_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As zipimport serves them -- on Python 3.9 a finder of the older protocol."""
    name = f"compat_plugin_test_zipped_{tmp_path.name}".replace("-", "_")
    archive = tmp_path / "modules.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{name}/mod.py", "")
    monkeypatch.syspath_prepend(str(archive))
    inside = os.path.join(archive, name, "mod.py")
    assert importable(f"{name}.mod")
    assert not importable(f"{name}.absent")
    assert told(f"{name}.mod", inside) == READS_IT
    importlib.import_module(name)
    assert (importable(f"{name}.mod"), told(f"{name}.mod", inside)) == (True, READS_IT)
    assert f"{name}.mod" not in sys.modules


def test_a_package_whose_path_cannot_be_read_has_nothing_below_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    odd = ModuleType("compat_plugin_test_odd")
    odd.__path__ = 5  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, odd.__name__, odd)
    assert not importable(f"{odd.__name__}.sub")
    assert told(f"{odd.__name__}.sub") == CANNOT_TELL


def test_namespace_packages_in_a_zip_archive_are_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"compat_plugin_test_zipped_ns_{tmp_path.name}".replace("-", "_")
    archive = tmp_path / "namespaces.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # with its directories, as zipimport needs
        for member in (f"{name}/", f"{name}/inner/", f"{name}/inner/mod.py"):
            zf.writestr(member, "")
    monkeypatch.syspath_prepend(str(archive))
    assert importable(f"{name}.inner.mod")
    assert told(f"{name}.inner.mod", os.path.join(archive, name, "inner", "mod.py")) == READS_IT
    assert not importable(f"{name}.inner.absent")
    assert name not in sys.modules

