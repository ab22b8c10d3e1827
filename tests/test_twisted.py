"""Agreement with Twisted's own plugin system, checked against the real Twisted.

Twisted is only imported inside tests and child interpreters, so collecting this module stays
cheap.  Child interpreters inherit the per-test ``COMPAT_PLUGIN_CACHE_DIR``; the cache kept
beside ``twisted/plugins`` itself is written where the plugins are installed.
"""

from __future__ import annotations

import builtins
import json
import logging
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NamedTuple

import pytest

import compat_plugin
from compat_plugin import _resolver

from .conftest import PluginTree, run_python

# The interfaces that the plugins shipped in ``twisted.plugins`` provide, as dotted names.
#
# * ``ICheckerFactory`` lives in ``twisted.cred.strcred``, not ``twisted.cred.checkers``.
# * Twisted no longer has ``IStreamClientEndpointStringParser``; the client parser shipped in
#   ``twisted_core`` provides ``IStreamClientEndpointStringParserWithReactor`` instead.
# * ``IProtocolPlugin`` is still shipped, by ``twisted_words``.
#
# ``IReporter`` comes first: the warm run below checks what its query alone imports.
SHIPPED_INTERFACES = (
    "twisted.trial.itrial.IReporter",
    "twisted.application.service.IServiceMaker",
    "twisted.application.reactors.IReactorInstaller",
    "twisted.cred.strcred.ICheckerFactory",
    "twisted.internet.interfaces.IStreamServerEndpointStringParser",
    "twisted.internet.interfaces.IStreamClientEndpointStringParserWithReactor",
    "twisted.words.iwords.IProtocolPlugin",
    "twisted.plugin.IPlugin",
)
# Our own marker, asked of compat_plugin, must give what Twisted's marker gives Twisted.
OWN_MARKER = "compat_plugin.IPlugin"

# How a comparison child runs: whether compat_plugin's cache for twisted.plugins is removed
# first, and which of the two libraries is asked first for each interface.
COMPARISON_MODES = ("cold-compat-first", "warm-compat-first", "warm-twisted-first")


def child_code(body: str, **values: object) -> str:
    """``body`` preceded by one ``NAME = repr(value)`` assignment per keyword."""
    assignments = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    return assignments + textwrap.dedent(body)


def child_report(
    code: str, *, path: list[str] | None = None, env: dict[str, str] | None = None
) -> Any:
    """Run ``code`` in a fresh interpreter; return the JSON it prints on its last line."""
    result = run_python(code, path=path, env=env)
    lines = result.stdout.strip().splitlines()
    assert lines, f"child printed nothing; stderr:\n{result.stderr}"
    return json.loads(lines[-1])


class Snapshot(NamedTuple):
    """A file's exact content and modification time."""

    content: bytes
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Snapshot:
        return cls(path.read_bytes(), path.stat().st_mtime_ns)


def twisted_get_plugins(interface: Any, package: ModuleType | None = None) -> list[Any]:
    """Twisted's ``getPlugins``, drained."""
    from twisted.plugin import getPlugins

    return list(getPlugins(interface, package))


def twisted_get_cache(package: ModuleType) -> dict[str, Any]:
    """Twisted's ``getCache``."""
    from twisted import plugin

    get_cache: Callable[[ModuleType], dict[str, Any]] = plugin.getCache
    return get_cache(package)


def ours(interface: Any, package: ModuleType | None = None) -> list[Any]:
    """compat_plugin's ``getPlugins``, drained."""
    return list(compat_plugin.getPlugins(interface, package))


def ids(objects: list[Any]) -> set[int]:
    return {id(item) for item in objects}


# ---------------------------------------------------------------------------------------------
# 1. The plugins Twisted ships, found by both libraries.

