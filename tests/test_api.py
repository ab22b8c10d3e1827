"""What a legacy caller of twisted.plugin relies on, against real packages on disk."""

from __future__ import annotations

import importlib
import json
import logging
import os
import py_compile
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from zope.interface import Interface

import compat_plugin
from compat_plugin import CachedDropin, CachedPlugin, IPlugin, getCache, getPlugins

from .conftest import PluginTree, run_python

PLUGIN = """
\"\"\"Module {name} docstring.\"\"\"
from zope.interface import implementer
from compat_plugin import IPlugin
from {{pkg}}.ifaces import ITestPlugin

@implementer(IPlugin, ITestPlugin)
class _Plugin:
    \"\"\"Plugin {name}.\"\"\"

{name} = _Plugin()
"""


def simple(tree: PluginTree, name: str) -> Path:
    """A module ``name`` holding one ITestPlugin called ``name``."""
    return tree.plugin(name, PLUGIN.format(name=name))


def names(plugins: Iterable[object]) -> list[str]:
    """The ``name`` each plugin made by PLUGIN was created under (from its docstring)."""
    return [str(plugin.__doc__).split()[1].rstrip(".") for plugin in plugins]


# -- Names -----------------------------------------------------------------------------------


def test_legacy_names_are_importable() -> None:
    for name in ("IPlugin", "getPlugins", "getPlugIns", "pluginPackagePaths", "getCache",
                 "CachedDropin", "CachedPlugin"):
        assert name in compat_plugin.__all__
        assert getattr(compat_plugin, name) is not None
    assert compat_plugin.getPlugIns is compat_plugin.getPlugins
    assert IPlugin.extends(Interface)


# -- getPlugins ------------------------------------------------------------------------------


def test_getplugins_is_a_lazy_generator(tree: PluginTree) -> None:
    simple(tree, "alpha")
    package = tree.package()
    result = getPlugins(tree.ifaces().ITestPlugin, package)
    assert not tree.cache_files()
    assert f"{tree.plugins_name}.alpha" not in sys.modules
    assert names(result) == ["alpha"]
    assert tree.cache_files()


def test_base_interface_matches_and_interface_returns_everything(tree: PluginTree) -> None:
    tree.plugin("derived", """
        from zope.interface import implementer
        from compat_plugin import IPlugin
        from {pkg}.ifaces import IDerived, ITestPlugin2

        @implementer(IPlugin, IDerived)
        class D: pass
        d = D()

        @implementer(IPlugin, ITestPlugin2)
        class Other: pass
        other = Other()
    """)
    ifaces, package = tree.ifaces(), tree.package()
    assert [type(p).__name__ for p in getPlugins(ifaces.ITestPlugin, package)] == ["D"]
    assert [type(p).__name__ for p in getPlugins(ifaces.IDerived, package)] == ["D"]
    assert [type(p).__name__ for p in getPlugins(Interface, package)] == ["D", "Other"]
    assert [type(p).__name__ for p in getPlugins(IPlugin, package)] == ["D", "Other"]
    assert list(getPlugins(ifaces.INobody, package)) == []


def test_the_legacy_alias_behaves_the_same(tree: PluginTree) -> None:
    simple(tree, "alpha")
    package, iface = tree.package(), tree.ifaces().ITestPlugin
    assert names(compat_plugin.getPlugIns(iface, package)) == names(getPlugins(iface, package))


def test_path_is_read_live_and_odd_entries_are_skipped(tree: PluginTree, tmp_path: Path) -> None:
    simple(tree, "alpha")
    package = tree.package()
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "beta.py").write_text(PLUGIN.format(name="beta").format(pkg=tree.name))
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("")
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir(mode=0)
    iface = tree.ifaces().ITestPlugin
    package.__path__.extend([str(tmp_path / "missing"), str(a_file), str(unreadable)])
    assert names(getPlugins(iface, package)) == ["alpha"]
    package.__path__.append(str(extra))
    assert names(getPlugins(iface, package)) == ["alpha", "beta"]
    package.__path__.remove(str(extra))
    assert names(getPlugins(iface, package)) == ["alpha"]


