"""Whether a plugin record answers a query for an interface: by the names it records, or
through Twisted's adapter registry -- decided without importing the plugin."""

from __future__ import annotations

import enum
import sys

from zope.interface.interface import InterfaceClass

from ._interfaces import identifier, imported_interface


class Match(enum.Enum):
    """How a plugin answers a query for an interface."""

    #: It provides the interface, or one extending it: it is returned as it is.
    PROVIDES = "provides"
    #: Twisted's adapter registry adapts one of its interfaces to it: it is returned adapted.
    ADAPTS = "adapts"


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


def match(names: tuple[str, ...], interface: InterfaceClass, adapters: bool) -> Match | None:
    """How a plugin whose interfaces (bases included) are ``names`` answers a query for
    ``interface``; Twisted's registry is consulted only if ``adapters``."""
    if identifier(interface) in names:
        return Match.PROVIDES
    if adapters and _registry_adapts(names, interface):
        return Match.ADAPTS
    return None


def _registry_adapts(names: tuple[str, ...], interface: InterfaceClass) -> bool:
    """Whether Twisted's adapter registry adapts one of ``names`` to ``interface``.

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
