"""Whether a plugin record answers a query for an interface: by the names it records, or
through Twisted's adapter registry -- decided without importing the plugin."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from zope.interface.interface import InterfaceClass

from ._interfaces import MARKER_NAMES, extending, imported_interface

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


def provides(record: PluginRecord, accepted: tuple[str, ...]) -> bool:
    """Whether the plugin ``record`` describes provides one of the ``accepted`` interfaces
    (``_interfaces.extending`` of the asked one, the asked one first): it is returned as it is.

    Decided by the interfaces the plugin declares, as they are now, when all of them (the
    markers aside) are imported -- a base a host release took away from one no longer counts,
    as in Twisted -- else by the names its scan recorded, bases included.  A query for either
    marker interface matches every plugin.
    """
    if accepted[0] in MARKER_NAMES or not all(
            name in MARKER_NAMES or imported_interface(name) is not None
            for name in record.provided):
        return any(name in record.interfaces for name in accepted)
    return any(name in accepted for name in record.provided)


def answering(records: Iterable[PluginRecord], name: str) -> list[PluginRecord]:
    """The ``records`` that answer a query for the interface called ``name`` as ``getPlugins``
    decides it -- ``name`` alone when that interface is not imported: the command line lists
    plugins without importing them."""
    interface = imported_interface(name)
    accepted = extending(interface) if interface is not None else (name,)
    return [record for record in records if provides(record, accepted)]


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