# -- Which files are plugin modules ----------------------------------------------------------


def test_sources_bytecode_and_subpackages(tree: PluginTree) -> None:
    simple(tree, "alpha")
    stale = simple(tree, "beta")
    py_compile.compile(str(stale), cfile=str(stale.with_suffix(".pyc")))
    stale.write_text(PLUGIN.format(name="beta_fresh").format(pkg=tree.name))
    orphan = simple(tree, "gamma")
    py_compile.compile(str(orphan), cfile=str(orphan.with_suffix(".pyc")))
    orphan.unlink()
    tree.write("plugins/delta/__init__.py", PLUGIN.format(name="delta"))
    tree.write("plugins/nopackage/thing.py", PLUGIN.format(name="thing"))
    for ignored in ("__init__", "not-valid", "class", "2start"):
        tree.write(f"plugins/{ignored}.py" if ignored != "__init__" else "plugins/__pycache__/x.py",
                   PLUGIN.format(name="ignored"))
    found = getPlugins(tree.ifaces().ITestPlugin, tree.package())
    assert sorted(names(found)) == ["alpha", "beta_fresh", "delta", "gamma"]
    assert sorted(getCache(tree.package())) == ["alpha", "beta", "delta", "gamma"]
    assert hasattr(sys.modules[f"{tree.plugins_name}.beta"], "beta_fresh")


def test_first_directory_wins(tree: PluginTree, tmp_path: Path) -> None:
    simple(tree, "alpha")
    later = tmp_path / "system"
    later.mkdir()
    (later / "alpha.py").write_text("raise AssertionError('shadowed copy imported')")
    (later / "beta.py").write_text(PLUGIN.format(name="beta").format(pkg=tree.name))
    package = tree.package()
    package.__path__.append(str(later))
    assert names(getPlugins(tree.ifaces().ITestPlugin, package)) == ["alpha", "beta"]
    assert sys.modules[f"{tree.plugins_name}.alpha"].__file__ == str(tree.plugins_dir / "alpha.py")


# -- What one module contributes -------------------------------------------------------------


def test_every_module_level_plugin_counts(tree: PluginTree) -> None:
    tree.plugin("shared", """
        from zope.interface import implementer, provider
        from compat_plugin import IPlugin
        from {pkg}.ifaces import ITestPlugin

        @implementer(IPlugin, ITestPlugin)
        class Implementing:
            "Instances are plugins, the class is not."

        instance = Implementing()
        _private = Implementing()

        @provider(IPlugin, ITestPlugin)
        class Providing:
            "The class itself is the plugin."

        not_a_plugin = object()
    """)
    tree.plugin("importer", """
        from {pkg}.plugins.shared import instance as borrowed
    """)
    module = f"{tree.plugins_name}.shared"
    cache = getCache(tree.package())
    assert [p.name for p in cache["shared"].plugins] == ["instance", "_private", "Providing"]
    assert [p.name for p in cache["importer"].plugins] == ["borrowed"]
    found = list(getPlugins(tree.ifaces().ITestPlugin, tree.package()))
    shared = sys.modules[module]
    # Twisted would yield `instance` twice (once as `borrowed`); each object comes once here.
    assert found == [shared.instance, shared._private, shared.Providing]


def test_cached_plugin_records_name_description_and_interfaces(tree: PluginTree) -> None:
    simple(tree, "alpha")
    dropin = getCache(tree.package())["alpha"]
    assert isinstance(dropin, CachedDropin)
    assert dropin.moduleName == f"{tree.plugins_name}.alpha"
    assert dropin.description == "Module alpha docstring."
    (plugin,) = dropin.plugins
    assert isinstance(plugin, CachedPlugin)
    assert plugin.dropin is dropin
    assert plugin.name == "alpha"
    assert plugin.description == "Plugin alpha."
    ifaces = tree.ifaces()
    assert plugin.provided == [IPlugin, ifaces.ITestPlugin]
    assert repr(plugin) == (
        f"<CachedPlugin 'alpha'/'{tree.plugins_name}.alpha' (provides 'IPlugin, ITestPlugin')>"
    )
    assert plugin.load() is sys.modules[dropin.moduleName].alpha
    assert ifaces.ITestPlugin(plugin, None) is plugin.load()
    assert plugin.__conform__(ifaces.ITestPlugin) is plugin.load()
    assert plugin.getComponent(ifaces.ITestPlugin2, None, "dflt") == "dflt"


