"""Twisted's plugin API over plugin directories and installed distributions' entry points.

``getPlugins(interface, package)`` yields every plugin beneath ``package`` providing
``interface``, found in the package's ``__path__`` directories and in the entry points of
installed distributions (group: the package's dotted name), and remembered in plain-data caches
validated per file, so a warm call imports only the modules whose plugins match.

Importing this package defines ``IPlugin`` and nothing else: every other name is imported
from its module when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._interfaces import IPlugin

if TYPE_CHECKING:
    from ._api import discover, getPlugIns, getPlugins, load
    from ._cached import CachedDropin, CachedPlugin, getCache
    from ._directories import pluginPackagePaths
    from ._records import (
        Discovery,
        IncompatiblePlugin,
        LoadError,
        MalformedEntryPoint,
        ModuleRecords,
        NotAPlugin,
        Origin,
        PluginRecord,
        Skip,
        StaleRecord,
    )

    __version__: str

__all__ = [
    "CachedDropin",
    "CachedPlugin",
    "Discovery",
    "IPlugin",
    "IncompatiblePlugin",
    "LoadError",
    "MalformedEntryPoint",
    "ModuleRecords",
    "NotAPlugin",
    "Origin",
    "PluginRecord",
    "Skip",
    "StaleRecord",
    "discover",
    "getCache",
    "getPlugIns",
    "getPlugins",
    "load",
    "pluginPackagePaths",
]

# Where each public name lives.
_HOMES = {
    **dict.fromkeys(("discover", "getPlugIns", "getPlugins", "load"), "_api"),
    **dict.fromkeys(("CachedDropin", "CachedPlugin", "getCache"), "_cached"),
    "pluginPackagePaths": "_directories",
    **dict.fromkeys(
        ("Discovery", "IncompatiblePlugin", "LoadError", "MalformedEntryPoint", "ModuleRecords",
         "NotAPlugin", "Origin", "PluginRecord", "Skip", "StaleRecord"), "_records"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is not None:
        # ``from . import <home>``: the import statement's machinery, not importlib's package
        package = __import__(__name__, globals(), None, [home])
        value = getattr(getattr(package, home), name)
    elif name == "__version__":
        from ._version import version

        value = version()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
