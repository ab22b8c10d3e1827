"""Write a plugin package on disk that both ``twisted.plugin`` and ``compat_plugin`` can search.

The tree written under DEST::

    benchcorpus/__init__.py
    benchcorpus/ifaces.py            IA, IB and INobody (zope.interface)
    benchcorpus/plugins/__init__.py  a plain package
    benchcorpus/plugins/mod0000.py   one plugin providing IA (every 10th module)
    benchcorpus/plugins/mod0001.py   one plugin providing IB (all the others)
    ...

Every plugin declares Twisted's ``IPlugin`` as well as its interface, so the same files serve
both libraries.  Put DEST on ``sys.path`` to import ``benchcorpus``.

Usage: ``python benchmarks/corpus.py DEST --modules N``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

PACKAGE = "benchcorpus"
PLUGIN_PACKAGE = f"{PACKAGE}.plugins"
# Every MATCH_EVERY-th module (0, 10, 20, ...) provides IA; the others provide IB.
MATCH_EVERY = 10

_PACKAGE_INIT = '"""Synthetic plugin corpus for benchmarks."""\n'

_IFACES = '''"""Interfaces the corpus plugins provide (or, for INobody, do not)."""

from zope.interface import Attribute, Interface


class IA(Interface):
    """Provided by one module in ten."""

    name = Attribute("A short name for the plugin.")

    def run(argument: str) -> str:
        """Do the plugin's work on ``argument``."""


class IB(Interface):
    """Provided by every other module."""

    name = Attribute("A short name for the plugin.")

    def describe() -> str:
        """Say what the plugin is."""


class INobody(Interface):
    """Provided by no plugin at all."""
'''

_PLUGINS_INIT = '"""Plugin modules of the benchmark corpus."""\n'

_IA_MODULE = '''"""Plugin module {index:04d}: one plugin providing IA."""

from twisted.plugin import IPlugin
from zope.interface import implementer

from {package}.ifaces import IA


@implementer(IPlugin, IA)
class Runner{index:04d}:
    """Runs job number {index} of the benchmark corpus."""

    name = "runner-{index:04d}"

    def run(self, argument: str) -> str:
        return f"{{self.name}}: {{argument}}"


runner{index:04d} = Runner{index:04d}()
'''

_IB_MODULE = '''"""Plugin module {index:04d}: one plugin providing IB."""

from twisted.plugin import IPlugin
from zope.interface import implementer

from {package}.ifaces import IB


@implementer(IPlugin, IB)
class Describer{index:04d}:
    """Describes item number {index} of the benchmark corpus."""

    name = "describer-{index:04d}"

    def describe(self) -> str:
        return f"{{self.name}} is plugin {index}"


describer{index:04d} = Describer{index:04d}()
'''


def module_name(index: int) -> str:
    """The short name of the ``index``-th plugin module."""
    return f"mod{index:04d}"


def is_match(index: int) -> bool:
    """Whether the ``index``-th module's plugin provides IA (rather than IB)."""
    return index % MATCH_EVERY == 0


def matching_modules(modules: int) -> list[str]:
    """The short names of the modules whose plugin provides IA, in order."""
    return [module_name(index) for index in range(modules) if is_match(index)]


def plugin_source(index: int) -> str:
    """The source text of the ``index``-th plugin module."""
    template = _IA_MODULE if is_match(index) else _IB_MODULE
    return template.format(index=index, package=PACKAGE)


def make_corpus(dest: Path, modules: int) -> Path:
    """Write the corpus under ``dest`` (replacing any earlier one) and return ``dest``.

    ``dest`` is the directory to put on ``sys.path``; the plugin directory is
    ``dest / "benchcorpus" / "plugins"``.
    """
    if modules < 0:
        raise ValueError(f"modules must not be negative, not {modules}")
    top = dest / PACKAGE
    if top.exists():
        shutil.rmtree(top)
    plugins = top / "plugins"
    plugins.mkdir(parents=True)
    (top / "__init__.py").write_text(_PACKAGE_INIT, encoding="utf-8")
    (top / "ifaces.py").write_text(_IFACES, encoding="utf-8")
    (plugins / "__init__.py").write_text(_PLUGINS_INIT, encoding="utf-8")
    for index in range(modules):
        path = plugins / f"{module_name(index)}.py"
        path.write_text(plugin_source(index), encoding="utf-8")
    return dest


def plugin_directory(dest: Path) -> Path:
    """The plugin directory of a corpus written under ``dest``."""
    return dest / PACKAGE / "plugins"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dest", type=Path, help="directory to write the corpus under")
    parser.add_argument("--modules", type=int, default=1000, help="number of plugin modules")
    args = parser.parse_args(argv)
    dest = make_corpus(args.dest, args.modules)
    print(f"wrote {args.modules} plugin modules under {plugin_directory(dest)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