def test_getcache_lists_modules_without_plugins(tree: PluginTree) -> None:
    tree.plugin("empty", '"""Nothing here."""')
    cache = getCache(tree.package())
    assert cache["empty"].plugins == []
    assert cache["empty"].description == "Nothing here."


# -- Freshness -------------------------------------------------------------------------------


def test_added_changed_and_deleted_modules(tree: PluginTree) -> None:
    simple(tree, "alpha")
    beta = simple(tree, "beta")
    iface_name = f"{tree.name}.ifaces.ITestPlugin"

    def current() -> list[str]:
        tree.purge()
        iface = importlib.import_module(iface_name.rpartition(".")[0]).ITestPlugin
        return sorted(names(getPlugins(iface, tree.package())))

    assert current() == ["alpha", "beta"]
    simple(tree, "gamma")
    assert current() == ["alpha", "beta", "gamma"]
    before = os.stat(beta)
    beta.write_text(PLUGIN.format(name="beta2").format(pkg=tree.name))
    os.utime(beta, ns=(before.st_atime_ns, before.st_mtime_ns))  # same second, same mtime
    assert current() == ["alpha", "beta2", "gamma"]
    beta.unlink()
    for compiled in (tree.plugins_dir / "__pycache__").glob("beta.*.pyc"):
        compiled.unlink()
    assert current() == ["alpha", "gamma"]
    modules = tree.cache_document()["modules"]
    assert modules["names"] == ["alpha", "gamma"]  # type: ignore[index]


