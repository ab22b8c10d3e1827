"""Twisted's plugin API over plugin directories and installed distributions' entry points.

``getPlugins(interface, package)`` yields every plugin beneath ``package`` providing
``interface``, found in the package's ``__path__`` directories, and remembered in a plain-data
cache validated per file, so a warm call imports only the modules whose plugins match.
"""

from ._dropins import pluginPackagePaths
from ._interfaces import IPlugin
from ._legacy import CachedDropin, CachedPlugin, getCache, getPlugIns, getPlugins
from ._records import LoadError, ModuleRecords, Origin, PluginRecord

__all__ = [
    "CachedDropin",
    "CachedPlugin",
    "IPlugin",
    "LoadError",
    "ModuleRecords",
    "Origin",
    "PluginRecord",
    "getCache",
    "getPlugIns",
    "getPlugins",
    "pluginPackagePaths",
]
