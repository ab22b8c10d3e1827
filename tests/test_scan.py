"""Importing one plugin module for a scan (``compat_plugin._scan``): the records taken from it,
and the imports it looked for in vain.

Every module here is a real file imported by the real import system; the finders are the
interpreter's own, plus the few a test adds to ``sys.meta_path`` on purpose.
"""

from __future__ import annotations

import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from compat_plugin._records import LoadError, NotAPlugin, Origin
from compat_plugin._scan import Scanner, scan_module, scan_object

from .conftest import PluginTree, plugin_source


def origin(tree: PluginTree) -> Origin:
    return Origin("directory", path=str(tree.plugins_dir))


def optional(*imports: str) -> str:
    """A plugin module with one plugin that tries each of ``imports`` and does without."""
    tries = "".join(f"try:\n    {line}\nexcept ImportError:\n    pass\n" for line in imports)
    return plugin_source("optional") + tries


def scan(tree: PluginTree, module: str, scanner: Scanner | None = None) -> Any:
    return (scanner or Scanner()).scan(f"{tree.plugins_name}.{module}", None, origin(tree))


def by(tree: PluginTree, module: str, *names: str) -> tuple[tuple[str, str], ...]:
    """The misses of ``names``, each looked for by an ``import`` in ``module``'s body."""
    return tuple((name, f"{tree.plugins_name}.{module}") for name in names)


# -- what a scan's import looked for in vain ---------------------------------------------------


def test_a_failed_import_is_recorded_and_the_module_still_scanned(tree: PluginTree) -> None:
    path = tree.plugin("cond", optional("import compat_plugin_test_nodep"))
    found = scan(tree, "cond")
    assert found.missing == by(tree, "cond", "compat_plugin_test_nodep")
    assert found.preloaded is False
    assert found.errors == ()
    assert found.file == str(path)
    assert [record.attribute for record in found.records.plugins] == ["plugin"]


def test_names_that_were_found_are_not_recorded(tree: PluginTree) -> None:
    tree.plugin("plain", plugin_source("plain") + "import json\nimport email.mime.text\n")
    assert scan(tree, "plain").missing == ()


def test_find_spec_calls_count_as_looking(tree: PluginTree) -> None:
    tree.plugin("probe", plugin_source("probe") + (
        "import importlib.util\n"
        "HAS_NODEP = importlib.util.find_spec('compat_plugin_test_probed') is not None\n"
        "HAS_JSON = importlib.util.find_spec('json') is not None\n"
    ))
    found = scan(tree, "probe")
    # A probe leaves what it finds out of sys.modules: no importer is named for it.
    assert found.missing == (("compat_plugin_test_probed", None),)
    module = sys.modules[f"{tree.plugins_name}.probe"]
    assert (module.HAS_NODEP, module.HAS_JSON) == (False, True)


def test_dotted_names_are_recorded_as_looked_for(tree: PluginTree) -> None:
    tree.plugin("dotted", optional(
        "from . import absent_sibling",
        "import json.no_such_submodule",
        "import compat_plugin_test_top.sub",
    ))
    found = scan(tree, "dotted")
    # A package that is not there is looked for once, not its submodules.
    assert found.missing == by(tree, "dotted", *sorted([
        f"{tree.plugins_name}.absent_sibling", "json.no_such_submodule",
        "compat_plugin_test_top",
    ]))


def test_names_are_sorted_and_recorded_once(tree: PluginTree) -> None:
    tree.plugin("twice", optional(
        "import compat_plugin_test_b", "import compat_plugin_test_a",
        "import compat_plugin_test_b",
    ))
    assert scan(tree, "twice").missing == by(tree, "twice", "compat_plugin_test_a",
                                             "compat_plugin_test_b")


def test_a_module_that_fails_to_import_still_says_what_it_missed(tree: PluginTree) -> None:
    tree.plugin("broken", "import compat_plugin_test_required\n")
    found = scan(tree, "broken")
    assert found.records is None
    (error,) = found.errors
    assert isinstance(error, LoadError)
    assert isinstance(error.error, ModuleNotFoundError)
    assert error.target == f"{tree.plugins_name}.broken"
    assert found.missing == by(tree, "broken", "compat_plugin_test_required")


