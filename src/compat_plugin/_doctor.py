"""``compat-plugin doctor``: why each plugin is or is not loaded, what the caches hold, what
each plugin module costs to import, and which plugins claim the same name.

The report is built from the same discovery a call makes; timings come from child
interpreters (so the caller's process is not changed by them), many at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, NamedTuple

from ._children import captured
from ._inventory import CacheState, cache_states
from ._matching import answering
from ._output import (
    cache_columns,
    count,
    short_path,
    source,
    table,
    unexported_reason,
    width,
)
from ._records import Discovery, LoadError, Origin

#: Attributes by which hosts tell plugins apart: twistd's tapname, an endpoint parser's
#: prefix, a trial reporter's longOpt.
DEFAULT_KEYS = ("tapname", "prefix", "longOpt")

# Interfaces every plugin provides: asking for them says nothing about a host's use.
_MARKERS = frozenset({"compat_plugin.IPlugin", "twisted.plugin.IPlugin",
                      "zope.interface.Interface"})


class Fate(NamedTuple):
    """What became of one candidate: ``fate`` is one of ``returned``, ``shadowed``,
    ``duplicate``, ``disabled``, ``incompatible``, ``failed``, ``not a plugin``,
    ``malformed``; ``detail`` says by what, why, or with which exception; ``line`` is where
    the plugin's own code raised, if it did."""

    target: str
    fate: str
    origin: Origin
    detail: str
    line: str


class Clash(NamedTuple):
    """Plugins claiming the same ``value`` of the attribute ``key``."""

    key: str
    value: str
    plugins: tuple[str, ...]


class Call(NamedTuple):
    """What a ``getPlugins`` of ``interface`` does: the modules a warm call imports, and how
    long a warm call and a cold one (no cache: every plugin module imported) take, measured in
    fresh interpreters, in seconds (None where the measurement failed)."""

    interface: str
    imports: tuple[str, ...]
    warm: float | None
    cold: float | None


class Report(NamedTuple):
    """The doctor's report on one plugin package."""

    package: str
    fates: tuple[Fate, ...]
    caches: tuple[CacheState, ...]
    costs: tuple[tuple[str, float | None], ...]
    calls: tuple[Call, ...]
    clashes: tuple[Clash, ...]

    @property
    def problems(self) -> list[str]:
        """What a CI job should fail on: candidates that failed or are not plugins, caches
        that are stale where nothing can rewrite them (for more than modules that fail to
        import: no cache holds those, a rewrite would not help), and name clashes."""
        found = [f"{f.fate}: {f.target}" for f in self.fates if f.fate in _BAD_FATES]
        failing = {f.target for f in self.fates if f.fate == "failed"}
        found += [f"stale and not writable: {c.place}" for c in self.caches
                  if c.written and not c.current and not c.writable
                  and not (c.stale and {f"{c.package}.{name}" for name in c.stale} <= failing)]
        found += [f"{c.key} {c.value!r} claimed by {', '.join(c.plugins)}" for c in self.clashes]
        return found


_BAD_FATES = frozenset({"incompatible", "failed", "not a plugin", "malformed"})


def examine(package: ModuleType, keys: Sequence[str] = DEFAULT_KEYS) -> Report:
    """The report on ``package``: caches as found, then a discovery (which rewrites stale
    caches where it can), then the plugins' names and the costs measured in children."""
    from ._resolver import resolver

    caches = tuple(cache_states(package))
    found = resolver().resolve(package)
    fates = tuple(_fates(found))
    costs = module_costs(package, _modules(found))
    calls = tuple(_calls(package, found))
    return Report(package.__name__, fates, caches, costs, calls, tuple(clashes(found, keys)))


def _fates(found: Discovery) -> Iterable[Fate]:
    for record in found.plugins:
        yield Fate(record.qualified_name, "returned", record.origin, "", "")
    for module in found.modules:
        detail = unexported_reason(module)
        if detail is not None:
            yield Fate(module.module, "not a plugin", module.origin, detail, "")
    for skip in found.skipped:
        yield Fate(skip.target, skip.reason.split(" ", 1)[0], skip.origin, skip.reason, "")
    for error in found.errors:
        yield _failure(error)


