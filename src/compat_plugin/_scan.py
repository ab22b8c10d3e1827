"""Importing one plugin module and turning its module-level objects into records, noting what
its import looked for and could not find.

A plugin module may define its plugins only when an optional dependency imports
(``try: import optdep``).  While a module is imported for a scan, two finders are placed on
``sys.meta_path`` -- first, one that notes every name looked up, and last, one that notes every
name no other finder found -- so the scan knows which imports failed for want of a module
(``importlib.util.find_spec`` calls included).  With each name goes the module whose first
import looked for it with an ``import`` (``_importer``): the scanned module itself, or one it
imported along the way.  The caches keep those misses with the module's entry;
``_entries.becomes_importable`` later tells, without importing anything, whether one has
appeared where it matters.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, NamedTuple

from ._directories import module_stamp
from ._entries import unrun_lazy
from ._imports import importable, module_named, resolve_attribute
from ._interfaces import implements_marker, interface_names
from ._records import (
    PLUGIN_FAULTS,
    LoadError,
    ModuleRecords,
    NotAPlugin,
    Origin,
    PluginRecord,
    Stamp,
)

if TYPE_CHECKING:
    from ._entries import Miss

# Set on every module by the import system, never by a plugin's author.
IMPORT_MACHINERY = frozenset({
    "__name__", "__doc__", "__package__", "__loader__", "__spec__", "__file__", "__cached__",
    "__builtins__", "__path__", "__annotations__",
})


class Scan(NamedTuple):
    """What importing and inspecting one candidate gave.

    ``records`` is None if nothing could be taken from it (the import failed, or an entry
    point's object is missing or no plugin); ``errors`` says why, and names objects whose
    inspection failed; ``missing`` holds the modules its import looked for in vain, each with
    the module whose first import looked (``_entries.Miss``), sorted;
    ``preloaded`` is true if the module was imported before this scan (by another plugin
    module, say), so what was seen may predate its file (``Scanner.reflects``) and, if no scan
    of this process imported it, ``missing`` may be incomplete; ``file`` is the module's
    ``__file__``.
    """

    records: ModuleRecords | None
    errors: tuple[LoadError, ...]
    missing: tuple[Miss, ...]
    preloaded: bool
    file: str | None


class _Recorder:
    """A finder that finds nothing and notes every name it is asked for -- with, if
    ``attributing``, the module whose import asked (``_importer``), else None."""

    def __init__(self, attributing: bool = False) -> None:
        self.names: list[Miss] = []
        # Without sys._getframe (not every Python has it), no importer is told.
        self._attributing = attributing and hasattr(sys, "_getframe")

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append((name, _importer(sys._getframe(1)) if self._attributing else None))


def _importer(frame: FrameType | None) -> str | None:
    """The module that made the look-up reaching a finder from ``frame``, if the look-up is an
    ``import`` made while the import system first loads that module under a scan (a frame of
    ``Scanner._import``): the module whose body runs in the innermost frame running a module's
    body.

    None if the look-up is no ``import`` -- ``importlib.util.find_spec`` and other probes, which
    leave a module they find out of ``sys.modules``, so that nothing tells later whether that
    importer found it -- or if that innermost body is not a first load of a module (a reload,
    ``runpy``, ``exec`` in a module's namespace: code that may run again), or lies outside the
    scan (another thread's import), or cannot be told.  ``Scanner`` further keeps an importer
    only if the scan imported it once and changed ``sys.modules`` only by what it imported.
    """
    try:
        # An import statement, ``__import__`` and ``import_module`` all pass through the import
        # system's _find_and_load_unlocked before asking the finders; a probe does not.
        importing = False
        while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
            importing = importing or frame.f_code.co_name == "_find_and_load_unlocked"
            frame = frame.f_back
        if not importing:
            return None
        found: str | None = None
        # The scan is told by its code, not held by its frame: a frame kept by the finder would
        # keep itself (through the finder in its locals) until the garbage collector ran.
        while frame is not None and frame.f_code is not _SCAN_CODE:
            if found is None and frame.f_code.co_name == "<module>":
                found = _first_load(frame) or ""  # "": the innermost body is no first load
            frame = frame.f_back
        return (found or None) if frame is not None else None
    except Exception:  # an odd object in sys.modules or among the globals: none is told
        return None


def _first_load(body: FrameType) -> str | None:
    """The name of the module whose body runs in the frame ``body``, if the import system is
    loading it for the first time (not reloading it: ``_exec``) and no other code ran it."""
    name = body.f_globals.get("__name__")
    # What sys.modules holds may be a proxy for the module (Twisted's deprecation wrappers).
    module = sys.modules.get(name) if type(name) is str else None
    if (module is None or unrun_lazy(module)
            or getattr(module, "__dict__", None) is not body.f_globals):
        return None
    caller = body.f_back
    while caller is not None and caller.f_code.co_name != "<module>":
        if caller.f_code.co_filename == "<frozen importlib._bootstrap>" and (
                caller.f_code.co_name in ("_load_unlocked", "_exec")):
            return name if caller.f_code.co_name == "_load_unlocked" else None
        caller = caller.f_back
    return None


def _remove(finder: object) -> None:
    for position, present in enumerate(sys.meta_path):
        if present is finder:
            del sys.meta_path[position]
            return


# How long a scan waits for another thread's scan to finish importing.
_WAIT_SECONDS = 5.0


class Scanner:
    """Imports plugin modules for scans, one import at a time, and remembers, for the
    process, which names each import looked for in vain -- also on behalf of modules imported
    along the way, which a later scan finds already imported -- and which module object, spec
    and file stamp each scan's import gave (``reflects``)."""

    def __init__(self) -> None:
        self._missing_for: dict[str, tuple[Miss, ...]] = {}
        self._importing = threading.RLock()
        # How many times a scan took the lock, and during which of these holdings a scan of
        # another thread waited its full time (it does not wait again for that one).
        self._holdings, self._waited_out = 0, -1
        # Each module a scan imported: what sys.modules held, its spec, its file's stamp then.
        self._imported: dict[str, tuple[object, object, Stamp | None]] = {}

    def reflects(self, name: str) -> bool:
        """Whether the module ``name`` is still the one a scan of this process imported (so
        what it failed to import is known) -- neither taken out of ``sys.modules`` and
        imported again nor reloaded since (a reload gives it a new spec) -- and its file has
        kept the stamp it had then."""
        seen = self._imported.get(name)
        return (seen is not None and seen[2] is not None and still_loaded(seen[:2], name)
                and _file_stamp(seen[1]) == seen[2])

    def scan(self, name: str, attribute: str | None, origin: Origin,
             stamp: Stamp | None = None) -> Scan:
        """Import ``name`` and take every plugin in it (``attribute`` None), or the one object
        ``attribute`` names (an entry point's ``module:attribute``).  ``stamp``, if given, is
        the stamp of the module's file as just listed (a file's own, not an archive member's):
        a module the finders then say is not there is looked for once more."""
        preloaded = name in sys.modules
        turn = self._take_turn()
        try:
            loaded, missing = self._import(name, origin, stamp)
            if stamp is not None and any(miss[0] == name for miss in missing):
                # The finders may remember a listing of its directory made before its file
                # came, the directory's time unchanged since (whole-second file systems).
                _forget_listings(name)
                loaded, missing = self._import(name, origin, stamp)
        finally:
            if turn:
                self._importing.release()
        if isinstance(loaded, LoadError):
            return Scan(None, (loaded,), missing, preloaded, None)
        records: ModuleRecords | None
        if attribute is None:
            records, errors = scan_module(loaded, origin)
        else:
            records, errors = scan_object(loaded, attribute, origin)
        return Scan(records, tuple(errors), missing, preloaded, getattr(loaded, "__file__", None))

    def _take_turn(self) -> bool:
        """Whether this scan holds the lock that lets one scan's import run at a time (to be
        released after it): another thread's, run meanwhile, would ask the finders this one
        watches with.  The same thread's, nested (a plugin module whose import calls
        getPlugins), goes ahead; another thread's waits, but not for ever, and only once for
        one holding: a plugin module may itself start a thread that scans, and wait for it."""
        holding = self._holdings
        if self._waited_out == holding:
            acquired = self._importing.acquire(blocking=False)
        else:
            acquired = self._importing.acquire(timeout=_WAIT_SECONDS)
        if acquired:
            self._holdings += 1
        else:
            self._waited_out = holding
        return acquired

    def _import(self, name: str, origin: Origin, stamp: Stamp | None
                ) -> tuple[ModuleType | LoadError, tuple[Miss, ...]]:
        preloaded = name in sys.modules
        looked_up, unfound = _Recorder(), _Recorder(attributing=True)
        held = len(sys.modules)
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
        findable = {name for name, _ in unfound.names if importable(name)}
        # An importer counts only if this scan's import of it was its first, and sys.modules
        # changed only by what the scan imported: imported twice, or imported before and taken
        # out to be imported afresh, it was run again by code that may run it again.  (Each
        # name looked up and now imported was added by the scan; any other count means entries
        # removed, or added without a look-up, which could hide a removal.)
        looked = [name for name, _ in looked_up.names]
        modules = sys.modules
        kept = len(modules) == held + len({name for name in looked if name in modules})
        missing = tuple(sorted(
            {(name, by if kept and by and looked.count(by) == 1 else None)
             for name, by in unfound.names if name not in findable},
            key=lambda miss: (miss[0], miss[1] or "")))
        self._note(name, looked, missing, stamp)
        return loaded, missing

    def _note(self, name: str, imported: list[str], missing: tuple[Miss, ...],
              stamp: Stamp | None) -> None:
        """Remember, of the modules the scan of ``name`` imported, what each failed to import
        -- and, for those of ``name``'s own top-level package (those a later scan may be of),
        the module, its spec and its file's stamp (``name``'s: ``stamp``, if given)."""
        top = name.partition(".")[0]
        for module in imported:
            if module in sys.modules:
                self._missing_for[module] = missing
                if module == top or module.startswith(top + "."):
                    found, spec = loaded(module)
                    known = stamp if module == name else None
                    self._imported[module] = (found, spec, known or _file_stamp(spec))


# What ``_importer`` knows the frame of a scan by.
_SCAN_CODE = Scanner._import.__code__


def loaded(name: str) -> tuple[object, object]:
    """What ``sys.modules`` holds under ``name`` (None: nothing) and its spec -- not looked at
    in a module importlib's LazyLoader made, which would run it."""
    module = sys.modules.get(name)
    if module is None or unrun_lazy(module):
        return module, None
    try:
        return module, getattr(module, "__spec__", None)
    except Exception:  # an odd object in sys.modules
        return module, None


def still_loaded(seen: tuple[object, object], name: str) -> bool:
    """Whether ``sys.modules`` holds under ``name`` the very module and spec ``loaded`` gave
    as ``seen``: not imported again, not reloaded since."""
    module, spec = loaded(name)
    return seen[0] is module and seen[1] is spec


def _forget_listings(name: str) -> None:
    """Have the finders of the directories of ``name``'s package list them again (and no
    other: ``importlib.invalidate_caches`` also imports importlib.metadata, on Python 3.13)."""
    parent = sys.modules.get(name.rpartition(".")[0])
    for entry in list(getattr(parent, "__path__", None) or ()):
        finder = sys.path_importer_cache.get(entry) if isinstance(entry, str) else None
        invalidate = getattr(finder, "invalidate_caches", None)
        if callable(invalidate):
            invalidate()


def _file_stamp(spec: object) -> Stamp | None:
    """The stamp now of the file a module of spec ``spec`` was loaded from, if it has one."""
    file = getattr(spec, "origin", None) if getattr(spec, "has_location", False) else None
    return module_stamp(file) if isinstance(file, str) else None


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
