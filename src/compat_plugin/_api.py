"""The public functions: Twisted's ``getPlugins``, and the modern ``discover`` and ``load``
(``getCache`` and its views are ``_cached``'s); and how ``getPlugins`` loads what the resolver
found (``_Query``).

Importing this module imports nothing else of compat_plugin's machinery: that happens on the
first call, so ``from compat_plugin import getPlugins`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from zope.interface.interface import InterfaceClass

if TYPE_CHECKING:
    from ._records import Discovery, PluginRecord

_T = TypeVar("_T")


def _describe(value: object) -> str:
    """``value`` in a few words, for a TypeError."""
    if isinstance(value, (str, bytes)):
        return f"{value!r} (a {type(value).__name__})"
    if isinstance(value, (InterfaceClass, ModuleType)):
        kind = "interface" if isinstance(value, InterfaceClass) else "module"
        return f"the {kind} {value.__name__}"
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _order(function: str) -> str:
    return ("getPlugins(interface, package)" if function == "getPlugins"
            else f"{function}(package, interface)")


def check_package(function: str, package: object) -> None:
    """Raise TypeError, saying what to pass instead, unless ``package`` is a module."""
    if isinstance(package, ModuleType):
        return
    hint = ""
    if isinstance(package, str):
        hint = f"; import it first, e.g. importlib.import_module({package!r})"
    elif isinstance(package, InterfaceClass):
        hint = f"; the arguments are {_order(function)}"
    raise TypeError(f"{function}() needs the plugin package as a module object, "
                    f"not {_describe(package)}{hint}")


def _check_interface(function: str, interface: object, optional: bool = False) -> None:
    if isinstance(interface, InterfaceClass) or (optional and interface is None):
        return
    hint = f"; the arguments are {_order(function)}" if isinstance(interface, ModuleType) else ""
    raise TypeError(f"{function}() needs a zope.interface interface, "
                    f"not {_describe(interface)}{hint}")


def _default_package() -> ModuleType:
    import twisted.plugins

    return twisted.plugins


def _wanted(accepted: tuple[str, ...], adapters: bool) -> tuple[str, ...] | None:
    """What a cached module's details must mention one of to matter for a query of the
    ``accepted`` interfaces (``_interfaces.extending``) -- or None (everything matters) when
    adapters may apply: their names without the module, as a recorded dotted name ends (a
    name recorded before its interface moved to another module counts, ``_matching``); whole
    for a name ending as a marker's does, which every record names."""
    from ._interfaces import MARKER_NAMES
    from ._store import dump_json

    if adapters:
        return None
    markers = {name.rpartition(".")[2] for name in MARKER_NAMES}

    def searched(name: str) -> str:
        short = name.rpartition(".")[2]
        if short in markers and name not in MARKER_NAMES:
            return dump_json(name)
        return "." + dump_json(short)[1:]  # the quoted name's end

    return tuple(dict.fromkeys(map(searched, accepted)))


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
    the entry points of installed distributions in the group named ``package.__name__``, in
    the documented order, each object once.  Plugins providing an interface that extends
    ``interface`` count; those Twisted's adapter registry adapts to it are yielded adapted.
    A plugin that fails to load or adapt is logged once per process on the ``compat_plugin``
    logger (WARNING) and skipped.

    ``disable`` holds glob patterns (added to ``COMPAT_PLUGIN_DISABLE``) matched against
    distribution, entry-point and module names; matching candidates are never imported unless
    an ``enable`` pattern matches them too.  Raises TypeError for arguments of the wrong kind,
    when first iterated (as any generator starts running).
    """
    _check_interface("getPlugins", interface)
    if package is None:
        package = _default_package()
    check_package("getPlugins", package)
    yield from _plugins(interface, package, disable, enable)


getPlugIns = getPlugins


def _plugins(interface: InterfaceClass, package: ModuleType, disable: Iterable[str],
             enable: Iterable[str]) -> Iterator[Any]:
    from ._matching import adapters_to, provides
    from ._rules import Rules

    query = _Query(interface, package.__name__, adapters_to(interface))
    wanted = _wanted(query.accepted, query.adapters)
    found = query.process.resolve(package, Rules(disable, enable), wanted)
    query.process.report(found.errors)
    for record in found.plugins:
        direct = provides(record, query.accepted, interface)
        if not direct and not query.adapted(record):
            continue
        module = query.imported(record)
        if module is not None:
            yield from query.loaded(record, module, direct)


class _Query:
    """One ``getPlugins`` call's loading: which records answer it, and every object yielded
    once."""

    def __init__(self, interface: InterfaceClass, group: str, adapters: bool) -> None:
        from ._interfaces import extending
        from ._resolver import resolver

        self.interface, self.group, self.adapters = interface, group, adapters
        self.accepted = extending(interface)
        self.process = resolver()
        self._seen: set[int] = set()
        self._failed: dict[str, BaseException] = {}  # modules whose import failed, and how

    def adapted(self, record: PluginRecord) -> bool:
        """Whether Twisted's adapter registry adapts ``record`` to the interface."""
        from ._matching import adapts

        return self.adapters and adapts(record.interfaces, self.interface)

    def imported(self, record: PluginRecord) -> ModuleType | None:
        """``record``'s module, imported; None if it fails to import, which is reported as a
        cold call would report it, as the module's import error, for the origin of each record
        it had (each entry point naming it), and the call tries it no more."""
        from ._imports import module_named
        from ._records import PLUGIN_FAULTS, LoadError

        failure = self._failed.get(record.module)
        if failure is None:
            try:
                return module_named(record.module)
            except PLUGIN_FAULTS as exc:
                failure = self._failed[record.module] = exc
        self.process.report([LoadError(record.module, record.origin, failure)])
        return None

    def loaded(self, record: PluginRecord, module: ModuleType, direct: bool) -> Iterator[Any]:
        """The object ``record`` names in ``module``, as it answers (``direct``: it provides
        the interface, else it is adapted to it), unless it was yielded before, failed to load
        (which is reported) or adapts to nothing."""
        from ._records import PLUGIN_FAULTS, LoadError, StaleRecord

        try:
            value = _checked(record, module, self.interface if direct else None)
            if id(value) in self._seen:
                return
            self._seen.add(id(value))
            value = value if direct else self.interface(value, None)
        except StaleRecord as exc:
            self.process.report_stale(record, exc, self.group)
            return
        except PLUGIN_FAULTS as exc:
            self.process.report([LoadError(record.qualified_name, record.origin, exc)])
            return
        if value is not None:
            yield value