def _failure(error: LoadError) -> Fate:
    fate = {"incompatible with the host": "incompatible", "not a plugin": "not a plugin",
            "malformed entry point": "malformed"}.get(error.kind, "failed")
    detail = f"{type(error.error).__name__}: {error.error}"
    return Fate(error.target, fate, error.origin, detail, error.raised_at())


def _modules(found: Discovery) -> list[str]:
    """The plugin modules a cold call imports, in resolution order."""
    names = [module.module for module in found.modules]
    names += [error.target for error in found.errors if error.kind == "import error"]
    return list(dict.fromkeys(names))


def clashes(found: Discovery, keys: Sequence[str]) -> Iterable[Clash]:
    """Plugins of one interface whose ``key`` attributes have the same value (loaded to be
    asked): a host looking plugins up by that name would see only one of them."""
    from ._api import load

    claims: dict[tuple[str, str, str], list[str]] = {}
    for record in found.plugins:
        try:
            plugin = load(record)
        except Exception:
            continue
        for key in keys:
            value = getattr(plugin, key, None)
            if not isinstance(value, str):
                continue
            for interface in set(record.provided) - _MARKERS:
                claims.setdefault((key, value, interface), []).append(record.qualified_name)
    for (key, value, _), plugins in sorted(claims.items()):
        if len(plugins) > 1:
            yield Clash(key, value, tuple(plugins))


def _calls(package: ModuleType, found: Discovery) -> Iterable[Call]:
    interfaces = sorted({name for r in found.plugins for name in r.provided} - _MARKERS)
    warm = _measure(package, interfaces, cold=False)
    cold = _measure(package, interfaces, cold=True)
    for interface in interfaces:
        imports = tuple(dict.fromkeys(r.module for r in answering(found.plugins, interface)))
        yield Call(interface, imports, warm.get(interface), cold.get(interface))


# -- measured in children -----------------------------------------------------------------------

_COST = """\
import sys, time
import importlib
import {package}
start = time.perf_counter()
try:
    importlib.import_module({module!r})
except BaseException:
    print("null")
else:
    print(time.perf_counter() - start)
"""

_CALL = """\
import importlib, time
import {package} as package
interface_module, _, name = {interface!r}.rpartition(".")
interface = getattr(importlib.import_module(interface_module), name)
start = time.perf_counter()
from compat_plugin import getPlugins
list(getPlugins(interface, package))
print(time.perf_counter() - start)
"""


def module_costs(package: ModuleType, modules: Sequence[str]) -> tuple[tuple[str, float | None],
                                                                        ...]:
    """The cold import time of each module, each in a fresh interpreter that has imported
    the plugin package first; None where the import fails.  Slowest first."""
    codes = [_COST.format(package=package.__name__, module=module) for module in modules]
    times = _children(codes)
    return tuple(sorted(zip(modules, times), key=lambda item: -(item[1] or 0.0)))


def _measure(package: ModuleType, interfaces: Sequence[str], cold: bool
             ) -> dict[str, float | None]:
    codes = [_CALL.format(package=package.__name__, interface=name) for name in interfaces]
    # Cold: no cache read, none written, as a process with no caches at all.
    quiet = {"COMPAT_PLUGIN_NO_CACHE_READ": "1", "COMPAT_PLUGIN_NO_CACHE_WRITE": "1"}
    return dict(zip(interfaces, _children(codes, quiet if cold else {})))


