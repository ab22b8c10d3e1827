"""Where one compat_plugin ``getPlugins`` call spends its time, stage by stage.

Usage: ``python benchmarks/breakdown.py [--modules 1000] [--runs 9] [--query IA|INobody]
[--cold] [--without-twisted] [--cprofile N] [--entry [--distributions 1000] [--venv DIR]]``

Each run is a fresh interpreter, prepared as ``run.py`` prepares its compat_plugin children.
Before the clock starts the child wraps selected library functions (looked up by module and
attribute name; the library itself is not changed) in ``time.perf_counter`` accumulators, then
makes one call and prints the time spent inside each.  Stages nest: a stage's figure includes
those of the stages listed under it.  Wrapping costs well under a microsecond per call, so
stages called a thousand times read a few tenths of a millisecond high.

``--without-twisted`` leaves ``twisted.plugin`` unimported before the clock (the matching plugin
modules import it themselves); ``--cprofile N`` also prints the top N functions by own time from
one extra profiled run.

``--entry`` times the entry-point scenario of ``run.py`` instead: its corpus, its venv
interpreter and working directory, and stages of the entry-point path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from benchvenv import DEFAULT_VENV, ensure_venv
from corpus import make_corpus, matching_modules, plugin_directory
from entry_corpus import plugin_modules
from run import Contender, Context, clear_compat_cache, entry_point_context, run_child


@dataclass(frozen=True)
class Stage:
    """A function to time: ``module.attribute`` (``attribute`` may be ``Class.method``)."""

    label: str
    module: str
    attribute: str
    depth: int = 0


STAGES: tuple[Stage, ...] = (
    Stage("resolve: records for every module", "compat_plugin._resolver", "resolve", 0),
    Stage("current_index: entry points", "compat_plugin._resolver", "current_index", 1),
    Stage("path_stamps: stat sys.path", "compat_plugin._entrypoints", "path_stamps", 2),
    Stage("read_index", "compat_plugin._entrypoints", "read_index", 2),
    Stage("build_index", "compat_plugin._entrypoints", "build_index", 2),
    Stage("_directory_modules", "compat_plugin._resolver", "_directory_modules", 1),
    Stage("list_directory: scandir + stat", "compat_plugin._resolver", "list_directory", 2),
    Stage("read_entries: read + parse + check file", "compat_plugin._cache", "read_entries", 2),
    Stage("json.loads, from anywhere", "json", "loads", 3),
    Stage("DirectoryCache.select", "compat_plugin._cache", "DirectoryCache.select", 2),
    Stage("DirectoryCache.lookup", "compat_plugin._cache", "DirectoryCache.lookup", 3),
    Stage("decode: details -> records", "compat_plugin._resolver", "decode", 2),
    Stage("import_plugin_module (cold)", "compat_plugin._resolver", "import_plugin_module", 2),
    Stage("scan_module (cold)", "compat_plugin._resolver", "scan_module", 2),
    Stage("DirectoryCache.save", "compat_plugin._cache", "DirectoryCache.save", 2),
    Stage("encode", "compat_plugin._cache", "encode", 3),
    Stage("write_atomic", "compat_plugin._cache", "write_atomic", 3),
    Stage("_entry_point_modules", "compat_plugin._resolver", "_entry_point_modules", 1),
    Stage("save_index", "compat_plugin._resolver", "save_index", 1),
    Stage("_deduplicated", "compat_plugin._resolver", "_deduplicated", 1),
    Stage("_matches: query vs record", "compat_plugin._resolver", "_matches", 0),
    Stage("_registry_adapts", "compat_plugin._resolver", "_registry_adapts", 1),
    Stage("load: import + check plugin", "compat_plugin._resolver", "load", 0),
    Stage("importlib.import_module, from anywhere", "importlib", "import_module", 1),
    Stage("interface_names (recheck)", "compat_plugin._resolver", "interface_names", 1),
)

# A warm entry-point call: an index read, then one module per entry point.  Functions imported
# by name are wrapped in the module that calls them.
ENTRY_STAGES: tuple[Stage, ...] = (
    Stage("resolve: records for every module", "compat_plugin._resolver", "resolve", 0),
    Stage("Rules(): disable patterns", "compat_plugin._legacy", "Rules", 0),
    Stage("_adapters_to", "compat_plugin._resolver", "_adapters_to", 1),
    Stage("identifier + dump_json (wanted)", "compat_plugin._resolver", "dump_json", 1),
    Stage("current_index: entry points", "compat_plugin._resolver", "current_index", 1),
    Stage("path_stamps: stat sys.path", "compat_plugin._entrypoints", "path_stamps", 2),
    Stage("read_index", "compat_plugin._entrypoints", "read_index", 2),
    Stage("index_path (digest of sys.path)", "compat_plugin._entrypoints", "index_path", 3),
    Stage("parse_json", "compat_plugin._entrypoints", "parse_json", 3),
    Stage("_valid_spec (per spec)", "compat_plugin._entrypoints", "_valid_spec", 3),
    Stage("entry_from (per scanned)", "compat_plugin._entrypoints", "entry_from", 3),
    Stage("dump_json (checksum text)", "compat_plugin._entrypoints", "dump_json", 3),
    Stage("zlib.crc32, from anywhere", "zlib", "crc32", 3),
    Stage("read_bytes: index and metadata files", "compat_plugin._entrypoints", "read_bytes",
          2),
    Stage("_distribution_dirs (must be 0)", "compat_plugin._entrypoints", "_distribution_dirs", 2),
    Stage("build_index (must be 0)", "compat_plugin._entrypoints", "build_index", 2),
    Stage("_directory_modules (empty dir)", "compat_plugin._resolver", "_directory_modules", 1),
    Stage("list_directory", "compat_plugin._resolver", "list_directory", 2),
    Stage("DirectoryCache.save", "compat_plugin._cache", "DirectoryCache.save", 2),
    Stage("_entry_point_modules", "compat_plugin._resolver", "_entry_point_modules", 1),
    Stage("EntryPointSpec.target", "compat_plugin._entrypoints", "EntryPointSpec.target", 2),
    Stage("_entry_point_module", "compat_plugin._resolver", "_entry_point_module", 2),
    Stage("file_candidate: stat module", "compat_plugin._resolver", "file_candidate", 3),
    Stage("decode: details -> records", "compat_plugin._resolver", "decode", 3),
    Stage("declared: reread entry_points.txt", "compat_plugin._resolver", "declared", 3),
    Stage("_scanned (must be 0)", "compat_plugin._resolver", "_scanned", 3),
    Stage("save_index", "compat_plugin._resolver", "save_index", 1),
    Stage("_deduplicated", "compat_plugin._resolver", "_deduplicated", 1),
    Stage("_matches: query vs record", "compat_plugin._resolver", "_matches", 0),
    Stage("load: import + check plugin", "compat_plugin._resolver", "load", 0),
    Stage("importlib.import_module, from anywhere", "importlib", "import_module", 1),
    Stage("resolve_attribute", "compat_plugin._resolver", "resolve_attribute", 1),
)

# Installs the accumulators.  Functions are rebound where their callers look them up: the
# module attribute named by each stage.
_INSTRUMENT = """
import importlib as _importlib
import time as _time

