"""Whether a plugin record answers a query for an interface: by the names it records, or
through Twisted's adapter registry -- decided without importing the plugin (an interface
module may be imported: one a record names by a name its interface has since moved from)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from zope.interface.interface import InterfaceClass

from ._interfaces import MARKER_NAMES, extending, imported_interface, resolve_interface

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._records import PluginRecord


def adapters_to(interface: InterfaceClass) -> bool:
    """Whether Twisted's adapter registry may adapt anything to ``interface`` (never true
    when Twisted's components module is not imported: then no adapter can be registered)."""
    components = sys.modules.get("twisted.python.components")
    if components is None:
        return False
    # The registry counts registrations by provided interface; an adapter to an interface
    # extending ``interface`` serves it too.  Without that table, assume it may.
    provided = getattr(components.globalRegistry, "_provided", None)
    if not isinstance(provided, dict):
        return True
    return any(target.isOrExtends(interface) for target in provided)


def provides(record: PluginRecord, accepted: tuple[str, ...],
             interface: InterfaceClass | None) -> bool:
    """Whether the plugin ``record`` describes provides ``interface``, whose
    ``_interfaces.extending`` names were ``accepted`` (the asked one first; ``interface`` is
    None when it is not imported): it is returned as it is.

    Decided by the interfaces the plugin declares, as they are now, when all of them (the
    markers aside) are imported -- a base a host release took away from one no longer counts,
    as in Twisted, and one created since ``accepted`` was computed (by the very call that
    imported its module) counts -- else by the names its scan recorded, bases included.  A
    query for either marker interface matches every plugin.
    """
    if accepted[0] in MARKER_NAMES:
        return any(name in record.interfaces for name in accepted)
    current = []
    for declared in record.provided:
        found = imported_interface(declared)
        if found is not None:
            current.append(found)
        elif declared not in MARKER_NAMES:
            return _recorded(record, accepted, interface)
    return any(name in accepted for name in record.provided) or (
        interface is not None and any(found.isOrExtends(interface) for found in current))


def _recorded(record: PluginRecord, accepted: tuple[str, ...],
              interface: InterfaceClass | None) -> bool:
    """Whether the interfaces ``record`` names include one of ``accepted`` -- or a name
    recorded before its interface moved to another module that keeps the old name as an
    alias: the module of a name ending as one of ``accepted`` does is imported to see whether
    it is now ``interface`` or extends it.  Not for the markers (every plugin names them), nor
    a plugin module: one of a directory plugin's package, or an entry point's module and what
    is inside it."""
    names = record.interfaces
    if any(name in names for name in accepted):
        return True
    if interface is None:
        return False
    short = {name.rpartition(".")[2] for name in accepted}
    directory = record.origin.kind == "directory"
    home = (record.module.rpartition(".")[0] if directory else record.module) + "."
    for name in names:
        if (name.rpartition(".")[2] in short and name not in MARKER_NAMES
                and not name.startswith(home)):
            found = resolve_interface(name)
            if found is not None and found.isOrExtends(interface):
                return True
    return False


def answering(records: Iterable[PluginRecord], name: str) -> list[PluginRecord]:
    """The ``records`` that answer a query for the interface called ``name`` as ``getPlugins``
    decides it -- ``name`` alone when that interface is not imported: the command line lists
    plugins without importing them."""
    interface = imported_interface(name)
    accepted = extending(interface) if interface is not None else (name,)
    return [record for record in records if provides(record, accepted, interface)]


def adapts(names: tuple[str, ...], interface: InterfaceClass) -> bool:
    """Whether Twisted's adapter registry adapts one of ``names`` to ``interface``: the plugin
    is returned adapted.

    Only interfaces whose modules are already imported are looked at: an adapter can only
    have been registered from an interface object that exists.
    """
    components = sys.modules.get("twisted.python.components")
    if components is None:
        return False
    for name in names:
        provided = imported_interface(name)
        if provided is not None and components.getAdapterFactory(provided, interface, None):
            return True
    return False
