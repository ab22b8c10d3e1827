"""Twisted's views of cached plugins: ``CachedDropin`` and ``CachedPlugin``, what
``getCache`` returns, over the records (imported only by ``getCache`` and these names)."""

from __future__ import annotations

from typing import Any

from zope.interface.interface import InterfaceClass

from ._api import load
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
        from ._matching import adapters_to, adapts, provides

        names = self.record.interfaces
        if provides(names, interface):
            return load(self.record, interface)
        if adapters_to(interface) and adapts(names, interface):
            return interface(load(self.record), default)
        return default

    getComponent = __conform__
