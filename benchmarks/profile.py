"""Where one warm (or cold) compat_plugin call spends its time: a profile of one call in a
fresh interpreter of the benchmark venv, nothing in the library patched.

Usage: ``python benchmarks/profile.py [--modules 1000] [--interface IA|INobody] [--cold]
[--entry [--distributions 1000]] [--top 25] [--sort tottime|cumulative]``

Prints the functions that took the most time of their own (``cProfile``, which slows small
functions down a little), and how long importing each of compat_plugin's modules took
(``-X importtime``) -- both for the same call, the clock including
``from compat_plugin import getPlugins``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from benchvenv import DEFAULT_VENV, ensure_venv
from contexts import Context, clear_compat_caches, clear_directory_cache
from run import directory_context, entry_context

_PROFILED = """\
import cProfile, pstats
$setup
profile = cProfile.Profile()
profile.enable()
from compat_plugin import getPlugins
found = list(getPlugins($interface, $package))
profile.disable()
stats = pstats.Stats(profile)
stats.sort_stats("$sort").print_stats($top)
"""

_IMPORTS = """\
$setup
from compat_plugin import getPlugins
found = list(getPlugins($interface, $package))
"""


def _code(template: str, setup: str, interface: str, package: str, top: int,
          sort: str = "tottime") -> str:
    return (template.replace("$setup", setup).replace("$interface", interface)
            .replace("$package", package).replace("$top", str(top)).replace("$sort", sort))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile one compat_plugin call.")
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--distributions", type=int, default=1000)
    parser.add_argument("--interface", default="IA")
    parser.add_argument("--cold", action="store_true", help="clear the caches first")
    parser.add_argument("--entry", action="store_true", help="the entry-point corpus")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime",
                        help="order the functions by their own time or with what they call")
    args = parser.parse_args(argv)
    python = str(ensure_venv(DEFAULT_VENV))
    with tempfile.TemporaryDirectory(prefix="compat-plugin-profile-") as temporary:
        base = Path(temporary)
        context: Context
        if args.entry:
            context = entry_context(base, python, "entry points", args.distributions)
            setup, package = "import compat_plugin, epcorpus.plugins\n" \
                             "from epcorpus.ifaces import IA, INobody", "epcorpus.plugins"
        else:
            context = directory_context(base, python, args.modules)
            setup, package = "import twisted.plugin, benchcorpus.plugins\n" \
                             "from benchcorpus.ifaces import IA, IB, INobody", \
                             "benchcorpus.plugins"
        context = context.with_entries()
        context.run(_code(_IMPORTS, setup, args.interface, package, args.top))  # warm up
        if args.cold:
            (clear_compat_caches if args.entry else clear_directory_cache)(context)
        print(context.run(_code(_PROFILED, setup, args.interface, package, args.top,
                                args.sort)).stdout)
        if args.cold:
            (clear_compat_caches if args.entry else clear_directory_cache)(context)
        traced = context.run(_code(_IMPORTS, setup, args.interface, package, args.top),
                             env={"PYTHONPROFILEIMPORTTIME": "1"})
        for line in traced.stderr.splitlines():
            if re.search(r"\| +compat_plugin|\| +(json|zlib|importlib_metadata|packaging)\b",
                         line):
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
