"""What is measured: the scenarios, their targets, and each library's way of doing each one.

A *scenario* is a row of a table; scenarios of one *group* share a context (a corpus, an
interpreter, a user) and a table.  A *contender* is one library's code for one scenario: code
run before the clock, code timed, and an expression checked afterwards against what the
scenario expects.  Every contender's code uses public APIs only.

Counting what a user pays: each library's timed code starts with its own import
(``from compat_plugin import getPlugins``, ``from stevedore import ExtensionManager``,
``from importlib.metadata import entry_points``); only what the plugin modules import
themselves -- ``twisted.plugin`` (the directory corpora) or ``compat_plugin`` (the entry-point
corpora), and ``zope.interface`` -- is imported before the clock, for every contender alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from string import Template

from contexts import (
    Context,
    Prepare,
    clear_compat_caches,
    clear_directory_cache,
    clear_twisted_cache,
)

SUBJECT = "compat_plugin"
TWISTED = "twisted.plugin"
METADATA = "importlib.metadata"
BACKPORT = "importlib_metadata + load"
STEVEDORE = "stevedore"
ZOPE = "zope.interface"
FLOOR = "floor"

DIRECTORY = "directory"
SITE_WIDE = "site-wide"
ENTRY_POINTS = "entry points"
ENTRY_POINTS_LARGE = "entry points, 10,000 distributions"

Expectation = Callable[[Context], object]


@dataclass(frozen=True)
class Target:
    """compat_plugin's median must be at most ``ratio`` times ``library``'s -- in this
    scenario, or in ``scenario`` when given."""

    library: str
    ratio: float
    scenario: str | None = None

    def describe(self) -> str:
        where = f" ({self.scenario})" if self.scenario else ""
        return f"≤{self.ratio:g}x {self.library}{where}"


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    targets: tuple[Target, ...]
    expect: Expectation | None = None


@dataclass(frozen=True)
class Contender:
    """One library's way of doing one scenario; ``$name`` placeholders are filled from the
    context's substitutions."""

    scenario: str
    library: str
    setup: str
    timed: str
    result: str = "None"
    prepare: Prepare | None = None
    expect: Expectation | None = None

    @property
    def key(self) -> str:
        return f"{self.scenario} / {self.library}"


def _count(name: str) -> Expectation:
    return lambda context: int(context.substitutions[name])


# -- the directory corpora -----------------------------------------------------------------------

_CORPUS = """
import importlib
import benchcorpus.plugins
from benchcorpus.ifaces import IA, IB, INobody
import twisted.plugin
"""
_TWISTED = _CORPUS + "from twisted.plugin import getPlugins\n"
_COMPAT_CALL = ("from compat_plugin import getPlugins\n"
                "found = list(getPlugins($interface, benchcorpus.plugins))")
_TWISTED_CALL = "found = list(getPlugins($interface, benchcorpus.plugins))"
_FLOOR = _CORPUS + """
import os
directory = os.path.dirname(benchcorpus.plugins.__file__)
matching = $matching
"""
# Scandir, stat every module source, import those for which ``$condition`` holds.
_FLOOR_LOOP = """
imported = []
with os.scandir(directory) as listing:
    for entry in listing:
        name = entry.name
        if name.endswith(".py") and name != "__init__.py":
            entry.stat()
            stem = name[:-3]
            if $condition:
                imported.append(importlib.import_module("benchcorpus.plugins." + stem))
"""


def _call(template: str, interface: str) -> str:
    return Template(template).safe_substitute(interface=interface)


def _directory_contenders(scenario: str, interface: str, condition: str,
                          compat_prepare: Prepare | None = None,
                          twisted_prepare: Prepare | None = None) -> list[Contender]:
    floor = Template(_FLOOR_LOOP).safe_substitute(condition=condition)
    return [
        Contender(scenario, SUBJECT, _CORPUS, _call(_COMPAT_CALL, interface), "len(found)",
                  prepare=compat_prepare),
        Contender(scenario, TWISTED, _TWISTED, _call(_TWISTED_CALL, interface), "len(found)",
                  prepare=twisted_prepare),
        Contender(scenario, FLOOR, _FLOOR, floor, "len(imported)",
                  expect=_count("modules") if condition == "True" else None),
    ]


# -- the entry-point corpora ---------------------------------------------------------------------