def _children(codes: Sequence[str], env: dict[str, str] | None = None) -> list[float | None]:
    """Run each code in a fresh interpreter, as many at once as there are CPUs; the number
    each printed last (None if it failed)."""
    environment = {**os.environ, **(env or {})}
    # The children's sys.path is this process's, so they find what it found; and they use the
    # caches it uses: those of its optimization level, where its pycache prefix puts them
    # (set by options, ``-O`` and ``-X pycache_prefix``, these would be lost).
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str))
    for name, value in (("PYTHONOPTIMIZE", sys.flags.optimize or None),
                        ("PYTHONPYCACHEPREFIX", sys.pycache_prefix)):
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = str(value)
    # Nor may they add to that path (the working directory, the user's site directory, the
    # site directories), or write bytecode, where this process does not.
    options = [option for option, given in (
        ("-B", sys.dont_write_bytecode), ("-s", sys.flags.no_user_site),
        ("-S", sys.flags.no_site), ("-P", getattr(sys.flags, "safe_path", False))) if given]

    def run(code: str) -> float | None:
        try:
            result = captured([sys.executable, *options, "-c", code], env=environment,
                              timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = result.stdout.split()
        value = json.loads(lines[-1]) if result.returncode == 0 and lines else None
        return float(value) if isinstance(value, (int, float)) else None

    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        return list(pool.map(run, codes))


def report_json(report: Report) -> dict[str, Any]:
    """The report as ``doctor --json`` prints it (documented in the README)."""
    return {
        "package": report.package,
        "candidates": [{"target": f.target, "fate": f.fate, "origin": dict(f.origin._asdict()),
                        "detail": f.detail, "raised_at": f.line or None} for f in report.fates],
        "caches": [state._asdict() for state in report.caches],
        "costs": [{"module": module, "seconds": seconds} for module, seconds in report.costs],
        "calls": [call._asdict() for call in report.calls],
        "clashes": [clash._asdict() for clash in report.clashes],
        "problems": report.problems,
    }


# -- as text ----------------------------------------------------------------------------------


def report_text(report: Report, wide: bool) -> str:
    """The report as ``doctor`` prints it: a section per concern, then a summary line."""
    limit = width(wide)
    cut = None if limit is None else limit - 2  # the tables are indented by two columns
    sections = [report.package]
    fates: list[Sequence[str]] = [
        (f.fate, f.target, source(f.origin, wide),
         f.detail + (f" (raised at {short_path(f.line, wide)})" if f.line else ""))
        for f in report.fates
    ]
    sections += ["candidates:", _indented(table(("FATE", "CANDIDATE", "FROM", "WHY"), fates,
                                                 cut))]
    caches: list[Sequence[str]] = []
    for state in report.caches:
        described, where, place = cache_columns(state, wide)
        caches.append((described, where, _cache_state(state), place))
    sections += ["caches:", _indented(table(("FOR", "CACHE", "STATE", "FILE"), caches, cut))]
    costs: list[Sequence[str]] = [(_ms(seconds), module) for module, seconds in report.costs]
    sections += ["import cost of each module (cold, in a fresh interpreter):",
                 _indented(table(("MS", "MODULE"), costs, cut))]
    calls: list[Sequence[str]] = [
        (call.interface, _ms(call.warm), _ms(call.cold), ", ".join(call.imports) or "-")
        for call in report.calls
    ]
    sections += ["getPlugins of each interface the plugins provide:",
                 _indented(table(("INTERFACE", "WARM MS", "COLD MS", "A WARM CALL IMPORTS"),
                                  calls, cut))]
    clashes = [f"{c.key} {c.value!r}: {', '.join(c.plugins)}" for c in report.clashes]
    sections += ["name clashes:", _indented("\n".join(clashes) or "none")]
    sections.append(_summary(report))
    return "\n".join(sections) + "\n"


def _cache_state(state: CacheState) -> str:
    if not state.written:
        return "not written" + ("" if state.writable else " (not writable)")
    if not state.current:
        current = f"stale: {state.why}"
    else:  # a current index may say what it could not read
        current = f"current ({state.why})" if state.why else "current"
    return f"{current}, {'writable' if state.writable else 'not writable'}"


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.1f}"


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _summary(report: Report) -> str:
    counts: dict[str, int] = {}
    for fate in report.fates:
        counts[fate.fate] = counts.get(fate.fate, 0) + 1
    told = ", ".join(f"{number} {fate}" for fate, number in counts.items()) or "none"
    problems = report.problems
    verdict = "healthy" if not problems else f"{count(len(problems), 'problem')}"
    clashes = count(len(report.clashes), "name clash", "name clashes")
    return f"summary: {count(len(report.fates), 'candidate')} ({told}); {clashes}: {verdict}"