SHIPPED_COMPARISON = """
import importlib
import json
import os
import sys

import compat_plugin
import twisted.plugins
from twisted import plugin as twisted_plugin

if MODE.startswith("cold-"):
    for directory in twisted.plugins.__path__:
        name = "compat_plugin." + sys.implementation.cache_tag + ".json"
        try:
            os.remove(os.path.join(directory, "__pycache__", name))
        except OSError:
            pass


def named(dotted):
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def plugin_modules():
    return sorted(m for m in sys.modules if m.startswith("twisted.plugins."))


keep = []
report = dict(results=dict(), imported_after_first=None)
for dotted in NAMES + [OWN_MARKER]:
    asked = named(dotted)
    theirs_asked = twisted_plugin.IPlugin if dotted == OWN_MARKER else asked
    answers = dict()
    order = ["ours", "theirs"] if MODE.endswith("compat-first") else ["theirs", "ours"]
    for who in order:
        if who == "ours":
            answers[who] = list(compat_plugin.getPlugins(asked, twisted.plugins))
            if report["imported_after_first"] is None:
                report["imported_after_first"] = plugin_modules()
        else:
            answers[who] = list(twisted_plugin.getPlugins(theirs_asked, twisted.plugins))
    keep.append(answers)
    report["results"][dotted] = dict(
        (who, [[id(p), repr(p)] for p in found]) for who, found in answers.items()
    )
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def shipped_reports(tmp_path_factory: pytest.TempPathFactory, fresh_twisted_cache: None
                    ) -> dict[str, Any]:
    """One report per comparison mode, the cold one first so that the warm ones are warm."""
    user_cache = tmp_path_factory.mktemp("twisted-usercache")
    reports: dict[str, Any] = {}
    for mode in COMPARISON_MODES:
        code = child_code(
            SHIPPED_COMPARISON, MODE=mode, NAMES=list(SHIPPED_INTERFACES), OWN_MARKER=OWN_MARKER
        )
        reports[mode] = child_report(
            code,
            env={"COMPAT_PLUGIN_CACHE_DIR": str(user_cache), "COMPAT_PLUGIN_NO_CACHE_WRITE": ""},
        )
    return reports


@pytest.mark.parametrize("mode", COMPARISON_MODES)
@pytest.mark.parametrize("interface", [*SHIPPED_INTERFACES, OWN_MARKER])
def test_shipped_plugins_are_twisteds_objects(
    shipped_reports: dict[str, Any], mode: str, interface: str
) -> None:
    found = shipped_reports[mode]["results"][interface]
    ours_found = [item[0] for item in found["ours"]]
    theirs_found = [item[0] for item in found["theirs"]]
    described = f"ours: {[i[1] for i in found['ours']]}\ntheirs: {[i[1] for i in found['theirs']]}"
    # Every interface listed is provided by at least one plugin Twisted 22.10+ ships.
    assert theirs_found, described
    assert len(ours_found) == len(theirs_found), described
    assert set(ours_found) == set(theirs_found), described


def test_warm_query_imports_only_matching_shipped_modules(
    shipped_reports: dict[str, Any],
) -> None:
    """With a warm cache, asking for reporters imports twisted_trial and no other plugin module."""
    imported = shipped_reports["warm-compat-first"]["imported_after_first"]
    assert imported == ["twisted.plugins.twisted_trial"]


# ---------------------------------------------------------------------------------------------
# 2. Plugin modules written for Twisted; and no Twisted for plugins that do not need it.

TWISTED_STYLE = '''
"""Plugins written for Twisted's plugin system."""
from zope.interface import implementer, provider

from twisted import plugin
from twisted.plugin import IPlugin
from {pkg}.ifaces import IDerived, ITestPlugin


@implementer(ITestPlugin, IPlugin)
class Thing:
    "Declares Twisted's marker by name."


@implementer(ITestPlugin, plugin.IPlugin)
class OtherThing:
    "Declares Twisted's marker through its module."


first = Thing()
second = OtherThing()


@provider(IPlugin, IDerived)
class Provided:
    "The class itself is the plugin."
