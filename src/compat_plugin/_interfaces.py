"""The plugin marker interface, and how an object's interfaces become names.

Two marker interfaces count: ours, and Twisted's ``twisted.plugin.IPlugin`` for plugin
modules written for Twisted.  Twisted's is only consulted when ``twisted.plugin`` is
already imported: a module that declares it has necessarily imported it, so checking
``sys.modules`` never misses one and never drags Twisted in.
"""

from __future__ import annotations

import sys
from typing import Any

from zope.interface import Interface, providedBy
from zope.interface.interface import InterfaceClass


class IPlugin(Interface):
    """Marker for plugins: only objects providing it (or Twisted's) are returned.

    Plugins should also provide some application-specific interface to be useful.
    """

    __module__ = "compat_plugin"


TWISTED_IPLUGIN = "twisted.plugin.IPlugin"
# Both markers are one concept to a caller: a query for either returns every plugin.
MARKER_NAMES: tuple[str, str] = (IPlugin.__identifier__, TWISTED_IPLUGIN)


def _twisted_marker() -> InterfaceClass | None:
    marker = getattr(sys.modules.get("twisted.plugin"), "IPlugin", None)
    return marker if isinstance(marker, InterfaceClass) else None


def adapt_to_marker(value: object) -> object:
    """Return ``value`` seen as a plugin, or None if it is not one.

    Exceptions from ``__conform__`` or adapter hooks propagate: the caller decides how to
    report them.  An object asking which raises is no plugin.
    """
    twisted_marker = _twisted_marker()
    try:
        spec = providedBy(value)
    except Exception as exc:
        # An object that cannot even say what it declares -- a proxy that works only inside a
        # request (web frameworks' ``request``), a lazy object not configured yet -- declares
        # no marker: no plugin, and no fault of the module importing it.
        from ._log import debug

        debug("an object of type %s cannot say what it provides (%s: %s): taken as "
              "no plugin", type(value).__name__, type(exc).__name__, exc)
        return None
    # Most plugins declare a marker outright: answer that without going through adaptation.
    if spec.isOrExtends(IPlugin) or (twisted_marker is not None
                                     and spec.isOrExtends(twisted_marker)):
        return value
    adapted = IPlugin(value, None)
    if adapted is None and twisted_marker is not None:
        adapted = twisted_marker(value, None)
    return adapted


def implements_marker(cls: type) -> bool:
    """Whether instances of ``cls`` would be plugins (it implements a marker interface)."""
    twisted_marker = _twisted_marker()
    return bool(IPlugin.implementedBy(cls)) or (
        twisted_marker is not None and bool(twisted_marker.implementedBy(cls))
    )


def interface_names(value: object) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Return (directly declared names, all names with bases) if ``value`` is a plugin.

    Names are ``module.Name`` identifiers.  Both marker names are added to the second tuple
    whenever either is present.
    """
    adapted = adapt_to_marker(value)
    if adapted is None:
        return None
    spec = providedBy(adapted)
    provided = tuple(iface.__identifier__ for iface in spec.interfaces())
    everything = [iface.__identifier__ for iface in spec.__iro__]
    everything.extend(name for name in MARKER_NAMES if name not in everything)
    return provided, tuple(everything)


def identifier(interface: InterfaceClass) -> str:
    """The dotted name records use for ``interface``."""
    name: str = interface.__identifier__
    return name


def extending(interface: InterfaceClass) -> tuple[str, ...]:
    """The names of ``interface`` (first) and of every interface that extends it now, among
    those already created (imported): a plugin providing any of them provides ``interface``.

    Asked of the interfaces themselves, not of what a cache recorded of their bases when it
    scanned a plugin: a host release that gives an interface a new base makes the plugins
    providing it answer a query for that base without being scanned again.
    """
    names = [identifier(interface)]
    pending = [interface]
    while pending:
        # zope.interface keeps, on each specification, those that name it as a base (the
        # interfaces extending it, and the declarations of classes implementing it).
        for dependent in list(getattr(pending.pop(), "dependents", {}).keys()):
            if isinstance(dependent, InterfaceClass) and identifier(dependent) not in names:
                names.append(identifier(dependent))
                pending.append(dependent)
    return tuple(names)


def imported_interface(name: str) -> InterfaceClass | None:
    """The interface called ``name`` if its module is already imported, else None.

    Never imports: used where importing would defeat the cache (adapter look-ups).
    """
    module_name, _, attribute = name.rpartition(".")
    found: Any = getattr(sys.modules.get(module_name), attribute, None)
    return found if isinstance(found, InterfaceClass) else None


def resolve_interface(name: str) -> InterfaceClass | None:
    """Import and return the interface called ``name``, or None if it cannot be found."""
    from ._imports import module_named

    module_name, _, attribute = name.rpartition(".")
    try:
        module = module_named(module_name)
    except Exception:
        return None
    found: Any = getattr(module, attribute, None)
    return found if isinstance(found, InterfaceClass) else None

