"""The Twisted-shaped face: getPlugins, getCache, and the CachedDropin/CachedPlugin views."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, TypeVar

from zope.interface.interface import InterfaceClass

from ._interfaces import resolve_interface
from ._records import ModuleRecords, PluginRecord
from ._resolver import Rules, adapt, iter_plugins, load, resolve

_T = TypeVar("_T")


class CachedDropin:
    """The plugins of one plugin module, as known from the cache.

    ``moduleName`` is the module's dotted name, ``description`` its docstring, ``plugins``
    its CachedPlugin list in definition order.
    """

    def __init__(self, module: ModuleRecords) -> None:
        self.moduleName: str = module.module
        self.description: str | None = module.description
        self.plugins: list[CachedPlugin] = [CachedPlugin(self, record) for record in module.plugins]


class CachedPlugin:
    """One plugin, known without importing it: ``name``, ``description``, ``provided``.

    ``provided`` lists the interfaces the plugin declares directly, in declaration order
    (reading it imports their modules); ``load()`` imports the module and returns the object.
    """

    def __init__(self, dropin: CachedDropin, record: PluginRecord) -> None:
        self.dropin = dropin
        self.record = record
        self.name: str = record.attribute
        self.description: str | None = record.description

    @property
    def provided(self) -> list[InterfaceClass]:
        """The interface objects the plugin declares directly, in declaration order."""
        found = (resolve_interface(name) for name in self.record.provided)
        return [interface for interface in found if interface is not None]

    def __repr__(self) -> str:
        names = ", ".join(name.rpartition(".")[2] for name in self.record.provided)
        return f"<CachedPlugin {self.name!r}/{self.dropin.moduleName!r} (provides {names!r})>"

    def load(self) -> Any:
        """Import the plugin's module and return the plugin object itself."""
        return load(self.record)

    def __conform__(
        self, interface: InterfaceClass, registry: object = None, default: Any = None
    ) -> Any:
        """The loaded plugin if it provides ``interface``, adapted if Twisted's registry can."""
        return adapt(self.record, interface, default)

    getComponent = __conform__


def getCache(module: ModuleType) -> dict[str, CachedDropin]:
    """Map every plugin module of package ``module`` to its CachedDropin.

    Directory modules are keyed by their short name, as in Twisted; modules reached through
    entry points by their dotted name (a short name taken by a directory module wins).
    Modules are scanned or read from the cache exactly as getPlugins does.
    """
    dropins: dict[str, CachedDropin] = {}
    for found in resolve(module).modules:
        key = found.module
        if found.origin.kind == "directory":
            key = key.rpartition(".")[2]
        dropins.setdefault(key, CachedDropin(found))
    return dropins


def _default_package() -> ModuleType:
    import twisted.plugins

    return twisted.plugins


def getPlugins(
    interface: type[_T],
    package: ModuleType | None = None,
    *,
    disable: Iterable[str] = (),
    enable: Iterable[str] = (),
) -> Iterator[_T]:
    """Yield every plugin beneath ``package`` that provides ``interface``.

    A generator: nothing is scanned until the first item is asked for.  ``package`` defaults
    to ``twisted.plugins``.  Plugins come from the package's ``__path__`` directories and from
    the entry points of installed distributions in the group named ``package.__name__``.
    Plugins providing an interface that extends ``interface`` count; those Twisted's adapter
    registry adapts to it are yielded adapted.  A plugin that fails to load or adapt is logged
    on the ``compat_plugin`` logger and skipped.

    ``disable`` holds glob patterns (added to ``COMPAT_PLUGIN_DISABLE``) matched against
    distribution, entry-point and module names; matching candidates are never imported unless
    an ``enable`` pattern matches them too.
    """
    if package is None:
        package = _default_package()
    if not isinstance(interface, InterfaceClass):
        raise TypeError(f"getPlugins needs a zope.interface interface, not {interface!r}")
    yield from iter_plugins(interface, package, Rules(disable, enable))


getPlugIns = getPlugins