def test_a_name_the_scan_itself_made_importable_is_no_miss(
    tree: PluginTree, tmp_path: Path
) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "compat_plugin_test_vendored.py").write_text("value = 1\n")
    tree.plugin("vendoring", plugin_source("vendoring") + (
        "import sys\n"
        "try:\n"
        "    import compat_plugin_test_vendored\n"
        "except ImportError:\n"
        f"    sys.path.append({str(vendor)!r})\n"
        "    import compat_plugin_test_vendored\n"
        "try:\n"
        "    import compat_plugin_test_still_absent\n"
        "except ImportError:\n"
        "    pass\n"
    ))
    found = scan(tree, "vendoring")
    assert found.errors == ()
    assert found.missing == by(tree, "vendoring", "compat_plugin_test_still_absent")


def test_a_module_imported_during_another_scan_keeps_what_that_scan_missed(
    tree: PluginTree,
) -> None:
    tree.plugin("first", plugin_source("first") + f"from {tree.plugins_name} import second\n")
    tree.plugin("second", optional("import compat_plugin_test_second_needs"))
    scanner = Scanner()
    first = scan(tree, "first", scanner)
    assert first.missing == by(tree, "second", "compat_plugin_test_second_needs")
    second = scan(tree, "second", scanner)
    assert second.preloaded is True
    assert second.missing == first.missing
    assert second.file == str(tree.plugins_dir / "second.py")
    # Another scanner (another process, as far as it knows) was not watching.
    assert scan(tree, "second").missing == ()


def test_each_miss_names_the_module_whose_import_made_it(tree: PluginTree, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The module running the failed ``import``: one imported along the way for its own misses,
    the scanned module for a function of an imported library it calls (that call runs again
    whenever the module is imported), and for ``import_module`` and ``from ... import``."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "compat_plugin_test_helper.py").write_text(
        "try:\n    import compat_plugin_test_helper_needs\nexcept ImportError:\n    pass\n")
    (library / "compat_plugin_test_lazy.py").write_text(
        "def load():\n    try:\n        import compat_plugin_test_lazy_needs\n"
        "    except ImportError:\n        pass\n")
    monkeypatch.syspath_prepend(str(library))
    importlib.import_module("compat_plugin_test_lazy")
    tree.plugin("many", optional(
        "import compat_plugin_test_helper",
        "import compat_plugin_test_lazy; compat_plugin_test_lazy.load()",
        "import importlib; importlib.import_module('compat_plugin_test_by_name')",
        "from json import compat_plugin_test_not_there",
    ))
    assert scan(tree, "many").missing == (
        ("compat_plugin_test_by_name", f"{tree.plugins_name}.many"),
        ("compat_plugin_test_helper_needs", "compat_plugin_test_helper"),
        ("compat_plugin_test_lazy_needs", f"{tree.plugins_name}.many"),
        ("json.compat_plugin_test_not_there", f"{tree.plugins_name}.many"),
    )


def test_a_miss_outside_an_import_by_the_scanned_module_names_no_importer(
    tree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe in a module imported along the way, and an import in another thread, which the
    scan cannot tie to a module it ran."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "compat_plugin_test_prober.py").write_text(
        "import importlib.util\n"
        "FOUND = importlib.util.find_spec('compat_plugin_test_prober_looks') is not None\n")
    monkeypatch.syspath_prepend(str(library))
    (library / "compat_plugin_test_threaded.py").write_text(
        "try:\n    import compat_plugin_test_threaded_needs\nexcept ImportError:\n    pass\n")
    tree.plugin("threads", plugin_source("threads") + (
        "import threading\n"
        "import compat_plugin_test_prober\n"
        "def _elsewhere():\n"
        "    import compat_plugin_test_threaded\n"
        "    try:\n        import compat_plugin_test_in_a_thread\n"
        "    except ImportError:\n        pass\n"
        "worker = threading.Thread(target=_elsewhere)\n"
        "worker.start()\n"
        "worker.join()\n"
    ))
    assert scan(tree, "threads").missing == (
        ("compat_plugin_test_in_a_thread", None), ("compat_plugin_test_prober_looks", None),
        ("compat_plugin_test_threaded_needs", None))