def test_broken_module_is_logged_and_others_still_come(
    tree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    simple(tree, "alpha")
    tree.plugin("broken", "raise ValueError('broken on purpose')")
    simple(tree, "zeta")
    with caplog.at_level(logging.WARNING, logger="compat_plugin"):
        found = names(getPlugins(tree.ifaces().ITestPlugin, tree.package()))
    assert found == ["alpha", "zeta"]
    (record,) = [r for r in caplog.records if r.name == "compat_plugin"]
    assert record.levelname == "WARNING"
    assert f"{tree.plugins_name}.broken" in record.getMessage()
    assert record.exc_info is not None and "broken on purpose" in str(record.exc_info[1])
    assert "broken" not in getCache(tree.package())


def test_a_cached_module_that_no_longer_imports_fails_as_a_cold_call_says_it(
    tree: PluginTree, caplog: pytest.LogCaptureFixture, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its dependency gone from ``sys.path`` (a process run with ``-S``, say), the module of
    two cached plugins fails to import on a warm call: tried once and said once, as the
    module's import error, as a cold call says it."""
    dependency = f"{tree.name}_dependency"
    (tmp_path / f"{dependency}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    runs = tmp_path / "runs"
    tree.plugin("needy", f"with open({str(runs)!r}, 'a') as runs:\n    runs.write('x')\n"
                f"import {dependency}\n" + PLUGIN.format(name="needy") + "\nagain = _Plugin()\n")
    assert names(getPlugins(tree.ifaces().ITestPlugin, tree.package())) == ["needy", "needy"]
    sys.path.remove(str(tmp_path))
    del sys.modules[dependency]
    tree.purge()
    runs.unlink()
    for call in (1, 2):  # each call tries it again, once, as a cold call would
        with caplog.at_level(logging.WARNING, logger="compat_plugin"):
            assert names(getPlugins(tree.ifaces().ITestPlugin, tree.package())) == []
        assert runs.read_text() == "x" * call
    (message,) = [r.getMessage() for r in caplog.records if r.name == "compat_plugin"]
    assert message.startswith(f"{tree.plugins_name}.needy from directory ")
    assert ": import error: ModuleNotFoundError: " in message


def test_read_only_directory_sees_modules_added_later(tree: PluginTree) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions; "
                    "tests/test_directory_cache.py covers this as another user")
    simple(tree, "alpha")
    iface = tree.ifaces().ITestPlugin
    assert names(getPlugins(iface, tree.package())) == ["alpha"]
    simple(tree, "beta")
    tree.plugins_dir.chmod(0o555)
    try:
        tree.purge()
        iface = tree.ifaces().ITestPlugin
        assert names(getPlugins(iface, tree.package())) == ["alpha", "beta"]
    finally:
        tree.plugins_dir.chmod(0o755)


# -- pluginPackagePaths ----------------------------------------------------------------------


def test_plugin_package_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package_root = tmp_path / "one"
    (package_root / "my" / "plugins").mkdir(parents=True)
    (package_root / "my" / "plugins" / "__init__.py").write_text("")
    extension = tmp_path / "two"
    (extension / "my" / "plugins").mkdir(parents=True)
    compiled_only = tmp_path / "three"
    (compiled_only / "my" / "plugins").mkdir(parents=True)
    (compiled_only / "my" / "plugins" / "__init__.pyc").write_bytes(b"")
    missing = tmp_path / "four"
    monkeypatch.setattr(sys, "path", [str(package_root), str(extension), str(compiled_only),
                                      str(missing)])
    assert compat_plugin.pluginPackagePaths("my.plugins") == [
        str(extension / "my" / "plugins"),
        str(compiled_only / "my" / "plugins"),
        str(missing / "my" / "plugins"),
    ]


def test_relative_sys_path_entries_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["rel"])
    assert compat_plugin.pluginPackagePaths("a.b") == [str(tmp_path / "rel" / "a" / "b")]


# -- Deliberate improvements -----------------------------------------------------------------


def test_order_is_documented_and_the_same_warm_or_cold(tree: PluginTree, tmp_path: Path) -> None:
    for name in ("zeta", "alpha", "mid"):
        simple(tree, name)
    tree.plugin("multi", """
        from zope.interface import implementer
        from compat_plugin import IPlugin
        from {pkg}.ifaces import ITestPlugin
        @implementer(IPlugin, ITestPlugin)
        class M:
            def __init__(self, label): self.label = label
        second, first = M("second"), M("first")
    """)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "aaa.py").write_text(PLUGIN.format(name="aaa").format(pkg=tree.name))
    code = f"""
        import {tree.plugins_name} as package
        from {tree.name}.ifaces import ITestPlugin
        from compat_plugin import getPlugins
        package.__path__.append({str(extra)!r})
        print([getattr(p, "label", type(p).__module__) for p in getPlugins(ITestPlugin, package)])
    """
    cold = run_python(code, path=[str(tree.root)]).stdout
    warm = run_python(code, path=[str(tree.root)]).stdout
    pkg = tree.plugins_name
    assert cold == warm
    assert cold.strip() == str([f"{pkg}.alpha", f"{pkg}.mid", "second", "first", f"{pkg}.zeta",
                                f"{pkg}.aaa"])


def test_warm_call_imports_only_matching_modules(tree: PluginTree) -> None:
    for index in range(20):
        interface = "ITestPlugin" if index % 5 == 0 else "ITestPlugin2"
        tree.plugin(f"mod{index:02d}", f"""
            from zope.interface import implementer
            from compat_plugin import IPlugin
            from {{pkg}}.ifaces import {interface}
            @implementer(IPlugin, {interface})
            class P: pass
            plugin = P()
        """)
    code = f"""
        import sys
        import {tree.plugins_name} as package
        from {tree.name}.ifaces import ITestPlugin, INobody
        # An installation may import the importlib package at start-up (an editable install's
        # finder does); forget it, so that whether the call imports it shows.
        for name in [m for m in sys.modules if m == "importlib" or m.startswith("importlib.")]:
            del sys.modules[name]
        before = set(sys.modules)
        from compat_plugin import getPlugins
        found = list(getPlugins(ITestPlugin, package))
        nobody = list(getPlugins(INobody, package))
        new = set(sys.modules) - before
        import json, sysconfig  # after the call: which of its imports are the standard library
        library = sysconfig.get_paths()["stdlib"]
        standard = sorted(m for m in new if getattr(sys.modules[m], "__spec__", None) and (
            sys.modules[m].__spec__.origin in ("built-in", "frozen")
            or (sys.modules[m].__spec__.origin or "").startswith(library)))
        print(json.dumps([len(found), len(nobody), "compat_plugin._scan" in new,
                          sorted(m for m in new if not m.startswith("compat_plugin")), standard]))
    """
    run_python(code, path=[str(tree.root)])  # cold: fills the cache
    out = json.loads(run_python(code, path=[str(tree.root)]).stdout)
    pkg = tree.plugins_name
    # The scanning machinery is not even imported; besides the matching modules, only the
    # standard library's modules reading and checking the cache takes (json, zlib... and what
    # they import, which depends on the Python), and never the importlib package.
    assert out[:3] == [4, 0, False]
    new, standard = out[3:]
    assert [name for name in new if name.startswith(pkg)] == [
        f"{pkg}.mod{i:02d}" for i in (0, 5, 10, 15)]
    assert set(new) - {name for name in new if name.startswith(pkg)} <= set(standard)
    assert not [name for name in new if name == "importlib" or name.startswith("importlib.")]


