"""Time compat_plugin against other plugin loaders and a hand-written floor, each call in a new
process.

Usage: ``python benchmarks/run.py [--modules 1000] [--distributions 1000] [--rounds 15]
[--only SCENARIO] [--venv DIR] [--json OUT]``

Two groups of scenarios, each with its own table: "directory" (plugin modules in a plugin
package's directory, against ``twisted.plugin``) and "entry points" (plugins declared by
installed distributions, against ``importlib.metadata`` and stevedore).  ``--only entry`` runs
only the latter.

A corpus (see ``corpus.py``) is written to a temporary directory.  Every measurement is one
fresh interpreter that imports what it needs, starts ``time.perf_counter()``, runs the timed
snippet, stops the clock and prints the elapsed seconds as JSON.  Each contender is run once,
untimed, to compile the corpus and fill the caches; then every round runs every contender once,
the order rotated by one place per round so that drift on the machine reaches all alike.
Reported figures are medians over the rounds.

Contenders are rows of ``CONTENDERS``: a scenario, a library, the code run before the clock, the
code timed, and optionally a step the parent runs before each child (e.g. deleting a cache).
Scenarios are rows of ``SCENARIOS``, with their targets as ratios of compat_plugin's median to
another library's; scenarios of one ``group`` share one table.

"Cold" keeps the compiled modules (``.pyc``) of the corpus, so every contender pays the same
import cost: for compat_plugin it removes ``__pycache__/compat_plugin.*.json`` and empties the
per-user cache directory (``COMPAT_PLUGIN_CACHE_DIR``, a private temporary directory for all
children), which also holds the entry-point index; the "directory cache only" variant keeps
the latter.  For twisted.plugin it removes ``dropin.cache``.

The plugin modules import ``twisted.plugin`` (they declare Twisted's ``IPlugin``), so every
corpus child imports it before the clock: otherwise whichever contender first imports a plugin
module would also pay for importing Twisted.

Entry points: ``entry_corpus.py`` writes one site directory of ``--distributions`` (1000)
distributions, one in 20 of which declares a module entry point in the group
``epcorpus.plugins`` (the host's plugin package, which has no modules of its own).  That
directory is the only corpus entry on ``sys.path``.  These children run with the interpreter of
a venv outside ``/tmp`` (see ``benchvenv.py``, created when the group is asked for): stevedore
keeps no cache for an interpreter under ``/tmp``.  Their working directory is an empty directory
that nothing writes to (it is ``sys.path[0]``, whose stamp a cache checks), and
``XDG_CACHE_HOME`` points into the run's temporary directory, so stevedore's cache is private to
the run.  Every child imports compat_plugin (the plugins declare its ``IPlugin``) and the host
package before the clock, and each library's own module; the timed code finds the plugins
providing ``IA``.  ``importlib.metadata`` and stevedore check no interface: a module entry point
loads as the module, and their contenders keep the module values that provide ``IA``, as
compat_plugin does.  After the warm-up runs, and again after the last round, two checking
children confirm that both caches are used: stevedore reads its cache file without calling
``_build_cacheable_data``, and compat_plugin uses its index without rebuilding it or listing
``sys.path``, importing only the plugin modules (neither ``importlib.metadata`` nor
``packaging``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Callable

from benchvenv import DEFAULT_VENV, ensure_venv
from corpus import PLUGIN_PACKAGE, make_corpus, matching_modules, plugin_directory
from entry_corpus import GROUP, host_plugin_directory, make_entry_corpus, plugin_modules

SUBJECT = "compat_plugin"
TWISTED = "twisted.plugin"
METADATA = "importlib.metadata"
STEVEDORE = "stevedore"
FLOOR = "floor"
# Scenario groups: each has its own corpus, interpreter and table.
DIRECTORY = "directory"
ENTRY_POINTS = "entry points"


@dataclass(frozen=True)
class Context:
    """What the snippets and preparation steps of one run can refer to."""

    workdir: Path
    corpus_root: Path
    plugin_dir: Path
    user_cache: Path
    modules: int
    # The interpreter of the children, and their working directory (default: ``workdir``).
    python: str = sys.executable
    cwd: Path | None = None
    # Installed distributions in an entry-point corpus (0 for a directory corpus).
    distributions: int = 0
    # ``XDG_CACHE_HOME`` for the children (stevedore's cache is beneath it), if set.
    xdg_cache: Path | None = None

    def substitutions(self) -> dict[str, str]:
        """Values for ``$name`` placeholders in snippets, as Python literals."""
        return {
            "plugin_package": repr(PLUGIN_PACKAGE),
            "matching": repr(frozenset(matching_modules(self.modules))),
            "group": repr(GROUP),
            "plugin_modules": repr(plugin_modules(self.distributions)),
        }

    def environment(self) -> dict[str, str]:
        """The environment every child runs in."""
        env = dict(os.environ)
        for name in ("PYTHONDONTWRITEBYTECODE", "COMPAT_PLUGIN_NO_CACHE_WRITE", "PYTHONSTARTUP"):
            env.pop(name, None)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.corpus_root), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env["COMPAT_PLUGIN_CACHE_DIR"] = str(self.user_cache)
        if self.xdg_cache is not None:
            env["XDG_CACHE_HOME"] = str(self.xdg_cache)
        return env

    def run_child(
        self, code: str, *, timeout: float = 300, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in a fresh child of this context and capture its output."""
        return subprocess.run(
            [self.python, "-c", code],
            env=self.environment(),
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    @property
    def directory(self) -> Path:
        """Where the children run."""
        return self.cwd if self.cwd is not None else self.workdir


Prepare = Callable[[Context], None]
Expectation = Callable[[Context], object]


def contender_key(scenario: str, library: str) -> str:
    return f"{scenario} / {library}"


@dataclass(frozen=True)
class Contender:
    """One library's way of doing one scenario.

    ``setup`` runs before the clock starts, ``timed`` between start and stop; afterwards the
    expression ``result`` is evaluated and checked against ``expect`` (or the scenario's
    expectation).  ``$name`` placeholders are filled from ``Context.substitutions``.
    """

    scenario: str
    library: str
    setup: str
    timed: str
    result: str = "None"
    prepare: Prepare | None = None
    expect: Expectation | None = None

    @property
    def key(self) -> str:
        return contender_key(self.scenario, self.library)


@dataclass(frozen=True)
class Target:
    """compat_plugin's median must be at most ``ratio`` times ``library``'s."""

    library: str
    ratio: float

    def describe(self) -> str:
        return f"≤{self.ratio:g}x {self.library}"


@dataclass(frozen=True)
class Scenario:
    """A row of a table.  ``borrow`` names a scenario whose medians stand in for libraries
    that have no contender here (a variant of compat_plugin's run compared with the same
    baselines)."""

    name: str
    group: str
    targets: tuple[Target, ...]
    expect: Expectation | None = None
    borrow: str | None = None


# --- preparation steps run by the parent before a child ---------------------------------------


def clear_directory_cache(context: Context) -> None:
    """Remove compat_plugin's cache of the plugin directory, keeping the compiled modules.

    The per-user cache directory holds other things (the entry-point index); only files
    directly in it, where a directory's fallback cache would be, are removed from it.
    """
    for path in (context.plugin_dir / "__pycache__").glob("compat_plugin.*.json"):
        path.unlink()
    for path in context.user_cache.glob("*.json"):
        path.unlink()


def clear_compat_cache(context: Context) -> None:
    """Remove every compat_plugin cache: the directory's, and all of the per-user cache."""
    clear_directory_cache(context)
    for path in context.user_cache.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def clear_twisted_cache(context: Context) -> None:
    """Remove Twisted's ``dropin.cache`` for the corpus."""
    (context.plugin_dir / "dropin.cache").unlink(missing_ok=True)


def matches(context: Context) -> object:
    return len(matching_modules(context.modules))


def nothing(context: Context) -> object:
    return 0


def every_module(context: Context) -> object:
    return context.modules


def entry_point_plugins(context: Context) -> object:
    return len(plugin_modules(context.distributions))


# --- the contenders ---------------------------------------------------------------------------

_CORPUS_SETUP = """
import importlib
import benchcorpus.plugins
from benchcorpus.ifaces import IA, IB, INobody
import twisted.plugin
"""

_COMPAT_SETUP = _CORPUS_SETUP + "from compat_plugin import getPlugins\n"
_TWISTED_SETUP = _CORPUS_SETUP + "from twisted.plugin import getPlugins\n"
_FLOOR_SETUP = _CORPUS_SETUP + """
import os
directory = os.path.dirname(benchcorpus.plugins.__file__)
prefix = $plugin_package + "."
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
                imported.append(importlib.import_module(prefix + stem))
"""

# Entry points.  The plugin modules import compat_plugin (for its IPlugin) and the host's
# interfaces: imported by every child before the clock, as is each library's own module.
# A module entry point loads as the module; ``provided`` keeps what a plugin-aware loader
# would return from it: the module's values providing IA (the one plugin object).
_ENTRY_SETUP = """
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

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "warm, 10% match", "directory",
        (Target(TWISTED, 0.7), Target(FLOOR, 1.25)), expect=matches,
    ),
    Scenario(
        "warm, nobody matches", "directory",
        (Target(TWISTED, 0.3), Target(FLOOR, 2.0)), expect=nothing,
    ),
    Scenario("cold, 10% match", "directory", (Target(TWISTED, 1.1),), expect=matches),
    # Not a target: cold for the directory only, the per-user cache (entry-point index) kept.
    Scenario(
        "cold, directory cache only", "directory", (), expect=matches, borrow="cold, 10% match"
    ),
    Scenario("import", "directory", (Target(TWISTED, 0.35),)),
    Scenario(
        "entry points, warm", ENTRY_POINTS,
        (Target(METADATA, 0.5), Target(STEVEDORE, 0.6), Target(FLOOR, 1.3)),
        expect=entry_point_plugins,
    ),
)

CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "warm, 10% match", SUBJECT, _COMPAT_SETUP,
        "found = list(getPlugins(IA, benchcorpus.plugins))", "len(found)",
    ),
    Contender(
        "warm, 10% match", TWISTED, _TWISTED_SETUP,
        "found = list(getPlugins(IA, benchcorpus.plugins))", "len(found)",
    ),
    Contender(
        "warm, 10% match", FLOOR, _FLOOR_SETUP,
        Template(_FLOOR_LOOP).safe_substitute(condition="stem in matching"), "len(imported)",
    ),
    Contender(
        "warm, nobody matches", SUBJECT, _COMPAT_SETUP,
        "found = list(getPlugins(INobody, benchcorpus.plugins))", "len(found)",
    ),
    Contender(
        "warm, nobody matches", TWISTED, _TWISTED_SETUP,
        "found = list(getPlugins(INobody, benchcorpus.plugins))", "len(found)",
    ),
    Contender(
        "warm, nobody matches", FLOOR, _FLOOR_SETUP,
        Template(_FLOOR_LOOP).safe_substitute(condition="False"), "len(imported)",
    ),
    Contender(
        "cold, 10% match", SUBJECT, _COMPAT_SETUP,
        "found = list(getPlugins(IA, benchcorpus.plugins))", "len(found)",
        prepare=clear_compat_cache,
    ),
    Contender(
        "cold, 10% match", TWISTED, _TWISTED_SETUP,
        "found = list(getPlugins(IA, benchcorpus.plugins))", "len(found)",
        prepare=clear_twisted_cache,
    ),
    # Not a target: what importing every module costs, the least a cold scan can do.
    Contender(
        "cold, 10% match", FLOOR, _FLOOR_SETUP,
        Template(_FLOOR_LOOP).safe_substitute(condition="True"), "len(imported)",
        expect=every_module,
    ),
    Contender(
        "cold, directory cache only", SUBJECT, _COMPAT_SETUP,
        "found = list(getPlugins(IA, benchcorpus.plugins))", "len(found)",
        prepare=clear_directory_cache,
    ),
    Contender("import", SUBJECT, "", "import compat_plugin"),
    Contender("import", TWISTED, "", "import twisted.plugin"),
    # Not a target: the one dependency compat_plugin cannot avoid.
    Contender("import", FLOOR, "", "import zope.interface"),
    Contender(
        "entry points, warm", SUBJECT, _ENTRY_SETUP + "from compat_plugin import getPlugins\n",
        "found = list(getPlugins(IA, epcorpus.plugins))", "len(found)",
    ),
    Contender(
        "entry points, warm", METADATA,
        _ENTRY_SETUP + "from importlib.metadata import entry_points\n",
        "found = [plugin for ep in entry_points(group=$group) for plugin in provided(ep.load())]",
        "len(found)",
    ),
    Contender(
        "entry points, warm", STEVEDORE, _ENTRY_SETUP + "from stevedore import ExtensionManager\n",
        "manager = ExtensionManager($group, invoke_on_load=False)\n"
        "found = [plugin for ext in manager for plugin in provided(ext.plugin)]",
        "len(found)",
    ),
    Contender(
        "entry points, warm", FLOOR, _ENTRY_SETUP + "names = $plugin_modules\n",
        "found = [plugin for name in names for plugin in provided(importlib.import_module(name))]",
        "len(found)",
    ),
)

# json is imported only once the clock has stopped, so that it is not already loaded for a
# library whose own import is being timed.
_CHILD = """\
import time as _time
$setup
_start = _time.perf_counter()
$timed
_elapsed = _time.perf_counter() - _start
import json as _json
print(_json.dumps({"seconds": _elapsed, "result": $result}))
"""


# --- running ----------------------------------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


def child_code(contender: Contender, context: Context) -> str:
    values = context.substitutions()
    return Template(_CHILD).substitute(
        setup=Template(contender.setup).substitute(values),
        timed=Template(contender.timed).substitute(values),
        result=contender.result,
    )


def run_child(contender: Contender, context: Context) -> tuple[float, object]:
    """Run one fresh interpreter for ``contender``; return (seconds, result)."""
    if contender.prepare is not None:
        contender.prepare(context)
    completed = context.run_child(child_code(contender, context))
    if completed.returncode != 0:
        raise ChildFailed(
            f"{contender.key}: exit status {completed.returncode}\n{completed.stderr}"
        )
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise ChildFailed(f"{contender.key}: printed nothing\n{completed.stderr}")
    report: dict[str, Any] = json.loads(lines[-1])
    return float(report["seconds"]), report["result"]


_DESCRIBE = """\
import json, sys
import compat_plugin, zope.interface
from importlib.metadata import PackageNotFoundError, version


def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


print(json.dumps({
    "compat_plugin": compat_plugin.__file__,
    "twisted": installed("twisted"),
    "stevedore": installed("stevedore"),
    "zope.interface": installed("zope.interface"),
    "python": sys.version.split()[0],
    "executable": sys.executable,
}))
"""

# The equivalent importlib_metadata release of each Python's stdlib importlib.metadata, from
# the compatibility table in importlib_metadata's documentation.
_STDLIB_METADATA = {(3, 8): "1.4", (3, 10): "4.6", (3, 11): "4.13", (3, 12): "6.5", (3, 13): "7.0"}


def describe_libraries(context: Context) -> dict[str, str]:
    """Which compat_plugin the children import (the working tree or an install), and versions."""
    completed = context.run_child(_DESCRIBE, timeout=120, check=True)
    described: dict[str, str] = json.loads(completed.stdout)
    major, minor = (int(part) for part in described["python"].split(".")[:2])
    equivalent = _STDLIB_METADATA.get((major, minor))
    described["importlib.metadata"] = f"stdlib of Python {described['python']}" + (
        f" (importlib_metadata {equivalent})" if equivalent else ""
    )
    return described


# --- checking that the entry-point caches are warm --------------------------------------------

# After the warm call: the index was neither rebuilt nor sys.path listed, and only the plugin
# modules (and their packages) were imported.
_CHECK_COMPAT = """\
import json, os, sys
import zope.interface
import compat_plugin
import compat_plugin._entrypoints as _entrypoints
import epcorpus.plugins
from epcorpus.ifaces import IA
from compat_plugin import getPlugins

calls = {"build_index": 0, "_distribution_dirs": 0}


def _counting(name):
    original = getattr(_entrypoints, name)

    def counted(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)

    setattr(_entrypoints, name, counted)


for _name in list(calls):
    _counting(_name)
_path = [entry for entry in sys.path if isinstance(entry, str)]
_index = _entrypoints.index_path($group, _path)
_before = set(sys.modules)
found = list(getPlugins(IA, epcorpus.plugins))
print(json.dumps({
    "index": _index,
    "exists": os.path.isfile(_index),
    "calls": calls,
    "found": len(found),
    "imported": sorted(set(sys.modules) - _before),
}))
"""

# The cache file stevedore looks for under this sys.path, and whether it built its data anew.
_CHECK_STEVEDORE = """\
import json, os, sys
import stevedore._cache as _cache
from stevedore import ExtensionManager

built = []
_original = _cache._build_cacheable_data


def _counted():
    built.append(1)
    return _original()


_cache._build_cacheable_data = _counted
_digest, _ = _cache._hash_settings_for_path(tuple(sys.path))
_file = os.path.join(_cache._c._dir, _digest)
_exists = os.path.isfile(_file)
manager = ExtensionManager($group, invoke_on_load=False)
print(json.dumps({
    "file": _file,
    "exists": _exists,
    "disabled": _cache._c._disable_caching,
    "built": len(built),
    "extensions": len(manager.extensions),
    "executable": sys.executable,
}))
"""


def _check_child(code: str, context: Context) -> dict[str, Any]:
    completed = context.run_child(Template(code).substitute(context.substitutions()), timeout=120)
    if completed.returncode != 0:
        raise ChildFailed(f"cache check: exit status {completed.returncode}\n{completed.stderr}")
    found: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return found


def check_entry_point_caches(context: Context) -> list[str]:
    """Confirm that a warm child uses compat_plugin's index and stevedore's cache; return a
    description of each.  Raises ChildFailed if either is not used."""
    wanted = plugin_modules(context.distributions)
    compat = _check_child(_CHECK_COMPAT, context)
    packages = {name.split(".")[0] for name in wanted}
    unexpected = [name for name in compat["imported"] if name not in {*wanted, *packages}]
    if (
        not compat["exists"] or any(compat["calls"].values()) or compat["found"] != len(wanted)
        or unexpected
    ):
        raise ChildFailed(f"compat_plugin's entry-point index is not used as expected: {compat}"
                          + (f"; also imported {unexpected}" if unexpected else ""))
    stevedore = _check_child(_CHECK_STEVEDORE, context)
    if (
        not stevedore["exists"] or stevedore["disabled"] or stevedore["built"]
        or stevedore["extensions"] != len(wanted)
    ):
        raise ChildFailed(f"stevedore's cache is not used: {stevedore}")
    return [
        f"compat_plugin index: {compat['index']} (warm call: index not rebuilt, sys.path not "
        f"listed, imported only the {len(wanted)} plugin modules and their packages)",
        f"stevedore cache: {stevedore['file']} (warm call: read, not rebuilt; "
        f"interpreter {stevedore['executable']})",
    ]


def check_result(contender: Contender, context: Context, result: object) -> None:
    scenario = scenario_named(contender.scenario)
    expect = contender.expect or scenario.expect
    if expect is None:
        return
    wanted = expect(context)
    if result != wanted:
        raise ChildFailed(f"{contender.key}: found {result!r}, expected {wanted!r}")


def scenario_named(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, contender: Contender, value: float) -> None:
        self.seconds.setdefault(contender.key, []).append(value)

    def median(self, scenario: str, library: str) -> float | None:
        values = self.seconds.get(contender_key(scenario, library))
        return statistics.median(values) if values else None


def measure(
    contenders: Sequence[Contender],
    contexts: Mapping[str, Context],
    rounds: int,
    progress: bool = True,
    after_warmup: Callable[[], None] | None = None,
) -> Samples:
    """Warm up every contender once, then run ``rounds`` rotated rounds of all of them, each
    in the context of its scenario's group."""

    def context_of(contender: Contender) -> Context:
        return contexts[scenario_named(contender.scenario).group]

    for contender in contenders:
        _, result = run_child(contender, context_of(contender))
        check_result(contender, context_of(contender), result)
    if after_warmup is not None:
        after_warmup()
    samples = Samples()
    count = len(contenders)
    for round_number in range(rounds):
        shift = round_number % count if count else 0
        order = [*contenders[shift:], *contenders[:shift]]
        for contender in order:
            seconds, result = run_child(contender, context_of(contender))
            check_result(contender, context_of(contender), result)
            samples.add(contender, seconds)
        if progress:
            print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return samples


# --- reporting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    medians: dict[str, float | None]
    ratios: dict[str, float | None]
    verdicts: tuple[tuple[Target, bool | None], ...]

    @property
    def passed(self) -> bool | None:
        if not self.verdicts or any(ok is None for _, ok in self.verdicts):
            return None
        return all(ok for _, ok in self.verdicts)


def group_libraries(group: str) -> list[str]:
    """The libraries of a group's contenders, compat_plugin first, in table order."""
    names = [SUBJECT]
    for contender in CONTENDERS:
        if scenario_named(contender.scenario).group == group and contender.library not in names:
            names.append(contender.library)
    return names


def build_rows(samples: Samples, group: str) -> list[Row]:
    libraries = group_libraries(group)
    rows = []
    for scenario in SCENARIOS:
        if scenario.group != group:
            continue
        medians = {library: samples.median(scenario.name, library) for library in libraries}
        if scenario.borrow is not None:
            for library in libraries[1:]:
                if medians[library] is None:
                    medians[library] = samples.median(scenario.borrow, library)
        subject = medians[SUBJECT]
        ratios: dict[str, float | None] = {}
        for library in libraries[1:]:
            other = medians[library]
            ratios[library] = subject / other if subject is not None and other else None
        verdicts = tuple((target, _within(ratios.get(target.library), target)) for target in
                         scenario.targets)
        rows.append(Row(scenario, medians, ratios, verdicts))
    return rows


def _within(ratio: float | None, target: Target) -> bool | None:
    return None if ratio is None else ratio <= target.ratio


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.2f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _verdict(row: Row) -> str:
    if not row.verdicts:
        return "—"
    wanted = " and ".join(target.describe() for target, _ in row.verdicts)
    failing = [target.library for target, ok in row.verdicts if ok is False]
    if row.passed:
        return f"{wanted}: PASS"
    if row.passed is None:
        return f"{wanted}: n/a"
    return f"{wanted}: FAIL ({', '.join(failing)})"


def markdown_table(rows: list[Row], libraries: list[str]) -> str:
    others = libraries[1:]
    header = [
        "scenario",
        *(f"{library} median (ms)" for library in libraries),
        *(f"compat/{_short(library)}" for library in others),
        "target",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *(["---:"] * (len(header) - 2)), "---"]) + "|",
    ]
    for row in rows:
        cells = [
            row.scenario.name,
            *(_ms(row.medians[library]) for library in libraries),
            *(_ratio(row.ratios[library]) for library in others),
            _verdict(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _short(library: str) -> str:
    return library.split(".")[0]


def spread_table(samples: Samples) -> str:
    """Per contender: runs, min, quartiles, max, in ms — to judge how noisy a median is."""
    lines = [
        "| contender | n | min | p25 | median | p75 | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, values in samples.seconds.items():
        ordered = sorted(values)
        if len(ordered) >= 2:
            p25, p50, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            p25 = p50 = p75 = ordered[0]
        figures = (ordered[0], p25, p50, p75, ordered[-1])
        cells = [key, str(len(ordered)), *(_ms(value) for value in figures)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def groups() -> list[str]:
    seen: list[str] = []
    for scenario in SCENARIOS:
        if scenario.group not in seen:
            seen.append(scenario.group)
    return seen


def report_document(
    samples: Samples, contexts: Mapping[str, Context], rounds: int
) -> dict[str, Any]:
    scenarios = []
    for group in groups():
        for row in build_rows(samples, group):
            scenarios.append({
                "scenario": row.scenario.name,
                "group": group,
                "median_seconds": row.medians,
                "ratios": row.ratios,
                "targets": [
                    {"library": target.library, "max_ratio": target.ratio, "passed": ok}
                    for target, ok in row.verdicts
                ],
                "passed": row.passed,
            })
    directory = contexts.get(DIRECTORY)
    entry = contexts.get(ENTRY_POINTS)
    return {
        "python": sys.version,
        "platform": platform.platform(),
        "modules": directory.modules if directory is not None else None,
        "distributions": entry.distributions if entry is not None else None,
        "rounds": rounds,
        "samples_seconds": samples.seconds,
        "scenarios": scenarios,
    }


def _load_average() -> str:
    """The 1-minute load average, to judge whether other work disturbed a run."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "unknown"


def directory_context(workdir: Path, modules: int) -> Context:
    """The directory corpus and a private per-user cache, for the runner's own interpreter."""
    workdir.mkdir()
    corpus_root = make_corpus(workdir / "corpus", modules)
    user_cache = workdir / "user-cache"
    user_cache.mkdir()
    return Context(
        workdir=workdir,
        corpus_root=corpus_root,
        plugin_dir=plugin_directory(corpus_root),
        user_cache=user_cache,
        modules=modules,
    )


def entry_point_context(workdir: Path, distributions: int, python: Path) -> Context:
    """The entry-point corpus (one site directory), private caches, an empty working
    directory, and the bench venv's interpreter."""
    workdir.mkdir()
    site = make_entry_corpus(workdir / "site", distributions)
    quiet = workdir / "quiet"
    user_cache = workdir / "user-cache"
    xdg_cache = workdir / "xdg-cache"
    for path in (quiet, user_cache, xdg_cache):
        path.mkdir()
    return Context(
        workdir=workdir,
        corpus_root=site,
        plugin_dir=host_plugin_directory(site),
        user_cache=user_cache,
        modules=0,
        python=str(python),
        cwd=quiet,
        distributions=distributions,
        xdg_cache=xdg_cache,
    )


def _describe_group(group: str, context: Context, libraries: dict[str, str]) -> str:
    if group == DIRECTORY:
        return (
            f"{context.modules} plugin modules; {libraries['executable']}: Python "
            f"{libraries['python']}, Twisted {libraries['twisted']}, compat_plugin from "
            f"{libraries['compat_plugin']}"
        )
    return (
        f"{context.distributions} distributions on one sys.path entry, "
        f"{len(plugin_modules(context.distributions))} declaring {GROUP} entry points; "
        f"{libraries['executable']}: Python {libraries['python']}, importlib.metadata "
        f"{libraries['importlib.metadata']}, stevedore {libraries['stevedore']}, "
        f"zope.interface {libraries['zope.interface']}, compat_plugin from "
        f"{libraries['compat_plugin']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time compat_plugin against other loaders.")
    parser.add_argument("--modules", type=int, default=1000, help="plugin modules in the corpus")
    parser.add_argument("--distributions", type=int, default=1000,
                        help="installed distributions in the entry-point corpus")
    parser.add_argument("--rounds", type=int, default=15, help="timed runs of each contender")
    parser.add_argument("--json", type=Path, help="also write all samples and results here")
    parser.add_argument(
        "--only", action="append", default=[], metavar="SCENARIO",
        help="run only scenarios whose name or group contains this (repeatable)",
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="the venv (outside /tmp) the entry-point children run in")
    args = parser.parse_args(argv)

    def selected(contender: Contender) -> bool:
        group = scenario_named(contender.scenario).group
        return not args.only or any(
            part in contender.scenario or part in group for part in args.only
        )

    contenders = [contender for contender in CONTENDERS if selected(contender)]
    wanted_groups = [
        group for group in groups()
        if any(scenario_named(c.scenario).group == group for c in contenders)
    ]
    if not wanted_groups:
        print(f"no scenario matches {args.only}", file=sys.stderr)
        return 2
    python = ensure_venv(args.venv) if ENTRY_POINTS in wanted_groups else None
    started = time.monotonic()
    load_before = _load_average()
    cache_notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="compat-plugin-bench-") as temporary:
        contexts: dict[str, Context] = {}
        if DIRECTORY in wanted_groups:
            contexts[DIRECTORY] = directory_context(Path(temporary) / "directory", args.modules)
        if python is not None:
            contexts[ENTRY_POINTS] = entry_point_context(
                Path(temporary) / "entry-points", args.distributions, python
            )
        libraries = {group: describe_libraries(context) for group, context in contexts.items()}
        entry = contexts.get(ENTRY_POINTS)

        def check_caches() -> None:
            if entry is not None:
                notes = check_entry_point_caches(entry)
                if not cache_notes:
                    cache_notes.extend(notes)
                    for note in notes:
                        print(note, file=sys.stderr, flush=True)

        try:
            samples = measure(contenders, contexts, args.rounds, after_warmup=check_caches)
            check_caches()
        except ChildFailed as exc:
            print(f"a benchmark child failed: {exc}", file=sys.stderr)
            return 1
        # Every plugin directory is writable, so no fallback cache file should appear.
        fallbacks = sorted(
            path.name for context in contexts.values() for path in context.user_cache.glob("*.json")
        )
    if fallbacks:
        print(f"warning: per-user fallback cache was written: {fallbacks}", file=sys.stderr)
    elapsed = time.monotonic() - started
    load_after = _load_average()
    print(
        f"\n{args.rounds} rounds, medians; {elapsed:.0f} s in all; 1-minute load average "
        f"{load_before} before, {load_after} after on {os.cpu_count()} CPUs"
    )
    for group, context in contexts.items():
        rows = [row for row in build_rows(samples, group) if row.medians[SUBJECT] is not None]
        if rows:
            print(f"\n{group}: {_describe_group(group, context, libraries[group])}")
            if group == ENTRY_POINTS:
                for note in cache_notes:
                    print(note)
            print()
            print(markdown_table(rows, group_libraries(group)))
    print()
    print(spread_table(samples))
    if args.json is not None:
        document = report_document(samples, contexts, args.rounds)
        document["libraries"] = libraries
        document["caches"] = cache_notes
        document["load_average"] = {"before": load_before, "after": load_after}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
