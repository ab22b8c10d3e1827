"""Write a site directory of installed distributions, some declaring entry-point plugins.

The tree written under DEST (one ``sys.path`` entry)::

    epcorpus/__init__.py                 the host package
    epcorpus/ifaces.py                   IA and INobody (zope.interface)
    epcorpus/plugins/__init__.py         its plugin package: no modules of its own
    epdist0000/__init__.py               the package of distribution epdist0000
    epdist0000/plugin.py                 one plugin providing IA (50 distributions, evenly
                                         spread: every 20th of 1,000, every 200th of 10,000)
    epdist0000-1.0.dist-info/METADATA    Name and Version
    epdist0000-1.0.dist-info/RECORD      every file of the distribution, with hashes
    epdist0000-1.0.dist-info/entry_points.txt
                                         [epcorpus.plugins] epdist0000 = epdist0000.plugin
    epdist0001/__init__.py
    epdist0001-1.0.dist-info/METADATA    (no entry points)
    ...

Each entry point names a module (no ``:attribute``); that module defines one object declaring
``compat_plugin.IPlugin`` and ``IA``.  Loading such an entry point with ``importlib.metadata``
or stevedore gives the module, so those callers find the plugin among the module's values.

Usage: ``python benchmarks/entry_corpus.py DEST --distributions N``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
from pathlib import Path

HOST = "epcorpus"
GROUP = f"{HOST}.plugins"
DISTRIBUTION_PREFIX = "epdist"
VERSION = "1.0"
# However many distributions are installed, this many declare an entry point, evenly spread:
# a larger environment has more distributions, not more plugins.
PLUGINS = 50

_HOST_INIT = '"""Host application of the entry-point benchmark corpus."""\n'

_IFACES = '''"""Interfaces the entry-point plugins provide (or, for INobody, do not)."""

from zope.interface import Attribute, Interface


class IA(Interface):
    """Provided by the plugin of every distribution that declares an entry point."""

    name = Attribute("A short name for the plugin.")

    def run(argument: str) -> str:
        """Do the plugin's work on ``argument``."""


class INobody(Interface):
    """Provided by no plugin at all."""
'''

_PLUGINS_INIT = '"""Plugin package of the host: its plugins come from entry points only."""\n'

_DISTRIBUTION_INIT = '"""Package of distribution {name}."""\n'

_PLUGIN_MODULE = '''"""Plugin of distribution {name}: one plugin providing IA."""

from zope.interface import implementer

from compat_plugin import IPlugin
from {host}.ifaces import IA


@implementer(IPlugin, IA)
class Runner{index:04d}:
    """Runs the job of distribution {name}."""

    name = "{name}"

    def run(self, argument: str) -> str:
        return f"{{self.name}}: {{argument}}"


runner = Runner{index:04d}()
'''

_METADATA = """\
Metadata-Version: 2.1
Name: {name}
Version: {version}
Summary: Distribution {index} of the entry-point benchmark corpus
"""


def distribution_name(index: int) -> str:
    """The name (and top-level package) of the ``index``-th distribution."""
    return f"{DISTRIBUTION_PREFIX}{index:04d}"


def is_plugin_distribution(index: int, distributions: int) -> bool:
    """Whether the ``index``-th of ``distributions`` declares an entry point in ``GROUP``."""
    every = max(1, distributions // PLUGINS)
    return index % every == 0 and index // every < PLUGINS


def plugin_modules(distributions: int) -> list[str]:
    """The dotted names of the modules the entry points name, in distribution order."""
    return [
        f"{distribution_name(index)}.plugin"
        for index in range(distributions)
        if is_plugin_distribution(index, distributions)
    ]


def _record_line(relative: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{relative},sha256={digest},{len(data)}"


def _write(site: Path, relative: str, text: str, record: list[str]) -> None:
    data = text.encode("utf-8")
    path = site / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    record.append(_record_line(relative, data))


def add_distribution(site: Path, name: str, version: str) -> None:
    """Install, by hand, a distribution ``name`` with one package of its own and no entry
    points into ``site`` (as ``pip install --target`` would have)."""
    package = name.replace("-", "_")
    info = f"{package}-{version}.dist-info"
    record: list[str] = []
    _write(site, f"{package}/__init__.py", f'"""Package of {name}."""\n', record)
    _write(site, f"{info}/METADATA",
           f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", record)
    record.append(f"{info}/RECORD,,")
    (site / info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


def _write_distribution(site: Path, index: int, distributions: int) -> None:
    name = distribution_name(index)
    info = f"{name}-{VERSION}.dist-info"
    record: list[str] = []
    _write(site, f"{name}/__init__.py", _DISTRIBUTION_INIT.format(name=name), record)
    if is_plugin_distribution(index, distributions):
        source = _PLUGIN_MODULE.format(name=name, index=index, host=HOST)
        _write(site, f"{name}/plugin.py", source, record)
        _write(site, f"{info}/entry_points.txt", f"[{GROUP}]\n{name} = {name}.plugin\n", record)
    metadata = _METADATA.format(name=name, version=VERSION, index=index)
    _write(site, f"{info}/METADATA", metadata, record)
    record.append(f"{info}/RECORD,,")
    (site / info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


def make_entry_corpus(site: Path, distributions: int) -> Path:
    """Write the host package and ``distributions`` distributions into ``site`` (emptied
    first) and return it: the directory to put on ``sys.path``."""
    if distributions < 0:
        raise ValueError(f"distributions must not be negative, not {distributions}")
    if site.exists():
        if any(site.iterdir()) and not (site / HOST).is_dir():
            raise ValueError(f"{site} is not empty and holds no earlier corpus: not replacing it")
        shutil.rmtree(site)
    plugins = site / HOST / "plugins"
    plugins.mkdir(parents=True)
    (site / HOST / "__init__.py").write_text(_HOST_INIT, encoding="utf-8")
    (site / HOST / "ifaces.py").write_text(_IFACES, encoding="utf-8")
    (plugins / "__init__.py").write_text(_PLUGINS_INIT, encoding="utf-8")
    for index in range(distributions):
        _write_distribution(site, index, distributions)
    return site


def host_plugin_directory(site: Path) -> Path:
    """The host's plugin directory in a corpus written into ``site``."""
    return site / HOST / "plugins"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dest", type=Path, help="the site directory to write (emptied first)")
    parser.add_argument("--distributions", type=int, default=1000,
                        help="number of installed distributions")
    args = parser.parse_args(argv)
    site = make_entry_corpus(args.dest, args.distributions)
    print(f"wrote {args.distributions} distributions, "
          f"{len(plugin_modules(args.distributions))} declaring {GROUP} entry points, into {site}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