def _hierarchy(tree: PluginTree, thing_extends: str) -> None:
    """``hier.IBase``, and ``hier.IThing`` extending ``thing_extends``."""
    tree.write("hier.py", f"""
        from zope.interface import Interface
        class IBase(Interface): pass
        class IThing({thing_extends}): pass
    """)


def _ask_for_the_base(tree: PluginTree) -> list[list[str]]:
    """In a new process: what getPlugins(IBase) yields, what discover(package, IBase) finds,
    what Twisted yields, and which of the package's modules were imported (the getPlugins
    call's) -- each plugin module defining a plugin that provides ``hier.IThing``; and
    compat_plugin said nothing."""
    code = f"""
        import json, logging, sys
        logging.basicConfig(level=logging.WARNING)
        import {tree.plugins_name} as package
        from {tree.name}.hier import IBase
        from compat_plugin import getPlugins, discover
        from twisted.plugin import getPlugins as twisted_plugins
        before = set(sys.modules)
        ours = [type(p).__name__ for p in getPlugins(IBase, package)]
        new = sorted(m for m in set(sys.modules) - before if m.startswith(package.__name__))
        found = [r.attribute for r in discover(package, IBase).plugins]
        theirs = [type(p).__name__ for p in twisted_plugins(IBase, package)]
        print(json.dumps([ours, found, theirs, new]))
    """
    done = run_python(code, path=[str(tree.root)])
    assert "compat_plugin" not in done.stderr
    found: list[list[str]] = json.loads(done.stdout)
    return found


THING = """
    from twisted.plugin import IPlugin
    from zope.interface import implementer
    from {pkg}.hier import IThing
    @implementer(IPlugin, IThing)
    class Thing: pass
    thing = Thing()
"""


def test_an_interface_given_a_new_base_answers_for_it_as_in_twisted(tree: PluginTree) -> None:
    """A host release makes IThing extend IBase: plugins scanned as providing IThing answer
    getPlugins(IBase) from the cache, as Twisted's answer, without a module scanned again."""
    _hierarchy(tree, "Interface")
    tree.plugin("thing", THING)
    tree.plugin("other", """
        from twisted.plugin import IPlugin
        from zope.interface import implementer
        from {pkg}.ifaces import ITestPlugin2
        @implementer(IPlugin, ITestPlugin2)
        class Other: pass
        other = Other()
    """)
    assert _ask_for_the_base(tree)[:3] == [[], [], []]
    (cache,) = tree.cache_files()
    written = cache.stat().st_mtime_ns, cache.read_bytes()
    _hierarchy(tree, "IBase")
    ours, found, theirs, new = _ask_for_the_base(tree)
    assert ours == theirs == ["Thing"] and found == ["thing"]
    assert new == [f"{tree.plugins_name}.thing"]  # loaded, not a module scanned
    assert (cache.stat().st_mtime_ns, cache.read_bytes()) == written