# A module entry point loads as the module; ``provided`` keeps what a plugin-aware loader
# would return from it: the module's values providing IA (its one plugin object).
_ENTRY = """
import importlib
from types import ModuleType
import zope.interface
import compat_plugin
import epcorpus.plugins
from epcorpus.ifaces import IA, INobody


def provided(loaded):
    values = vars(loaded).values() if isinstance(loaded, ModuleType) else (loaded,)
    return [value for value in values if IA.providedBy(value)]
"""
_ENTRY_COMPAT = ("from compat_plugin import getPlugins\n"
                 "found = list(getPlugins(IA, epcorpus.plugins))")


def _entry_contenders(scenario: str) -> list[Contender]:
    return [
        Contender(scenario, SUBJECT, _ENTRY, _ENTRY_COMPAT, "len(found)"),
        Contender(scenario, METADATA, _ENTRY,
                  "from importlib.metadata import entry_points\n"
                  "found = [p for ep in entry_points(group=$group) for p in provided(ep.load())]",
                  "len(found)"),
        Contender(scenario, STEVEDORE, _ENTRY,
                  "from stevedore import ExtensionManager\n"
                  "manager = ExtensionManager($group, invoke_on_load=False)\n"
                  "found = [p for ext in manager for p in provided(ext.plugin)]", "len(found)"),
        Contender(scenario, FLOOR, _ENTRY + "names = $plugin_modules\n",
                  "found = [p for name in names for p in provided(importlib.import_module(name))]",
                  "len(found)"),
    ]


# -- the table of scenarios ------------------------------------------------------------------------

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("warm, 10% match", DIRECTORY, (Target(TWISTED, 0.65), Target(FLOOR, 1.25)),
             expect=_count("matches")),
    Scenario("warm, nobody matches", DIRECTORY, (Target(TWISTED, 0.3), Target(FLOOR, 2.0)),
             expect=lambda context: 0),
    Scenario("cold, 10% match", DIRECTORY, (Target(TWISTED, 0.9),), expect=_count("matches")),
    Scenario("cold, no cache at all", DIRECTORY, (), expect=_count("matches")),
    Scenario("import after zope.interface", DIRECTORY, (Target(ZOPE, 0.1),)),
    Scenario("warm, 10% match, unprivileged", SITE_WIDE, (Target(TWISTED, 1.0),),
             expect=_count("matches")),
    Scenario("warm", ENTRY_POINTS, (Target(METADATA, 0.5), Target(STEVEDORE, 0.55),
                                    Target(FLOOR, 1.3)), expect=_count("plugins")),
    Scenario("cold index build", ENTRY_POINTS, (Target(BACKPORT, 1.2),),
             expect=_count("plugins")),
    Scenario("warm, 10,000 distributions", ENTRY_POINTS_LARGE,
             (Target(SUBJECT, 1.3, scenario="warm"),), expect=_count("plugins")),
)

CONTENDERS: tuple[Contender, ...] = (
    *_directory_contenders("warm, 10% match", "IA", "stem in matching"),
    *_directory_contenders("warm, nobody matches", "INobody", "False"),
    *_directory_contenders("cold, 10% match", "IA", "True", clear_directory_cache,
                           clear_twisted_cache),
    Contender("cold, no cache at all", SUBJECT, _CORPUS, _call(_COMPAT_CALL, "IA"), "len(found)",
              prepare=clear_compat_caches),
    Contender("import after zope.interface", SUBJECT, "import zope.interface",
              "from compat_plugin import getPlugins"),
    Contender("import after zope.interface", TWISTED, "import zope.interface",
              "import twisted.plugin"),
    # The one dependency compat_plugin cannot avoid, from a bare interpreter.
    Contender("import after zope.interface", ZOPE, "", "import zope.interface"),
    *_directory_contenders("warm, 10% match, unprivileged", "IA", "stem in matching"),
    *_entry_contenders("warm"),
    Contender("cold index build", SUBJECT, _ENTRY, _ENTRY_COMPAT, "len(found)",
              prepare=clear_compat_caches),
    Contender("cold index build", BACKPORT, _ENTRY,
              "from importlib_metadata import entry_points\n"
              "found = [p for ep in entry_points(group=$group) for p in provided(ep.load())]",
              "len(found)"),
    Contender("warm, 10,000 distributions", SUBJECT, _ENTRY, _ENTRY_COMPAT, "len(found)"),
)


def scenario_named(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


def groups() -> list[str]:
    """The groups, in table order."""
    return list(dict.fromkeys(scenario.group for scenario in SCENARIOS))


def libraries(group: str) -> list[str]:
    """The libraries of a group's contenders, compat_plugin first, in table order."""
    names = [SUBJECT]
    for contender in CONTENDERS:
        if scenario_named(contender.scenario).group == group and contender.library not in names:
            names.append(contender.library)
    return names