@pytest.mark.parametrize("rerun", [
    pytest.param("import importlib\nimportlib.reload({helper})", id="reloaded"),
    pytest.param("import sys\nsys.modules.pop({helper!r})\nimport {helper}", id="imported-again"),
    # Entries added without a look-up must not hide the helper's removal from the count.
    pytest.param("import sys\nsys.modules['compat_plugin_test_alias'] = sys\n"
                 "sys.modules['compat_plugin_test_alias_2'] = sys\n"
                 "sys.modules.pop({helper!r})\nimport {helper}", id="imported-again-with-aliases"),
    pytest.param("import runpy\nrunpy.run_module({helper!r}, alter_sys=True)", id="run-by-runpy"),
    pytest.param("import pathlib\nsource = pathlib.Path({helper}.__file__).read_text()\n"
                 "exec(compile(source, {helper}.__file__, 'exec'), vars({helper}))",
                 id="run-in-its-namespace"),
])
@pytest.mark.parametrize("imported_before", [False, True], ids=["first-imported-here", "preloaded"])
def test_a_helper_run_again_by_the_module_is_no_importer(
    tree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rerun: str,
    imported_before: bool,
) -> None:
    """A helper that the scanned module runs again (reloads it, imports it afresh, runs its
    code) is run again wherever the module is imported: what it missed counts, wherever it is
    imported already."""
    helper = "compat_plugin_test_rerun"
    library = tmp_path / "library"
    library.mkdir()
    (library / f"{helper}.py").write_text(
        "try:\n    import compat_plugin_test_rerun_needs\nexcept ImportError:\n    pass\n")
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.delitem(sys.modules, helper, raising=False)
    if imported_before:
        importlib.import_module(helper)
    tree.plugin("rerun", plugin_source("rerun")
                + f"import {helper}\n" + rerun.format(helper=helper) + "\n")
    found = scan(tree, "rerun")
    for alias in ("compat_plugin_test_alias", "compat_plugin_test_alias_2"):
        sys.modules.pop(alias, None)
    assert found.errors == ()
    # Noted without an importer, if also with the helper for its own first import.
    assert ("compat_plugin_test_rerun_needs", None) in found.missing
    assert {name for name, _ in found.missing} == {"compat_plugin_test_rerun_needs"}


def test_an_odd_object_in_sys_modules_during_the_scan_names_no_importer(tree: PluginTree) -> None:
    """A module that puts, for a while, something in sys.modules that cannot show its
    namespace: its failed import is noted without an importer, and the module still scanned."""
    tree.plugin("proxied", plugin_source("proxied") + (
        "import sys\n"
        "_real = sys.modules[__name__]\n"
        "class _Proxy:\n"
        "    def __getattribute__(self, name):\n"
        "        raise RuntimeError('nothing through the proxy')\n"
        "sys.modules[__name__] = _Proxy()\n"
        "try:\n    import compat_plugin_test_proxied_needs\nexcept ImportError:\n    pass\n"
        "sys.modules[__name__] = _real\n"
    ))
    found = scan(tree, "proxied")
    assert found.errors == ()
    assert found.missing == (("compat_plugin_test_proxied_needs", None),)
    assert [record.attribute for record in found.records.plugins] == ["plugin"]