def test_an_interface_losing_a_base_no_longer_answers_for_it_as_in_twisted(
    tree: PluginTree,
) -> None:
    """A host release makes IThing extend IBase no more: plugins scanned as providing IThing
    (and so IBase) no longer answer getPlugins(IBase) -- as Twisted, whose cache holds the
    interfaces themselves -- without their modules imported or a word said."""
    _hierarchy(tree, "IBase")
    tree.plugin("thing", THING)
    assert _ask_for_the_base(tree)[:3] == [["Thing"], ["thing"], ["Thing"]]
    _hierarchy(tree, "Interface")
    assert _ask_for_the_base(tree) == [[], [], [], []]


def _ask_for_the_thing(tree: PluginTree, module: str) -> list[list[str]]:
    """In a new process, ``IThing`` imported from ``module`` alone: what getPlugins, discover
    and Twisted find for it, and whether compat_plugin said anything."""
    code = f"""
        import json, logging, sys
        logging.basicConfig(level=logging.WARNING)
        import {tree.plugins_name} as package
        from {tree.name}.{module} import IThing
        from compat_plugin import getPlugins, discover
        from twisted.plugin import getPlugins as twisted_plugins
        ours = [type(p).__name__ for p in getPlugins(IThing, package)]
        found = [r.attribute for r in discover(package, IThing).plugins]
        theirs = [type(p).__name__ for p in twisted_plugins(IThing, package)]
        print(json.dumps([ours, found, theirs]))
    """
    done = run_python(code, path=[str(tree.root)])
    assert "compat_plugin" not in done.stderr
    found: list[list[str]] = json.loads(done.stdout)
    return found


def test_an_interface_moved_to_another_module_still_answers_for_its_plugins(
    tree: PluginTree,
) -> None:
    """A host release moves IThing from ``hier`` to ``newhier``, keeping the old name as an
    alias: the plugins scanned as providing ``hier.IThing`` answer for it from the cache,
    whichever module the caller takes it from -- as from Twisted's cache."""
    _hierarchy(tree, "Interface")
    tree.plugin("thing", THING)
    assert _ask_for_the_thing(tree, "hier") == [["Thing"], ["thing"], ["Thing"]]
    (cache,) = tree.cache_files()
    written = cache.read_bytes()
    tree.write("newhier.py", """
        from zope.interface import Interface
        class IThing(Interface): pass
    """)
    tree.write("hier.py", "from {pkg}.newhier import IThing\n")
    for module in ("newhier", "hier"):
        assert _ask_for_the_thing(tree, module) == [["Thing"], ["thing"], ["Thing"]], module
    assert cache.read_bytes() == written  # answered from the cache, not a module scanned


def test_an_entry_point_s_interface_moved_within_its_own_package_still_answers(
    tree: PluginTree, make_distribution: Callable[..., Path],
) -> None:
    """An application whose entry-point plugins and interfaces share one package moves an
    interface from ``iface`` to ``api``, keeping the old name: the plugin recorded as providing
    ``iface.IThing`` answers for ``api.IThing``."""
    site = make_distribution("acme-moving", files={
        "acme_moving/__init__.py": "",
        "acme_moving/iface.py": "from zope.interface import Interface\n"
                                "class IThing(Interface): pass\n",
        "acme_moving/impl.py": "from compat_plugin import IPlugin\n"
                               "from zope.interface import implementer\n"
                               "from acme_moving.iface import IThing\n"
                               "@implementer(IPlugin, IThing)\n"
                               "class Thing: pass\n"
                               "thing = Thing()\n",
    }, entry_points={tree.plugins_name: {"thing": "acme_moving.impl:thing"}})
    code = f"""
        import json
        import {tree.plugins_name} as package
        from acme_moving.%s import IThing
        from compat_plugin import getPlugins
        print(json.dumps([type(p).__name__ for p in getPlugins(IThing, package)]))
    """
    path = [str(site), str(tree.root)]
    assert json.loads(run_python(code % "iface", path=path).stdout) == ["Thing"]
    (site / "acme_moving" / "api.py").write_text(
        "from zope.interface import Interface\nclass IThing(Interface): pass\n")
    (site / "acme_moving" / "iface.py").write_text("from acme_moving.api import IThing\n")
    assert json.loads(run_python(code % "api", path=path).stdout) == ["Thing"]


