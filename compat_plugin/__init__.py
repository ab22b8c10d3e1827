"""Twisted's plugin API over plugin directories and installed distributions' entry points.

``getPlugins(interface, package)`` yields every plugin beneath ``package`` providing
``interface``, found in the package's ``__path__`` directories and in the entry points of
installed distributions (group: the package's dotted name), and remembered in plain-data caches
validated per file, so a warm call imports only the modules whose plugins match.
"""

from ._discover import Discovery, discover
from ._dropins import pluginPackagePaths
from ._interfaces import IPlugin
from ._legacy import CachedDropin, CachedPlugin, getCache, getPlugIns, getPlugins
from ._records import (
    IncompatiblePlugin,
    LoadError,
    MalformedEntryPoint,
    ModuleRecords,
    NotAPlugin,
    Origin,
    PluginRecord,
    Skip,
)
from ._resolver import load

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
    "discover",
    "getCache",
    "getPlugIns",
    "getPlugins",
    "load",
    "pluginPackagePaths",
]
