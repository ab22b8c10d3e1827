"""Twisted's ``getCache`` and its views of cached plugins, ``CachedDropin`` and
``CachedPlugin``, over the records (imported only by these names)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from zope.interface.interface import InterfaceClass

from ._api import check_package, load
from ._records import ModuleRecords, PluginRecord


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
        from ._interfaces import resolve_interface

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
        from ._interfaces import extending
        from ._matching import adapters_to, adapts, provides

        if provides(self.record, extending(interface), interface):
            return load(self.record, interface)
        if adapters_to(interface) and adapts(self.record.interfaces, interface):
            return interface(load(self.record), default)
        return default

    getComponent = __conform__


def getCache(module: ModuleType) -> dict[str, CachedDropin]:
    """Map every plugin module of package ``module`` to its CachedDropin.

    Directory modules are keyed by their short name, as in Twisted; modules reached through
    entry points by their dotted name (a short name taken by a directory module wins).
    Modules are scanned or read from the cache exactly as getPlugins does; failures are logged
    as getPlugins logs them.
    """
    check_package("getCache", module)
    from ._resolver import resolver

    process = resolver()
    found = process.resolve(module)
    process.report(found.errors)
    dropins: dict[str, CachedDropin] = {}
    for scanned in found.modules:
        key = scanned.module
        if scanned.origin.kind == "directory":
            key = key.rpartition(".")[2]
        dropins.setdefault(key, CachedDropin(scanned))
    return dropins