def load(record: PluginRecord, interface: InterfaceClass | None = None) -> Any:
    """Import ``record``'s module and return its object, checked against the record.

    Raises StaleRecord if the object is no plugin or no longer provides what the record says
    (providing ``interface``, when given, is enough); any error from the import itself
    propagates (a plugin module may raise anything).
    """
    from ._imports import module_named

    return _checked(record, module_named(record.module), interface)


def _checked(record: PluginRecord, module: ModuleType, interface: InterfaceClass | None
             ) -> Any:
    """``record``'s object in its imported ``module``, checked as :func:`load` checks it."""
    from ._imports import resolve_attribute
    from ._interfaces import adapt_to_marker, interface_names
    from ._records import StaleRecord

    try:
        value = resolve_attribute(module, record.attribute)
    except AttributeError:
        raise StaleRecord(f"{record.qualified_name} no longer exists") from None
    if (interface is not None and interface.providedBy(value)
            and adapt_to_marker(value) is not None):
        return value
    names = interface_names(value)
    if names is None or not set(record.interfaces).issubset(names[1]):
        raise StaleRecord(f"{record.qualified_name} no longer provides what its cache says")
    return value


def discover(
    package: ModuleType,
    interface: InterfaceClass | None = None,
    *,
    disable: Iterable[str] = (),
    enable: Iterable[str] = (),
) -> Discovery:
    """Find the plugins of ``package`` from its directories and entry points, unloaded.

    With ``interface``, only records providing it (or an interface extending it) are kept in
    ``plugins``; this is decided from the records alone, so no plugin module but those needing
    a scan is imported (an interface module may be: one a record names by a name its
    interface has since moved from).  Nothing is logged: what failed is in ``errors``.
    ``disable`` and ``enable`` are glob patterns as for ``getPlugins``.  Raises TypeError for
    arguments of the wrong kind.
    """
    check_package("discover", package)
    _check_interface("discover", interface, optional=True)
    from ._interfaces import extending
    from ._matching import provides
    from ._resolver import resolver
    from ._rules import Rules

    accepted = extending(interface) if interface is not None else None
    wanted = _wanted(accepted, False) if accepted is not None else None
    found = resolver().resolve(package, Rules(disable, enable), wanted)
    if accepted is None:
        return found
    return found._replace(plugins=tuple(r for r in found.plugins
                                        if provides(r, accepted, interface)))