_spent = {}
_calls = {}
_missing = []


def _wrap(label, function):
    clock = _time.perf_counter

    def timed(*args, **kwargs):
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[label] = _spent.get(label, 0.0) + clock() - start
            _calls[label] = _calls.get(label, 0) + 1

    return timed


for _label, _module_name, _attribute in $stages:
    _owner = _importlib.import_module(_module_name)
    *_path, _name = _attribute.split(".")
    for _part in _path:
        _owner = getattr(_owner, _part, None)
    _function = getattr(_owner, _name, None) if _owner is not None else None
    if _function is None:
        _missing.append(_label)
    else:
        setattr(_owner, _name, _wrap(_label, _function))
"""

_SETUP = """
import importlib
import benchcorpus.plugins
from benchcorpus.ifaces import IA, IB, INobody
$twisted
from compat_plugin import getPlugins
"""

# As run.py's entry-point children: the plugins import compat_plugin and the host's interfaces.
_ENTRY_SETUP = """
import importlib
import zope.interface
import compat_plugin
import epcorpus.plugins
from epcorpus.ifaces import IA, INobody
from compat_plugin import getPlugins
"""


@dataclass(frozen=True)
class Subject:
    """What is timed: the setup before the clock, the plugin package, the stages."""

    setup: str
    package: str
    stages: tuple[Stage, ...]


DIRECTORY_SUBJECT = Subject(_SETUP, "benchcorpus.plugins", STAGES)
ENTRY_SUBJECT = Subject(_ENTRY_SETUP, "epcorpus.plugins", ENTRY_STAGES)

_PROFILE = """
import cProfile as _cProfile
import io as _io
import pstats as _pstats
_profile = _cProfile.Profile()
_profile.enable()
found = list(getPlugins($query, $package))
_profile.disable()
_out = _io.StringIO()
_pstats.Stats(_profile, stream=_out).sort_stats("tottime").print_stats($limit)
print(_out.getvalue())
"""


def _setup(subject: Subject, with_twisted: bool, instrument: bool) -> str:
    code = Template(subject.setup).substitute(
        twisted="import twisted.plugin" if with_twisted else ""
    )
    if instrument:
        stages = repr([(stage.label, stage.module, stage.attribute) for stage in subject.stages])
        code += Template(_INSTRUMENT).substitute(stages=stages)
    return code


def contender(subject: Subject, query: str, cold: bool, with_twisted: bool) -> Contender:
    return Contender(
        "breakdown",
        "compat_plugin",
        _setup(subject, with_twisted, instrument=True),
        f"found = list(getPlugins({query}, {subject.package}))",
        result='{"found": len(found), "spent": _spent, "calls": _calls, "missing": _missing}',
        prepare=clear_compat_cache if cold else None,
    )


def profile_once(
    context: Context, subject: Subject, query: str, cold: bool, with_twisted: bool, limit: int
) -> str:
    if cold:
        clear_compat_cache(context)
    code = _setup(subject, with_twisted, instrument=False) + Template(_PROFILE).substitute(
        query=query, limit=limit, package=subject.package
    )
    completed = context.run_child(code, check=True)
    return completed.stdout


def report(reports: list[dict[str, Any]], totals: list[float], stages: tuple[Stage, ...]) -> str:
    lines = [
        "| stage | calls | median ms | min ms |",
        "|---|---:|---:|---:|",
        f"| whole call, instrumented | 1 | {statistics.median(totals) * 1000:.2f} | "
        f"{min(totals) * 1000:.2f} |",
    ]
    for stage in stages:
        values = [float(item["spent"].get(stage.label, 0.0)) for item in reports]
        calls = reports[0]["calls"].get(stage.label, 0)
        if not any(values):
            continue
        name = "· " * (stage.depth + 1) + stage.label
        cells = [name, str(calls), f"{statistics.median(values) * 1000:.2f}",
                 f"{min(values) * 1000:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the stages of one getPlugins call.")
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--query", choices=("IA", "IB", "INobody"), default="IA")
    parser.add_argument("--cold", action="store_true", help="remove the cache before each run")
    parser.add_argument("--without-twisted", action="store_true")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N")
    parser.add_argument("--entry", action="store_true",
                        help="the entry-point scenario of run.py instead of the directory one")
    parser.add_argument("--distributions", type=int, default=1000)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args(argv)
    if args.entry and args.query == "IB":
        parser.error("the entry-point corpus has no IB")
    with_twisted = not args.without_twisted and not args.entry
    subject = ENTRY_SUBJECT if args.entry else DIRECTORY_SUBJECT
    python = ensure_venv(args.venv) if args.entry else None
    with tempfile.TemporaryDirectory(prefix="compat-plugin-breakdown-") as temporary:
        workdir = Path(temporary)
        if python is not None:
            context = entry_point_context(workdir / "entry-points", args.distributions, python)
        else:
            corpus_root = make_corpus(workdir / "corpus", args.modules)
            user_cache = workdir / "user-cache"
            user_cache.mkdir()
            context = Context(workdir, corpus_root, plugin_directory(corpus_root), user_cache,
                              args.modules)
        timed = contender(subject, args.query, args.cold, with_twisted)
        run_child(timed, context)  # compile the corpus, write the cache
        reports: list[dict[str, Any]] = []
        totals: list[float] = []
        for _ in range(args.runs):
            seconds, result = run_child(timed, context)
            assert isinstance(result, dict)
            reports.append(result)
            totals.append(seconds)
        profile = ""
        if args.cprofile:
            profile = profile_once(context, subject, args.query, args.cold, with_twisted,
                                   args.cprofile)
    if args.entry:
        expected: int | None = {"IA": len(plugin_modules(args.distributions)), "INobody": 0}.get(
            args.query
        )
        corpus = f"{args.distributions} distributions (entry points)"
    else:
        expected = {"IA": len(matching_modules(args.modules)), "INobody": 0}.get(args.query)
        corpus = f"{args.modules} modules"
    found = reports[0]["found"]
    state = "cold" if args.cold else "warm"
    twisted = "imported" if with_twisted else "not imported"
    print(f"{state} getPlugins({args.query}) over {corpus}, twisted.plugin "
          f"{twisted} before the call, {args.runs} runs; found {found}"
          + (f" (expected {expected})" if expected is not None and expected != found else ""))
    if reports[0]["missing"]:
        print(f"not found in this version of the library: {json.dumps(reports[0]['missing'])}")
    print()
    print(report(reports, totals, subject.stages))
    if profile:
        print()
        print(profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
