"""Time compat_plugin against other plugin loaders and a hand-written floor, each call in a
fresh process, side by side in one run, as ratios.

Usage: ``python benchmarks/run.py [--rounds 15] [--only NAME] [--venv DIR] [--json OUT]``
(``--only`` runs the scenarios or groups whose name contains NAME; repeatable).

Groups, each with its own corpus (see ``corpus.py``, ``entry_corpus.py``) and table:

- *directory*: 1000 plugin modules in one plugin directory, 10% providing the asked
  interface, against ``twisted.plugin``; cold rows clear the directory's caches (or, for "no
  cache at all", every cache compat_plugin keeps); the import row times
  ``from compat_plugin import getPlugins`` after ``import zope.interface``.
- *site-wide*: 200 plugin modules whose caches root regenerated (``compat-plugin cache
  regenerate``, and Twisted's ``getPlugins``); the children run as ``nobody``, with a
  ``PYTHONPATH`` entry of their own holding one more distribution, and a per-user cache
  directory they cannot write.
- *entry points*: 1000 installed distributions on one ``sys.path`` entry, 50 declaring a
  module entry point in the group, against importlib.metadata, stevedore (its cache warm) and
  plain imports of the 50 modules; the cold row removes compat_plugin's indexes and compares
  with ``importlib_metadata.entry_points(group=...)`` plus loading the matches.
- *entry points, 10,000 distributions*: the warm row again, on ten times the distributions
  (the same 50 declaring entry points, spread among them).

Every child runs with the interpreter of the benchmark venv (``benchvenv.py``), which the
tables name.  After the warm-up, and after the last round, checks (``checks.py``) confirm that
the warm rows measure warm caches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchvenv import DEFAULT_VENV, PROJECT, ensure_venv
from checks import check_compat, check_stevedore
from contexts import NOBODY, Context, clear_indexes, open_to_everyone, owned_by
from corpus import PLUGIN_PACKAGE, make_corpus, matching_modules, plugin_directory
from entry_corpus import GROUP, add_distribution, host_plugin_directory, make_entry_corpus
from entry_corpus import plugin_modules as entry_plugin_modules
from measure import ChildFailed, measure
from report import build_rows, markdown_table, report_document, spread_table
from scenarios import (
    CONTENDERS,
    DIRECTORY,
    ENTRY_POINTS,
    ENTRY_POINTS_LARGE,
    SITE_WIDE,
    Contender,
    groups,
    scenario_named,
)

_DESCRIBE = """\
import json, sys, importlib.metadata as m
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "not installed"
print(json.dumps({"python": sys.version.split()[0], "executable": sys.executable,
                  "base": sys.base_prefix, **{n: v(n) for n in (
                      "twisted", "stevedore", "zope.interface", "importlib-metadata")}}))