def test_a_same_named_interface_is_told_apart_without_importing_plugin_code(
    tree: PluginTree,
) -> None:
    """Looking for a moved interface imports neither a plugin module defining an interface of
    the same name nor anything for an interface named as the markers are."""
    _hierarchy(tree, "Interface")
    tree.write("apps.py", "from zope.interface import Interface\nclass IPlugin(Interface): pass\n")
    # Neither imports Twisted: asked of its IPlugin, the look-up would.
    tree.plugin("thing", THING.replace("from twisted.plugin import", "from compat_plugin import"))
    tree.plugin("own", """
        from compat_plugin import IPlugin
        from zope.interface import Interface, implementer
        class IThing(Interface): pass
        @implementer(IPlugin, IThing)
        class Own: pass
        own = Own()
    """)
    code = f"""
        import json, sys
        import {tree.plugins_name} as package
        from {tree.name}.hier import IThing
        from {tree.name}.apps import IPlugin
        from compat_plugin import getPlugins
        def new(call):
            before = set(sys.modules)
            found = [type(p).__name__ for p in call]
            return found, sorted(m for m in set(sys.modules) - before
                                 if m.startswith((package.__name__, "twisted")))
        print(json.dumps([new(getPlugins(IPlugin, package)), new(getPlugins(IThing, package))]))
    """
    run_python(code, path=[str(tree.root)])  # cold: every module scanned
    warm = json.loads(run_python(code, path=[str(tree.root)]).stdout)
    assert warm == [[[], []], [["Thing"], [f"{tree.plugins_name}.thing"]]]


def _fancy_plugins(tree: PluginTree, env: dict[str, str] | None = None) -> list[str]:
    """In a new process: the names of what getPlugins(IBase) yields, in order."""
    code = f"""
        import json
        import {tree.plugins_name} as package
        from {tree.name}.hier import IBase
        from compat_plugin import getPlugins
        print(json.dumps([type(p).__name__ for p in getPlugins(IBase, package)]))
    """
    found: list[str] = json.loads(run_python(code, path=[str(tree.root)], env=env).stdout)
    return found


def test_an_interface_the_call_itself_creates_answers_cold_and_warm(tree: PluginTree) -> None:
    """A plugin provides an interface extending the asked one, defined in a module that only
    the plugin module imports, or in the plugin module itself beside a plugin providing the
    asked one: the scan or the load creates it after the call began, and it counts -- in the
    cold process, the warm one and one that reads no cache, as in Twisted."""
    _hierarchy(tree, "IBase")
    tree.write("fancy.py", """
        from {pkg}.hier import IBase
        class IFancy(IBase): pass
    """)
    tree.plugin("afar", """
        from twisted.plugin import IPlugin
        from zope.interface import implementer
        from {pkg}.fancy import IFancy
        @implementer(IPlugin, IFancy)
        class Afar: pass
        afar = Afar()
    """)
    tree.plugin("within", """
        from twisted.plugin import IPlugin
        from zope.interface import implementer
        from {pkg}.hier import IBase
        @implementer(IPlugin, IBase)
        class Plain: pass
        plain = Plain()
        class IWithin(IBase): pass
        @implementer(IPlugin, IWithin)
        class Within: pass
        within = Within()
    """)
    expected = ["Afar", "Plain", "Within"]
    assert sorted(_fancy_plugins(tree)) == expected  # cold
    assert sorted(_fancy_plugins(tree)) == expected  # warm
    assert sorted(_fancy_plugins(tree, {"COMPAT_PLUGIN_NO_CACHE_READ": "1"})) == expected


# -- Arguments of the wrong kind ---------------------------------------------------------------


def test_a_package_given_as_a_string_is_a_type_error_saying_what_to_do(tree: PluginTree) -> None:
    simple(tree, "alpha")
    interface = tree.ifaces().ITestPlugin
    with pytest.raises(TypeError) as raised:
        list(getPlugins(interface, tree.plugins_name))  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"getPlugins() needs the plugin package as a module object, not {tree.plugins_name!r} "
        f"(a str); import it first, e.g. importlib.import_module({tree.plugins_name!r})"
    )
    with pytest.raises(TypeError, match=re.escape("getCache() needs the plugin package")):
        getCache(tree.plugins_name)  # type: ignore[arg-type]


