"""Importing one plugin module and turning its module-level objects into records, noting what
its import looked for and could not find.

A plugin module may define its plugins only when an optional dependency imports
(``try: import optdep``).  While a module is imported for a scan, two finders are placed on
``sys.meta_path`` -- first, one that notes every name looked up, and last, one that notes every
name no other finder found -- so the scan knows which imports failed for want of a module
(``importlib.util.find_spec`` calls included).  The caches keep those names with the module's
entry; ``_imports.importable`` later tells, without importing anything, whether one has
appeared.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import NamedTuple

from ._imports import importable, module_named, resolve_attribute
from ._interfaces import implements_marker, interface_names
from ._records import PLUGIN_FAULTS, LoadError, ModuleRecords, NotAPlugin, Origin, PluginRecord

# Set on every module by the import system, never by a plugin's author.
IMPORT_MACHINERY = frozenset({
    "__name__", "__doc__", "__package__", "__loader__", "__spec__", "__file__", "__cached__",
    "__builtins__", "__path__", "__annotations__",
})


class Scan(NamedTuple):
    """What importing and inspecting one candidate gave.

    ``records`` is None if nothing could be taken from it (the import failed, or an entry
    point's object is missing or no plugin); ``errors`` says why, and names objects whose
    inspection failed; ``missing`` holds the modules its import looked for in vain;
    ``preloaded`` is true if the module was imported before this scan (by another plugin
    module, say), so what was seen may predate its file; ``file`` is the module's ``__file__``;
    ``watched`` is false if the module was imported where no scan of this process watched
    (by the application, or to load a cached record), so ``missing`` may be incomplete.
    """

    records: ModuleRecords | None
    errors: tuple[LoadError, ...]
    missing: tuple[str, ...]
    preloaded: bool
    file: str | None
    watched: bool = True


class _Recorder:
    """A finder that finds nothing and notes every name it is asked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append(name)


def _remove(finder: object) -> None:
    for position, present in enumerate(sys.meta_path):
        if present is finder:
            del sys.meta_path[position]
            return


class Scanner:
    """Imports plugin modules for scans and remembers, for the process, which names each
    import looked for in vain -- also on behalf of modules imported along the way, which a
    later scan finds already imported."""

    def __init__(self) -> None:
        self._missing_for: dict[str, tuple[str, ...]] = {}

    def scan(self, name: str, attribute: str | None, origin: Origin) -> Scan:
        """Import ``name`` and take every plugin in it (``attribute`` None), or the one object
        ``attribute`` names (an entry point's ``module:attribute``)."""
        preloaded = name in sys.modules
        watched = not preloaded or name in self._missing_for
        loaded, missing = self._import(name, origin)
        if isinstance(loaded, LoadError):
            return Scan(None, (loaded,), missing, preloaded, None, watched)
        records: ModuleRecords | None
        if attribute is None:
            records, errors = scan_module(loaded, origin)
        else:
            records, errors = scan_object(loaded, attribute, origin)
        return Scan(records, tuple(errors), missing, preloaded, getattr(loaded, "__file__", None),
                    watched)

    def _import(self, name: str, origin: Origin) -> tuple[ModuleType | LoadError, tuple[str, ...]]:
        preloaded = name in sys.modules
        looked_up, unfound = _Recorder(), _Recorder()
        if not preloaded:
            sys.meta_path.insert(0, looked_up)
            sys.meta_path.append(unfound)
        loaded: ModuleType | LoadError
        try:
            loaded = module_named(name)
        except PLUGIN_FAULTS as exc:
            loaded = LoadError(name, origin, exc)
        finally:
            _remove(looked_up)
            _remove(unfound)
        if preloaded:
            return loaded, self._missing_for.get(name, ())
        # A name the module's own import made findable (it extended sys.path) is no miss.
        missing = tuple(sorted({n for n in unfound.names if not importable(n)}))
        for imported in looked_up.names:
            self._missing_for.setdefault(imported, missing)
        return loaded, missing


def docstring(value: object) -> str | None:
    """``value.__doc__`` if it is a string (records hold only plain data)."""
    doc = getattr(value, "__doc__", None)
    return doc if isinstance(doc, str) else None


def plugin_record(
    module: str, attribute: str, value: object, origin: Origin
) -> PluginRecord | LoadError | None:
    """The record for ``value`` if it is a plugin, None if not, a LoadError if asking failed."""
    try:
        names = interface_names(value)
    except PLUGIN_FAULTS as exc:
        return LoadError(f"{module}:{attribute}", origin, exc)
    if names is None:
        return None
    provided, interfaces = names
    return PluginRecord(module, attribute, docstring(value), provided, interfaces, origin)


def scan_module(module: ModuleType, origin: Origin) -> tuple[ModuleRecords, list[LoadError]]:
    """Every module-level value that is a plugin, in the module's definition order.

    Underscore names and names imported from elsewhere count, as in Twisted; only the
    attributes the import system sets (``__name__``, ``__spec__``...) are not looked at.  A
    value whose inspection raises is reported and left out; the rest of the module still
    counts.  A module with no plugin that defines classes implementing IPlugin names them in
    ``unexported``: it most likely meant to export instances.
    """
    records: list[PluginRecord] = []
    errors: list[LoadError] = []
    for attribute, value in list(vars(module).items()):
        if attribute in IMPORT_MACHINERY:
            continue
        outcome = plugin_record(module.__name__, attribute, value, origin)
        if isinstance(outcome, PluginRecord):
            records.append(outcome)
        elif outcome is not None:
            errors.append(outcome)
    unexported = () if records else _unexported_classes(module)
    found = ModuleRecords(module.__name__, docstring(module), tuple(records), origin, unexported)
    return found, errors


def _unexported_classes(module: ModuleType) -> tuple[str, ...]:
    """Classes defined in ``module`` whose instances would be plugins."""
    found = []
    for attribute, value in vars(module).items():
        if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
            try:
                if implements_marker(value):
                    found.append(attribute)
            except PLUGIN_FAULTS:
                continue
    return tuple(found)


def scan_object(
    module: ModuleType, attribute: str, origin: Origin
) -> tuple[ModuleRecords | None, list[LoadError]]:
    """The record of the one object an entry point names, or why there is none."""
    target = f"{module.__name__}:{attribute}"
    try:
        value = resolve_attribute(module, attribute)
    except AttributeError as exc:
        return None, [LoadError(target, origin, exc)]
    outcome = plugin_record(module.__name__, attribute, value, origin)
    if isinstance(outcome, LoadError):
        return None, [outcome]
    if outcome is None:
        return None, [LoadError(target, origin, not_a_plugin(target, value))]
    return ModuleRecords(module.__name__, docstring(module), (outcome,), origin), []


def not_a_plugin(target: str, value: object) -> NotAPlugin:
    """Why ``value``, named by ``target``, is no plugin, with the likely fix."""
    if isinstance(value, type):
        try:
            if implements_marker(value):
                return NotAPlugin(f"{target}: class {value.__name__} implements IPlugin; "
                                  "export an instance of it")
        except PLUGIN_FAULTS:
            pass
    return NotAPlugin(f"{target} provides neither compat_plugin's nor Twisted's IPlugin")
