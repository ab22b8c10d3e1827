"""Whether a plugin record answers a query for an interface: by the names it records, or
through Twisted's adapter registry -- decided without importing the plugin."""

from __future__ import annotations

import sys

from zope.interface.interface import InterfaceClass

from ._interfaces import imported_interface


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


def provides(names: tuple[str, ...], accepted: tuple[str, ...]) -> bool:
    """Whether a plugin whose interfaces (bases included, as scanned) are ``names`` provides
    one of the ``accepted`` interfaces (``_interfaces.extending`` of the asked one): it is
    returned as it is."""
    return any(name in names for name in accepted)


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