def test_arguments_swapped_are_a_type_error_naming_the_order(tree: PluginTree) -> None:
    interface, package = tree.ifaces().ITestPlugin, tree.package()
    with pytest.raises(TypeError) as raised:
        compat_plugin.discover(interface, package)
    assert str(raised.value) == (
        "discover() needs the plugin package as a module object, not the interface "
        "ITestPlugin; the arguments are discover(package, interface)"
    )
    with pytest.raises(TypeError) as raised:
        list(getPlugins(package, interface))  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"getPlugins() needs a zope.interface interface, not the module {tree.plugins_name}; "
        "the arguments are getPlugins(interface, package)"
    )
    with pytest.raises(TypeError, match=re.escape("interface, not 'IThing' (a str)")):
        list(getPlugins("IThing", package))  # type: ignore[arg-type]


def test_patterns_given_as_one_string_are_a_type_error(tree: PluginTree) -> None:
    """Taken character by character, ``disable="acme-*"`` would hold the pattern ``*``."""
    simple(tree, "alpha")
    interface, package = tree.ifaces().ITestPlugin, tree.package()
    with pytest.raises(TypeError) as raised:
        list(getPlugins(interface, package, disable="acme-*"))
    assert str(raised.value) == "disable takes glob patterns, e.g. ['acme-*'], not one string"
    with pytest.raises(TypeError, match=re.escape("enable takes glob patterns, e.g. ['a*']")):
        compat_plugin.discover(package, enable="a*")
    with pytest.raises(TypeError, match=re.escape("disable takes glob patterns (strings), not 7")):
        list(getPlugins(interface, package, disable=[7]))  # type: ignore[list-item]
    assert names(getPlugins(interface, package, disable=("nothing-*",))) == ["alpha"]


# -- Logging -------------------------------------------------------------------------------------


def test_a_failing_module_is_one_warning_per_process_with_its_traceback(
    tree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    simple(tree, "alpha")
    tree.plugin("broken", "import no_such_module_anywhere\n")
    interface = tree.ifaces().ITestPlugin
    with caplog.at_level(logging.DEBUG, logger="compat_plugin"):
        for _ in range(3):
            assert names(getPlugins(interface, tree.package())) == ["alpha"]
        getCache(tree.package())
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    (record,) = problems
    assert record.levelname == "WARNING" and record.name == "compat_plugin"
    assert record.getMessage() == (
        f"{tree.plugins_name}.broken from directory {tree.plugins_dir}: import error: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    )
    assert "\n" not in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ModuleNotFoundError
    assert record.exc_info[2] is not None


def test_discover_returns_its_errors_and_logs_nothing(
    tree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    tree.plugin("broken", "raise ValueError('broken on purpose')\n")
    with caplog.at_level(logging.DEBUG, logger="compat_plugin"):
        found = compat_plugin.discover(tree.package())
    (error,) = found.errors
    assert (error.target, type(error.error)) == (f"{tree.plugins_name}.broken", ValueError)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_importing_compat_plugin_defines_only_iplugin_until_a_name_is_used() -> None:
    code = """
        import sys
        import zope.interface
        before = set(sys.modules)
        import compat_plugin
        first = sorted(m for m in set(sys.modules) - before if m.startswith("compat_plugin"))
        from compat_plugin import getPlugins
        second = sorted(m for m in set(sys.modules) - before if m.startswith("compat_plugin"))
        heavy = [m for m in ("json", "zlib", "importlib", "importlib_metadata", "packaging")
                 if m in sys.modules and m not in before]
        print(first, second, heavy, sorted(compat_plugin.__all__) == sorted(
            n for n in dir(compat_plugin) if n in compat_plugin.__all__))
    """
    out = run_python(code).stdout.strip()
    assert out == ("['compat_plugin', 'compat_plugin._interfaces'] "
                   "['compat_plugin', 'compat_plugin._api', 'compat_plugin._interfaces'] [] True")