'''

TWISTED_STYLE_UNRELATED = """
from zope.interface import implementer

from twisted.plugin import IPlugin
from {pkg}.ifaces import ITestPlugin2


@implementer(ITestPlugin2, IPlugin)
class Unrelated:
    "Provides an interface nobody here asks for."


unrelated = Unrelated()
"""


def test_plugins_declaring_twisteds_marker_are_found(tree: PluginTree) -> None:
    tree.plugin("twisted_style", TWISTED_STYLE)
    tree.plugin("unrelated", TWISTED_STYLE_UNRELATED)
    package = tree.package()
    ifaces = tree.ifaces()

    found = ours(ifaces.ITestPlugin, package)
    module = sys.modules[f"{tree.plugins_name}.twisted_style"]
    assert [id(p) for p in found] == [id(module.first), id(module.second), id(module.Provided)]
    theirs = twisted_get_plugins(ifaces.ITestPlugin, package)
    assert len(found) == len(theirs)
    assert ids(found) == ids(theirs)

    # As a new process would see it: from the cache, importing only the matching module.
    tree.purge()
    package = tree.package()
    ifaces = tree.ifaces()
    found = ours(ifaces.ITestPlugin, package)
    module = sys.modules[f"{tree.plugins_name}.twisted_style"]
    assert [id(p) for p in found] == [id(module.first), id(module.second), id(module.Provided)]
    assert f"{tree.plugins_name}.unrelated" not in sys.modules
    theirs = twisted_get_plugins(ifaces.ITestPlugin, package)
    assert ids(found) == ids(theirs)


TWISTED_STYLE_QUERY = """
import importlib
import json
import sys

import compat_plugin

package = importlib.import_module(PACKAGE)
ifaces = importlib.import_module(PACKAGE.rpartition(".")[0] + ".ifaces")
found = [
    getattr(p, "__name__", type(p).__name__)
    for p in compat_plugin.getPlugins(ifaces.ITestPlugin, package)
]
loaded = sorted(m for m in sys.modules if m.startswith(PACKAGE + "."))
print(json.dumps(dict(found=found, loaded=loaded)))
"""


def test_twisted_style_plugins_from_a_warm_cache_in_a_fresh_process(tree: PluginTree) -> None:
    """Twisted is not imported when the cached records are matched, yet the plugin counts."""
    tree.plugin("twisted_style", TWISTED_STYLE)
    tree.plugin("unrelated", TWISTED_STYLE_UNRELATED)
    code = child_code(TWISTED_STYLE_QUERY, PACKAGE=tree.plugins_name)
    cold = child_report(code, path=[str(tree.root)])
    assert tree.cache_files()
    warm = child_report(code, path=[str(tree.root)])
    assert cold["found"] == warm["found"] == ["Thing", "OtherThing", "Provided"]
    assert warm["loaded"] == [f"{tree.plugins_name}.twisted_style"]


OWN_MARKER_PLUGINS = {
    "alpha": """
        from zope.interface import implementer
        from compat_plugin import IPlugin
        from {pkg}.ifaces import ITestPlugin


        @implementer(ITestPlugin, IPlugin)
        class Labelled:
            def __init__(self, label):
                self.label = label


        one = Labelled("alpha.one")
        two = Labelled("alpha.two")
    """,
    "beta": """
        from zope.interface import provider
        from compat_plugin import IPlugin
        from {pkg}.ifaces import ITestPlugin2


        @provider(IPlugin, ITestPlugin2)
        class Beta:
            label = "beta.Beta"
    """,
    "gamma": """
        from zope.interface import implementer
        import compat_plugin
        from {pkg}.ifaces import IDerived


        @implementer(compat_plugin.IPlugin, IDerived)
        class Derived:
            label = "gamma.derived"


        derived = Derived()
    """,
}

WITHOUT_TWISTED = """
import importlib
import json
import sys

from zope.interface import Interface

import compat_plugin


def twisted_modules():
    return sorted(m for m in sys.modules if m == "twisted" or m.startswith("twisted."))


package = importlib.import_module(PACKAGE)
ifaces = importlib.import_module(PACKAGE.rpartition(".")[0] + ".ifaces")
report = dict()
report["matching"] = [p.label for p in compat_plugin.getPlugins(ifaces.ITestPlugin, package)]
report["twisted_after_matching"] = twisted_modules()
report["everything"] = [p.label for p in compat_plugin.getPlugins(Interface, package)]
report["twisted_after_everything"] = twisted_modules()
report["marked"] = [p.label for p in compat_plugin.getPlugins(compat_plugin.IPlugin, package)]
report["twisted_at_end"] = twisted_modules()
print(json.dumps(report))
"""


def test_plugins_with_our_marker_never_import_twisted(tree: PluginTree) -> None:
    for name, text in OWN_MARKER_PLUGINS.items():
        tree.plugin(name, text)
    code = child_code(WITHOUT_TWISTED, PACKAGE=tree.plugins_name)
    everything = ["alpha.one", "alpha.two", "beta.Beta", "gamma.derived"]
    for run in ("cold", "warm"):
        report = child_report(code, path=[str(tree.root)])
        assert report == {
            "matching": ["alpha.one", "alpha.two", "gamma.derived"],
            "twisted_after_matching": [],
            "everything": everything,
            "twisted_after_everything": [],
            "marked": everything,
            "twisted_at_end": [],
        }, run
        assert tree.cache_files(), run


# ---------------------------------------------------------------------------------------------
# 3. The default package is twisted.plugins, imported only once the generator runs.

DEFAULT_PACKAGE = """
import json
import sys

import compat_plugin
from twisted.application.service import IServiceMaker

plugins = compat_plugin.getPlugins(IServiceMaker)
report = dict(imported_before=("twisted.plugins" in sys.modules))
first = next(plugins)
report["imported_after"] = "twisted.plugins" in sys.modules
found = [first, *plugins]

import twisted.plugins
from twisted.plugin import getPlugins

explicit = list(compat_plugin.getPlugins(IServiceMaker, twisted.plugins))
theirs = list(getPlugins(IServiceMaker))
report["ours"] = [[id(p), p.tapname] for p in found]
report["explicit"] = [[id(p), p.tapname] for p in explicit]
report["theirs"] = [[id(p), p.tapname] for p in theirs]
print(json.dumps(report))
"""


def test_default_package_is_twisted_plugins_and_imported_lazily() -> None:
    report = child_report(DEFAULT_PACKAGE)
    assert report["imported_before"] is False
    assert report["imported_after"] is True
    assert report["theirs"]
    assert report["ours"] == report["explicit"]
    assert len(report["ours"]) == len(report["theirs"])
    assert {tuple(p) for p in report["ours"]} == {tuple(p) for p in report["theirs"]}


# ---------------------------------------------------------------------------------------------
# 4. Twisted's adapter registry.

Register = Callable[[Any, Any, Any], None]


@pytest.fixture
def register_adapter() -> Iterator[Register]:
    """Register adapters with Twisted's global registry for one test, removed afterwards."""
    from twisted.python import components

    register: Callable[..., None] = components.registerAdapter
    done: list[tuple[Any, Any, Any]] = []

    def add(factory: Any, source: Any, target: Any) -> None:
        register(factory, source, target)
        done.append((factory, source, target))

    yield add
    for factory, source, target in done:
        components.globalRegistry.unregister([source], target, "", factory)


def wrapper_class(target: Any) -> type[Any]:
    """A fresh adapter class declaring ``target``, keeping what it adapts as ``original``."""
    from zope.interface import implementer

    @implementer(target)
    class Wrapper:
        def __init__(self, original: object) -> None:
            self.original = original

    return Wrapper


ADAPTABLE = """
from zope.interface import implementer

from twisted.plugin import IPlugin
from {pkg}.ifaces import ITestPlugin2


@implementer(ITestPlugin2, IPlugin)
class Adaptable:
    "Provides ITestPlugin2 only."


adaptable = Adaptable()
"""


def test_registered_adapter_is_applied_like_twisted(
    tree: PluginTree, register_adapter: Register
) -> None:
    tree.plugin("adaptable", ADAPTABLE)
    ifaces = tree.ifaces()
    wrapper = wrapper_class(ifaces.ITestPlugin)
    # The registry keys interfaces by module and name, so this registration also holds for
    # the interfaces re-imported below.
    register_adapter(wrapper, ifaces.ITestPlugin2, ifaces.ITestPlugin)
    for run in ("cold", "warm"):
        if run == "warm":
            tree.purge()
        package = tree.package()
        ifaces = tree.ifaces()

        found = ours(ifaces.ITestPlugin, package)
        plugin = sys.modules[f"{tree.plugins_name}.adaptable"].adaptable
        assert len(found) == 1, run
        assert type(found[0]) is wrapper, run
        assert found[0].original is plugin, run
        theirs = twisted_get_plugins(ifaces.ITestPlugin, package)
        assert [type(p) for p in theirs] == [wrapper], run
        assert theirs[0].original is plugin, run
        # Asked for what it provides, the plugin comes as it is.
        assert [id(p) for p in ours(ifaces.ITestPlugin2, package)] == [id(plugin)], run


MIXED = """
from zope.interface import implementer

from twisted.plugin import IPlugin
from {pkg}.ifaces import ITestPlugin, ITestPlugin2


@implementer(ITestPlugin, IPlugin)
class Fine:
    pass


@implementer(ITestPlugin2, IPlugin)
class Awkward:
    pass


before = Fine()
awkward = Awkward()
after = Fine()
"""

LATER = """
from zope.interface import implementer

from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin


@implementer(ITestPlugin, IPlugin)
class Later:
    pass


later = Later()
"""


class AdapterFailure(Exception):
    """Raised by an adapter on purpose."""


def failing_adapter(original: object) -> object:
    raise AdapterFailure(f"cannot adapt {original!r}")


def test_adapter_that_raises_skips_only_that_plugin(
    tree: PluginTree, register_adapter: Register, caplog: pytest.LogCaptureFixture
) -> None:
    tree.plugin("mixed", MIXED)
    tree.plugin("zlater", LATER)
    ifaces = tree.ifaces()
    register_adapter(failing_adapter, ifaces.ITestPlugin2, ifaces.ITestPlugin)
    for run in ("cold", "warm"):
        if run == "warm":
            tree.purge()
        caplog.clear()
        package = tree.package()
        ifaces = tree.ifaces()

        with caplog.at_level(logging.DEBUG, logger="compat_plugin"):
            found = ours(ifaces.ITestPlugin, package)

        mixed = sys.modules[f"{tree.plugins_name}.mixed"]
        later = sys.modules[f"{tree.plugins_name}.zlater"]
        assert [id(p) for p in found] == [id(mixed.before), id(mixed.after), id(later.later)], run
        problems = [
            r for r in caplog.records if r.name == "compat_plugin" and r.levelno >= logging.WARNING
        ]
        assert len(problems) == 1, (run, [r.getMessage() for r in problems])
        (problem,) = problems
        assert problem.levelno == logging.WARNING, run
        assert "awkward" in problem.getMessage(), run
        assert f"{tree.plugins_name}.mixed" in problem.getMessage(), run
        assert problem.exc_info is not None, run
        assert problem.exc_info[0] is AdapterFailure, run


# ---------------------------------------------------------------------------------------------
# 5. Each library keeps to its own cache.

SHARED = """
from zope.interface import implementer

from twisted.plugin import IPlugin
from {pkg}.ifaces import ITestPlugin


@implementer(ITestPlugin, IPlugin)
class Shared:
    "Found by both libraries."


shared = Shared()
"""


def test_caches_are_left_to_their_owners(tree: PluginTree) -> None:
    tree.plugin("shared", SHARED)
    package = tree.package()
    ifaces = tree.ifaces()
    dropin = tree.plugins_dir / "dropin.cache"

    # compat_plugin scans first: it persists only scans whose import it watched (of a module
    # Twisted imported first, it cannot know which imports failed).
    cold = ours(ifaces.ITestPlugin, package)
    (compat_file,) = tree.cache_files()
    own = Snapshot.of(compat_file)
    theirs = twisted_get_plugins(ifaces.ITestPlugin, package)
    assert dropin.is_file()
    twisteds = Snapshot.of(dropin)

    _resolver.forget_state()
    warm = ours(ifaces.ITestPlugin, package)
    compat_plugin.getCache(package)
    assert ids(cold) == ids(warm) == ids(theirs)
    assert Snapshot.of(dropin) == twisteds
    assert Snapshot.of(compat_file) == own

    # Make Twisted scan again and write its cache anew, beside ours.
    dropin.unlink()
    assert ids(twisted_get_plugins(ifaces.ITestPlugin, package)) == ids(theirs)
    twisted_get_cache(package)
    assert dropin.is_file()
    assert Snapshot.of(compat_file) == own


WATCHED_FILES = """
import importlib
import json
import os
import sys

seen = []


def watched(value):
    if isinstance(value, int) or not isinstance(value, (str, bytes, os.PathLike)):
        return False
    path = os.path.abspath(os.fsdecode(value))
    name = os.path.basename(path)
    if WATCH == "twisted":
        return name == "dropin.cache"
    user_cache = os.path.abspath(os.environ["COMPAT_PLUGIN_CACHE_DIR"])
    return (name.startswith("compat_plugin.") and name.endswith(".json")) or (
        path == user_cache or path.startswith(user_cache + os.sep)
    )


def hook(event, args):
    try:
        if any(watched(arg) for arg in args):
            seen.append([event, [repr(arg) for arg in args]])
    except Exception as exc:
        seen.append(["hook failed", [repr(exc)]])


package = importlib.import_module(PACKAGE)
ifaces = importlib.import_module(PACKAGE.rpartition(".")[0] + ".ifaces")
if RUN == "compat":
    import compat_plugin

    sys.addaudithook(hook)
    found = [type(p).__name__ for p in compat_plugin.getPlugins(ifaces.ITestPlugin, package)]
    compat_plugin.getCache(package)
else:
    from twisted.plugin import getCache, getPlugins

    sys.addaudithook(hook)
    found = [type(p).__name__ for p in getPlugins(ifaces.ITestPlugin, package)]
    getCache(package)
print(json.dumps(dict(found=found, seen=seen)))
"""


def test_neither_library_opens_the_others_cache(tree: PluginTree) -> None:
    """Every audited file operation of one library, checked for the other's cache files."""
    tree.plugin("shared", SHARED)
    path = [str(tree.root)]
    dropin = tree.plugins_dir / "dropin.cache"

    def run(library: str, watch: str) -> list[str]:
        code = child_code(WATCHED_FILES, PACKAGE=tree.plugins_name, RUN=library, WATCH=watch)
        report = child_report(code, path=path)
        assert report["seen"] == [], (library, report["seen"])
        found: list[str] = report["found"]
        return found

    assert run("twisted", "compat") == ["Shared"]
    assert dropin.is_file()
    # compat_plugin, cold then warm, next to a Twisted cache it must not open.
    assert run("compat", "twisted") == ["Shared"]
    assert tree.cache_files()
    assert run("compat", "twisted") == ["Shared"]
    # Twisted, scanning afresh and writing its cache, next to ours.
    dropin.unlink()
    assert run("twisted", "compat") == ["Shared"]
    assert dropin.is_file()


# ---------------------------------------------------------------------------------------------
# 6. A hostile dropin.cache is never unpickled.


class RunsCodeWhenUnpickled:
    """Unpickling an instance's pickle executes ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (builtins.exec, (self.source,))


def hostile_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when loaded."""
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    return pickle.dumps(RunsCodeWhenUnpickled(code))


def test_hostile_dropin_cache_is_never_unpickled(
    tree: PluginTree,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The payload does what it is built to do when anything unpickles it.
    control = tmp_path / "control-marker"
    pickle.loads(hostile_pickle(control))
    assert control.exists()

    marker = tmp_path / "marker"
    tree.plugin("shared", SHARED)
    tree.plugin("zlater", LATER)
    payload = hostile_pickle(marker)
    dropin = tree.plugins_dir / "dropin.cache"
    dropin.write_bytes(payload)
    caplog.set_level(logging.DEBUG)

    for run in ("cold", "warm"):
        if run == "warm":
            tree.purge()
        package = tree.package()
        ifaces = tree.ifaces()
        found = ours(ifaces.ITestPlugin, package)
        cache = compat_plugin.getCache(package)
        shared = sys.modules[f"{tree.plugins_name}.shared"].shared
        later = sys.modules[f"{tree.plugins_name}.zlater"].later
        assert [id(p) for p in found] == [id(shared), id(later)], run
        assert sorted(cache) == ["shared", "zlater"], run
        assert not marker.exists(), run
        assert dropin.read_bytes() == payload, run
        noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
        assert noisy == [], (run, [r.getMessage() for r in noisy])
        assert capfd.readouterr().err == "", run


# ---------------------------------------------------------------------------------------------
# 7. CachedDropin and CachedPlugin look like Twisted's.

DESCRIBED = '''
"""Plugins whose cached descriptions are compared."""
from zope.interface import alsoProvides, implementer