def test_a_lazy_module_named_by_code_the_scan_runs_is_left_unloaded(
    tree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code run under a name that sys.modules holds as a lazy module (importlib.util.LazyLoader)
    not touched yet: telling its importer must not run the lazy module's body."""
    (tmp_path / "compat_plugin_test_lazy_named.py").write_text("RAN = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = importlib.util.find_spec("compat_plugin_test_lazy_named")
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "compat_plugin_test_lazy_named", module)
    spec.loader.exec_module(module)
    tree.plugin("naming", plugin_source("naming") + (
        "try:\n"
        "    exec('import compat_plugin_test_lazy_needs',"
        " {'__name__': 'compat_plugin_test_lazy_named'})\n"
        "except ImportError:\n    pass\n"
    ))
    assert scan(tree, "naming").missing == (("compat_plugin_test_lazy_needs", None),)
    assert type(module).__name__ == "_LazyModule"
    assert "RAN" not in object.__getattribute__(module, "__dict__")


def test_a_scan_leaves_no_garbage_cycle_holding_its_frame(tree: PluginTree) -> None:
    """A cold call scans every module with full collections held: a scan's frame kept alive
    by what it noted would hold everything it touched until the collector ran."""
    tree.plugin("cycle", optional("import compat_plugin_test_cycle_needs"))
    code = Scanner._import.__code__
    gc.collect()
    gc.disable()
    try:
        assert scan(tree, "cycle").missing != ()
        frames = [o for o in gc.get_objects() if isinstance(o, FrameType) and o.f_code is code]
    finally:
        gc.enable()
    assert frames == []


def test_a_module_imported_before_any_scan_is_preloaded(tree: PluginTree) -> None:
    tree.plugin("early", optional("import compat_plugin_test_early_needs"))
    importlib.import_module(f"{tree.plugins_name}.early")
    found = scan(tree, "early")
    assert found.preloaded is True
    assert found.missing == ()
    assert [record.attribute for record in found.records.plugins] == ["plugin"]


def test_the_scan_leaves_sys_meta_path_as_it_was(tree: PluginTree) -> None:
    tree.plugin("fine", optional("import compat_plugin_test_x"))
    tree.plugin("interrupted", "raise KeyboardInterrupt\n")
    tree.plugin("exits", "import sys\nsys.exit(3)\n")
    before = list(sys.meta_path)
    scan(tree, "fine")
    assert sys.meta_path == before
    (error,) = scan(tree, "exits").errors
    assert isinstance(error.error, SystemExit)
    assert sys.meta_path == before
    # Not a plugin's fault: it reaches the caller, and the finders are gone all the same.
    with pytest.raises(KeyboardInterrupt):
        scan(tree, "interrupted")
    assert sys.meta_path == before


def test_an_entry_point_scan_takes_the_named_object(tree: PluginTree) -> None:
    tree.plugin("objects", optional("import compat_plugin_test_obj_needs")
                + "other = Plugin()\n")
    found = Scanner().scan(f"{tree.plugins_name}.objects", "other", origin(tree))
    assert found.missing == by(tree, "objects", "compat_plugin_test_obj_needs")
    assert found.records is not None
    assert [record.attribute for record in found.records.plugins] == ["other"]


# -- the records a scan takes --------------------------------------------------------------------

RECORDED = '''
"""A module of many kinds of objects."""
from zope.interface import implementer, provider
from compat_plugin import IPlugin
from {pkg}.ifaces import IDerived, ITestPlugin, ITestPlugin2
from {pkg}.shared import shared


@implementer(IPlugin, IDerived)
class Derived:
    """A derived plugin."""


@provider(IPlugin, ITestPlugin2)
class ProvidedByTheClass:
    pass


class Weird:
    def __conform__(self, interface):
        raise LookupError("asked whether it is a plugin, it breaks")


zeta = Derived()
_hidden = Derived()
weird = Weird()
__doc__ = Derived()
alpha = 1
'''


def test_scan_module_takes_every_plugin_in_definition_order(tree: PluginTree) -> None:
    shared = plugin_source("shared").replace("plugin = Plugin()", "shared = Plugin()")
    tree.write("shared.py", shared)
    tree.plugin("recorded", RECORDED)
    module = importlib.import_module(f"{tree.plugins_name}.recorded")
    found, errors = scan_module(module, origin(tree))
    prefix = f"{tree.name}.ifaces"
    assert found.module == module.__name__
    assert found.description is None  # __doc__ is no string
    assert found.origin == origin(tree)
    assert found.unexported == ()
    by_name = {record.attribute: record for record in found.plugins}
    # Imported names and underscore names count, as in Twisted; __doc__ does not.
    assert list(by_name) == ["shared", "ProvidedByTheClass", "zeta", "_hidden"]
    zeta = by_name["zeta"]
    assert zeta.description == "A derived plugin."
    assert zeta.provided == ("compat_plugin.IPlugin", f"{prefix}.IDerived")
    assert {f"{prefix}.ITestPlugin", "twisted.plugin.IPlugin"} <= set(zeta.interfaces)
    assert by_name["ProvidedByTheClass"].provided == (
        "compat_plugin.IPlugin", f"{prefix}.ITestPlugin2"
    )
    (error,) = errors
    assert error.target == f"{module.__name__}:weird"
    assert isinstance(error.error, LookupError)


UNEXPORTED = '''
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin
from {pkg}.shared import Plugin as Imported


@implementer(IPlugin, ITestPlugin)
class Maker:
    pass


@implementer(ITestPlugin)
class NotMarked:
    pass
'''


def test_a_module_without_plugins_names_its_classes_that_would_make_plugins(
    tree: PluginTree,
) -> None:
    tree.write("shared.py", plugin_source("shared"))
    tree.plugin("unexported", UNEXPORTED)
    tree.plugin("exported", UNEXPORTED + "maker = Maker()\n")
    tree.plugin("twisted_style", (
        "from zope.interface import implementer\n"
        "from twisted.plugin import IPlugin\n"
        "@implementer(IPlugin)\n"
        "class TwistedMaker:\n"
        "    pass\n"
    ))
    for name, expected in (("unexported", ("Maker",)), ("exported", ()),
                           ("twisted_style", ("TwistedMaker",))):
        module = importlib.import_module(f"{tree.plugins_name}.{name}")
        found, errors = scan_module(module, origin(tree))
        assert errors == []
        assert found.unexported == expected, name


def test_scan_object_takes_one_object_or_says_why_not(tree: PluginTree) -> None:
    tree.write("shared.py", plugin_source("shared"))
    tree.plugin("objects", UNEXPORTED + (
        "instance = Maker()\n"
        "class Holder:\n"
        "    inner = Maker()\n"
        "plain = object()\n"
        "nothing = None\n"
    ))
    module = importlib.import_module(f"{tree.plugins_name}.objects")
    where = origin(tree)

    found, errors = scan_object(module, "instance", where)
    assert errors == []
    assert found is not None
    assert [r.qualified_name for r in found.plugins] == [f"{module.__name__}:instance"]
    found, errors = scan_object(module, "Holder.inner", where)
    assert errors == []
    assert found is not None
    assert [r.attribute for r in found.plugins] == ["Holder.inner"]

    neither = " provides neither compat_plugin's nor Twisted's IPlugin"
    for attribute, kind, message in (
        ("absent", AttributeError, None),
        ("nothing.attr", AttributeError, None),
        ("plain", NotAPlugin, neither),
        ("NotMarked", NotAPlugin, neither),
        # The likely mistake, named with its fix.
        ("Maker", NotAPlugin, ": class Maker implements IPlugin; export an instance of it"),
    ):
        found, errors = scan_object(module, attribute, where)
        assert found is None, attribute
        (error,) = errors
        assert error.target == f"{module.__name__}:{attribute}"
        assert isinstance(error.error, kind), attribute
        if message is not None:
            assert str(error.error) == f"{module.__name__}:{attribute}{message}"
            assert error.kind == "not a plugin"


def test_a_scanner_tells_whether_an_imported_module_is_still_as_a_scan_imported_it(
    tree: PluginTree,
) -> None:
    """Only a module some scan imported -- still the same module object, not reloaded, its
    file as it was then -- can be described by a later scan of it as its file is."""
    importing = f"from {tree.plugins_name} import second, third\n"
    tree.plugin("first", plugin_source("first") + importing)
    second = tree.plugin("second", optional("import compat_plugin_test_watched_needs"))
    tree.plugin("third", plugin_source("third"))
    tree.plugin("early", optional("import compat_plugin_test_unwatched_needs"))

    def name(short: str) -> str:
        return f"{tree.plugins_name}.{short}"

    importlib.import_module(name("early"))
    scanner = Scanner()
    assert not scan(tree, "first", scanner).preloaded
    assert scanner.reflects(name("first"))
    assert scan(tree, "second", scanner).preloaded
    assert scanner.reflects(name("second"))  # imported by a scan
    found = scan(tree, "early", scanner)
    assert (found.preloaded, found.missing) == (True, ())
    assert not scanner.reflects(name("early"))  # by the test
    # Its file changed (a copy keeping an older time), reloaded, imported again: no more.
    stamp = second.stat()
    os.utime(second, ns=(stamp.st_atime_ns, stamp.st_mtime_ns - 10**9))
    assert not scanner.reflects(name("second"))
    importlib.reload(sys.modules[name("third")])
    assert not scanner.reflects(name("third"))
    del sys.modules[name("first")]
    importlib.import_module(name("first"))
    assert not scanner.reflects(name("first"))
