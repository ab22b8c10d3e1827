"""Time compat_plugin against twisted.plugin and a hand-written floor, each call in a new process.

Usage: ``python benchmarks/run.py [--modules 1000] [--rounds 15] [--json OUT]``

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

The plugin modules import ``twisted.plugin`` (they declare Twisted's ``IPlugin``), so every
corpus child imports it before the clock: otherwise whichever contender first imports a plugin
module would also pay for importing Twisted.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Callable, Optional

from corpus import PLUGIN_PACKAGE, make_corpus, matching_modules, plugin_directory

SUBJECT = "compat_plugin"
TWISTED = "twisted.plugin"
FLOOR = "floor"


@dataclass(frozen=True)
class Context:
    """What the snippets and preparation steps of one run can refer to."""

    workdir: Path
    corpus_root: Path
    plugin_dir: Path
    user_cache: Path
    modules: int

    def substitutions(self) -> dict[str, str]:
        """Values for ``$name`` placeholders in snippets, as Python literals."""
        return {
            "plugin_package": repr(PLUGIN_PACKAGE),
            "matching": repr(frozenset(matching_modules(self.modules))),
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
        return env


Prepare = Callable[[Context], None]
Expectation = Callable[[Context], object]


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
    prepare: Optional[Prepare] = None
    expect: Optional[Expectation] = None

    @property
    def key(self) -> str:
        return f"{self.scenario} | {self.library}"


@dataclass(frozen=True)
class Target:
    """compat_plugin's median must be at most ``ratio`` times ``library``'s."""

    library: str
    ratio: float

    def describe(self) -> str:
        return f"≤{self.ratio:g}× {self.library}"


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    targets: tuple[Target, ...]
    expect: Optional[Expectation] = None


# --- preparation steps run by the parent before a child ---------------------------------------


def clear_compat_cache(context: Context) -> None:
    """Remove compat_plugin's cache files for the corpus, keeping the compiled modules."""
    for path in (context.plugin_dir / "__pycache__").glob("compat_plugin.*.json"):
        path.unlink()
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

# Scandir, stat every module source, import those named in ``wanted``.
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
    Scenario("import", "directory", (Target(TWISTED, 0.35),)),
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
    Contender("import", SUBJECT, "", "import compat_plugin"),
    Contender("import", TWISTED, "", "import twisted.plugin"),
    # Not a target: the one dependency compat_plugin cannot avoid.
    Contender("import", FLOOR, "", "import zope.interface"),
)

_CHILD = """\
import json as _json
import time as _time
$setup
_start = _time.perf_counter()
$timed
_elapsed = _time.perf_counter() - _start
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
    completed = subprocess.run(
        [sys.executable, "-c", child_code(contender, context)],
        env=context.environment(),
        cwd=context.workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise ChildFailed(
            f"{contender.key}: exit status {completed.returncode}\n{completed.stderr}"
        )
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise ChildFailed(f"{contender.key}: printed nothing\n{completed.stderr}")
    report: dict[str, Any] = json.loads(lines[-1])
    return float(report["seconds"]), report["result"]


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

    def median(self, scenario: str, library: str) -> Optional[float]:
        values = self.seconds.get(f"{scenario} | {library}")
        return statistics.median(values) if values else None


def measure(
    contenders: Sequence[Contender], context: Context, rounds: int, progress: bool = True
) -> Samples:
    """Warm up every contender once, then run ``rounds`` rotated rounds of all of them."""
    for contender in contenders:
        _, result = run_child(contender, context)
        check_result(contender, context, result)
    samples = Samples()
    count = len(contenders)
    for round_number in range(rounds):
        shift = round_number % count if count else 0
        order = [*contenders[shift:], *contenders[:shift]]
        for contender in order:
            seconds, result = run_child(contender, context)
            check_result(contender, context, result)
            samples.add(contender, seconds)
        if progress:
            print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return samples


# --- reporting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    medians: dict[str, Optional[float]]
    ratios: dict[str, Optional[float]]
    verdicts: tuple[tuple[Target, Optional[bool]], ...]

    @property
    def passed(self) -> Optional[bool]:
        if any(ok is None for _, ok in self.verdicts):
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
        subject = medians[SUBJECT]
        ratios: dict[str, Optional[float]] = {}
        for library in libraries[1:]:
            other = medians[library]
            ratios[library] = subject / other if subject is not None and other else None
        verdicts = tuple((target, _within(ratios.get(target.library), target)) for target in
                         scenario.targets)
        rows.append(Row(scenario, medians, ratios, verdicts))
    return rows


def _within(ratio: Optional[float], target: Target) -> Optional[bool]:
    return None if ratio is None else ratio <= target.ratio


def _ms(value: Optional[float]) -> str:
    return "—" if value is None else f"{value * 1000:.2f}"


def _ratio(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}×"


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
        cells = [key, str(len(ordered)), *(_ms(v) for v in (ordered[0], p25, p50, p75, ordered[-1]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def groups() -> list[str]:
    seen: list[str] = []
    for scenario in SCENARIOS:
        if scenario.group not in seen:
            seen.append(scenario.group)
    return seen


def report_document(samples: Samples, context: Context, rounds: int) -> dict[str, Any]:
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
    return {
        "python": sys.version,
        "platform": platform.platform(),
        "modules": context.modules,
        "rounds": rounds,
        "samples_seconds": samples.seconds,
        "scenarios": scenarios,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Time compat_plugin against twisted.plugin.")
    parser.add_argument("--modules", type=int, default=1000, help="plugin modules in the corpus")
    parser.add_argument("--rounds", type=int, default=15, help="timed runs of each contender")
    parser.add_argument("--json", type=Path, help="also write all samples and results here")
    parser.add_argument(
        "--only", action="append", default=[], metavar="SCENARIO",
        help="run only scenarios whose name contains this (repeatable)",
    )
    args = parser.parse_args(argv)
    contenders = [
        contender for contender in CONTENDERS
        if not args.only or any(part in contender.scenario for part in args.only)
    ]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="compat-plugin-bench-") as temporary:
        workdir = Path(temporary)
        corpus_root = make_corpus(workdir / "corpus", args.modules)
        user_cache = workdir / "user-cache"
        user_cache.mkdir()
        context = Context(
            workdir=workdir,
            corpus_root=corpus_root,
            plugin_dir=plugin_directory(corpus_root),
            user_cache=user_cache,
            modules=args.modules,
        )
        samples = measure(contenders, context, args.rounds)
        leftovers = sorted(path.name for path in user_cache.iterdir())
    if leftovers:
        print(f"warning: per-user cache was written: {leftovers}", file=sys.stderr)
    elapsed = time.monotonic() - started
    print(
        f"\n{args.modules} plugin modules, {args.rounds} rounds, medians; "
        f"Python {platform.python_version()}; {elapsed:.0f} s in all\n"
    )
    for group in groups():
        rows = build_rows(samples, group)
        if any(value is not None for row in rows for value in row.medians.values()):
            print(markdown_table(rows, group_libraries(group)))
            print()
    print(spread_table(samples))
    if args.json is not None:
        document = report_document(samples, context, args.rounds)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