"""


def _directory_substitutions(modules: int) -> dict[str, str]:
    matching = matching_modules(modules)
    return {"matching": repr(frozenset(matching)), "matches": str(len(matching)),
            "modules": str(modules)}


def directory_context(workdir: Path, python: str, modules: int) -> Context:
    corpus = make_corpus(workdir / "corpus", modules)
    for path in (workdir / "work", workdir / "user-cache"):
        path.mkdir()
    return Context(DIRECTORY, python, workdir / "work", (corpus,), plugin_directory(corpus),
                   PLUGIN_PACKAGE, workdir / "user-cache", _directory_substitutions(modules))


def site_wide_context(workdir: Path, python: str) -> Context:
    """200 modules whose caches root regenerates; children as ``nobody`` with an extra entry
    of their own holding one distribution, and a cache directory they cannot write."""
    corpus = make_corpus(workdir / "corpus", 200)
    for path in (workdir / "work", workdir / "user-cache"):
        path.mkdir()
    open_to_everyone(workdir)
    extra = owned_by(workdir / "extra", NOBODY)
    add_distribution(extra, "extra-tools", "1.0")
    if os.geteuid() == 0:
        os.chown(extra, NOBODY, NOBODY)
        for entry in extra.rglob("*"):
            os.chown(entry, NOBODY, NOBODY)
    admin = Context(SITE_WIDE, python, workdir / "work", (corpus,), plugin_directory(corpus),
                    PLUGIN_PACKAGE, workdir / "user-cache", _directory_substitutions(200))
    regenerate = admin.run("import sys\nfrom compat_plugin.cli import main\n"
                           f"sys.exit(main(['cache', 'regenerate', {PLUGIN_PACKAGE!r}]))")
    twisted = admin.run(f"import twisted.plugin, {PLUGIN_PACKAGE} as p\n"
                        "list(twisted.plugin.getPlugins(twisted.plugin.IPlugin, p))")
    for done in (regenerate, twisted):
        if done.returncode != 0:
            raise ChildFailed(f"site-wide set-up failed: {done.stdout}{done.stderr}")
    import dataclasses

    admin = admin.with_entries()  # where regenerate wrote indexes, cleared at the end
    return dataclasses.replace(admin, roots=(extra, corpus), user=NOBODY)


def entry_context(workdir: Path, python: str, group: str, distributions: int) -> Context:
    site = make_entry_corpus(workdir / "site", distributions)
    for name in ("work", "user-cache", "xdg-cache"):
        (workdir / name).mkdir()
    plugins = entry_plugin_modules(distributions)
    substitutions = {"group": repr(GROUP), "plugin_modules": repr(plugins),
                     "plugins": str(len(plugins)), "distributions": str(distributions)}
    return Context(group, python, workdir / "work", (site,), host_plugin_directory(site), GROUP,
                   workdir / "user-cache", substitutions,
                   env={"XDG_CACHE_HOME": str(workdir / "xdg-cache")})


def make_contexts(base: Path, python: str, wanted: list[str]) -> dict[str, Context]:
    contexts: dict[str, Context] = {}
    makers = {
        DIRECTORY: lambda d: directory_context(d, python, 1000),
        SITE_WIDE: lambda d: site_wide_context(d, python),
        ENTRY_POINTS: lambda d: entry_context(d, python, ENTRY_POINTS, 1000),
        ENTRY_POINTS_LARGE: lambda d: entry_context(d, python, ENTRY_POINTS_LARGE, 10000),
    }
    for group in wanted:
        if group == SITE_WIDE and os.geteuid() != 0:
            print("site-wide: skipped (children can be run as another user only by root)",
                  file=sys.stderr)
            continue
        directory = base / group.replace(" ", "-").replace(",", "")
        directory.mkdir()
        made = makers[group](directory)
        contexts[group] = made if made.entries else made.with_entries()
    return contexts


def run_checks(contexts: dict[str, Context], contenders: list[Contender]) -> list[str]:
    """The checks of every group whose warm rows are measured."""
    notes = []
    warm = {scenario_named(c.scenario).group for c in contenders if "warm" in c.scenario}
    for group, context in contexts.items():
        if group not in warm:
            continue
        if group in (DIRECTORY, SITE_WIDE):
            matching = [f"{PLUGIN_PACKAGE}.{name}"
                        for name in matching_modules(int(context.substitutions["modules"]))]
            setup = f"import twisted.plugin, {PLUGIN_PACKAGE}\nfrom benchcorpus.ifaces import IA"
            notes.append(check_compat(context, setup, "IA", PLUGIN_PACKAGE, matching))
        else:
            setup = "import compat_plugin, epcorpus.plugins\nfrom epcorpus.ifaces import IA"
            plugins = entry_plugin_modules(int(context.substitutions["distributions"]))
            notes.append(check_compat(context, setup, "IA", "epcorpus.plugins", plugins))
            if group == ENTRY_POINTS:
                cache = Path(context.env["XDG_CACHE_HOME"]) / "python-entrypoints"
                notes.append(check_stevedore(context, cache))
    return notes


def _describe(context: Context) -> str:
    found = json.loads(context.run(_DESCRIBE).stdout)
    return (f"Python {found['python']} ({found['executable']}, made from {found['base']}); "
            f"Twisted {found['twisted']}, stevedore {found['stevedore']}, zope.interface "
            f"{found['zope.interface']}, importlib-metadata {found['importlib-metadata']}; "
            f"compat_plugin from {PROJECT}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time compat_plugin against other loaders.")
    parser.add_argument("--rounds", type=int, default=15, help="timed runs of each contender")
    parser.add_argument("--json", type=Path, help="also write all samples and results here")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only scenarios whose name or group contains this")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="the venv (outside /tmp) every child runs in")
    args = parser.parse_args(argv)

    def selected(contender: Contender) -> bool:
        group = scenario_named(contender.scenario).group
        return not args.only or any(p in contender.scenario or p in group for p in args.only)

    contenders = [c for c in CONTENDERS if selected(c)]
    wanted = [g for g in groups() if any(scenario_named(c.scenario).group == g
                                         for c in contenders)]
    if not wanted:
        print(f"no scenario matches {args.only}", file=sys.stderr)
        return 2
    python = str(ensure_venv(args.venv))
    started, load = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="compat-plugin-bench-") as temporary:
        base = Path(temporary)
        base.chmod(0o755)
        contexts = make_contexts(base, python, wanted)
        contenders = [c for c in contenders if scenario_named(c.scenario).group in contexts]
        notes: list[str] = []
        try:
            samples = measure(contenders, contexts, args.rounds,
                              after_warmup=lambda: notes.extend(run_checks(contexts, contenders)))
            notes = run_checks(contexts, contenders)
        except ChildFailed as exc:
            print(f"a benchmark child failed: {exc}", file=sys.stderr)
            return 1
        finally:
            if SITE_WIDE in contexts:
                clear_indexes(contexts[SITE_WIDE])
        described = {group: _describe(context) for group, context in contexts.items()}
    print(f"\n{args.rounds} rounds, medians; {time.monotonic() - started:.0f} s in all; "
          f"1-minute load average {load:.2f} before, {os.getloadavg()[0]:.2f} after, on "
          f"{os.cpu_count()} CPUs")
    for group in contexts:
        rows = build_rows(samples, group)
        if rows:
            print(f"\n{group}: {described[group]}\n")
            print(markdown_table(rows, group))
    print("\n" + "\n".join(dict.fromkeys(notes)))
    print("\n" + spread_table(samples))
    if args.json is not None:
        document = report_document(samples, args.rounds, list(contexts))
        document["interpreters"] = described
        document["checks"] = notes
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