from twisted.plugin import IPlugin
from {pkg}.ifaces import IDerived, ITestPlugin, ITestPlugin2


@implementer(ITestPlugin, IPlugin)
class Documented:
    "A documented plugin class."


@implementer(ITestPlugin, IPlugin)
class Undocumented:
    pass


alpha = Documented()
beta = Undocumented()
gamma = Documented()
alsoProvides(gamma, ITestPlugin2)


@implementer(IPlugin, IDerived, ITestPlugin2)
class Several:
    "Declares the marker first, then two interfaces."


several = Several()
'''

UNDOCUMENTED_MODULE = """
from zope.interface import implementer

from twisted.plugin import IPlugin
from {pkg}.ifaces import ITestPlugin


@implementer(ITestPlugin, IPlugin)
class Plain:
    "Lives in a module without a docstring."


plain = Plain()
"""

NO_PLUGINS = '''
"""A module of the plugin package that holds no plugin."""
VALUE = 1
'''


def assert_caches_agree(ours_cache: dict[str, Any], theirs_cache: dict[str, Any]) -> None:
    assert sorted(ours_cache) == sorted(theirs_cache)
    for key, theirs_dropin in theirs_cache.items():
        ours_dropin = ours_cache[key]
        assert ours_dropin.moduleName == theirs_dropin.moduleName, key
        assert ours_dropin.description == theirs_dropin.description, key
        assert [p.name for p in ours_dropin.plugins] == [p.name for p in theirs_dropin.plugins]
        for mine, theirs in zip(ours_dropin.plugins, theirs_dropin.plugins):
            assert repr(mine) == repr(theirs)
            assert mine.name == theirs.name
            assert mine.description == theirs.description
            assert [id(i) for i in mine.provided] == [id(i) for i in theirs.provided], mine
            assert mine.dropin.moduleName == theirs.dropin.moduleName
            assert mine.dropin.description == theirs.dropin.description
            assert mine.load() is theirs.load()


def test_cached_plugins_describe_what_twisteds_do(tree: PluginTree) -> None:
    tree.plugin("described", DESCRIBED)
    tree.plugin("plain", UNDOCUMENTED_MODULE)
    tree.plugin("empty", NO_PLUGINS)
    for run in ("cold", "warm in process", "warm in a new process"):
        if run == "warm in process":
            _resolver.forget_state()
        elif run == "warm in a new process":
            tree.purge()
        package = tree.package()
        ours_cache = compat_plugin.getCache(package)
        theirs_cache = twisted_get_cache(package)
        assert sorted(ours_cache) == ["described", "empty", "plain"], run
        assert_caches_agree(ours_cache, theirs_cache)
        described = ours_cache["described"]
        assert [p.name for p in described.plugins] == ["alpha", "beta", "gamma", "several"], run
