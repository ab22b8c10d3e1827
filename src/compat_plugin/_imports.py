"""Modules and objects by dotted name; where a module would be imported from, and whether it
can be imported now -- both asked of the finders without importing anything.

A warm call imports only what it yields; ``importlib.import_module`` would add the
``importlib`` package itself to every process that has not imported it yet, so these helpers
use the import statement's own machinery.  A warm call also asks whether a cached module's
missed imports have become importable, so this module stays small and imports nothing big.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ._path_entries import is_import_path_finder


def module_named(name: str) -> ModuleType:
    """The module ``name`` (absolute, dotted), imported if need be; whatever the import raises
    propagates."""
    __import__(name)
    # The module as the import left it in sys.modules, which a module may replace while it
    # runs; import_module returns the same.
    return sys.modules[name]


def resolve_attribute(module: ModuleType, path: str) -> object:
    """``module.a.b`` for ``path`` ``"a.b"``; AttributeError if any step is missing."""
    value: object = module
    for part in path.split("."):
        value = getattr(value, part)
    return value


def would_read(name: str, recorded: str) -> bool:
    """Whether importing the module ``name`` now would read the file ``recorded``, as far as
    the finders tell without importing anything.  Two spellings of one file (through a
    symbolic link) are one.

    Asked as :func:`importable` asks.  No when nothing would import the module at all.  Yes
    where the finders cannot tell, and the scan's stamp alone decides: a finder fails, or is
    of the protocol older than ``find_spec``, which Python asks before 3.12; the module has no
    file; or it is not found below a package (or a module) not imported yet, whose code may
    extend its ``__path__`` (pkgutil's namespace packages; a module making itself a package),
    and no finder sees what running it would add.
    """
    found, certain = _located(name)
    if found is None or not certain:
        return not certain
    now = getattr(found, "__file__" if isinstance(found, ModuleType) else "origin", None)
    return (not isinstance(now, str) or recorded == now
            or os.path.realpath(recorded) == os.path.realpath(now))


# -- whether a module can be imported now ---------------------------------------------------


def importable(name: str) -> bool:
    """Whether ``import name`` would find a module now.

    Decided without importing anything: each finder on ``sys.meta_path`` is asked, with each
    parent package's search locations taken from the parent's spec (or from the parent module,
    if already imported).  A finder that raises counts as finding nothing -- where ``import``
    would stop with its error, the finders after it are asked -- and a package whose
    ``__path__`` cannot be read has nothing below it.
    """
    return _located(name)[0] is not None


def _located(name: str) -> tuple[Any, bool]:
    """The module ``name`` if imported, else the spec the finders give for it -- or None if a
    part of the name is not found (or is blocked in ``sys.modules``); with whether the answer
    is certain (see :func:`would_read` for when it is not)."""
    parts = name.split(".")
    search: list[str] | None = None
    found: Any = None
    # Whether a package not imported yet, the one searched last or one above it, runs code of
    # its own when imported, which may add to the search locations the specs give.
    extensible = False
    doubtful = False  # a finder the import system would ask first was not asked
    locations: Any = ()
    try:
        for depth in range(1, len(parts) + 1):
            partial = ".".join(parts[:depth])
            if partial in sys.modules:
                found = sys.modules[partial]
                if found is None:
                    return None, True
                locations = getattr(found, "__path__", None)
                extensible = False
            elif locations is None:  # below a module, not a package, only what is imported --
                return None, not extensible  # unless its code, not run yet, makes it one
            else:
                found, certain = _find_spec(partial, search)
                if found is None:
                    return None, certain and not extensible
                doubtful = doubtful or not certain
                locations = found.submodule_search_locations
                # A namespace package has no __init__ (but may lie in one that has).
                extensible = extensible or found.origin is not None
            if depth < len(parts) and locations is not None:
                search = list(locations)
    except Exception:  # a package whose __path__ cannot be read: nothing can be told
        return None, False
    return found, not doubtful


_OLDER_FINDERS_ASKED = sys.version_info < (3, 12)


def _find_spec(name: str, search: Sequence[str] | None) -> tuple[Any, bool]:
    """The first spec a finder on ``sys.meta_path`` gives for ``name``, and whether that is
    certain: not if a finder failed, or is one of the older protocol that the import system
    still asks before Python 3.12 (``find_module`` only), which is not asked here."""
    certain = True
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            certain = certain and not (_OLDER_FINDERS_ASKED and hasattr(finder, "find_module"))
            continue
        try:
            if search is not None and is_import_path_finder(finder):
                spec = _path_spec(name, search)
            else:
                spec = find_spec(name, search, None)
        except Exception:
            certain = False
            continue
        if spec is not None:
            return spec, certain
    return None, certain


def _entry_finder(entry: str) -> Any:
    """The finder the import system uses for the path entry ``entry``: the one it keeps in
    ``sys.path_importer_cache``, else the first of ``sys.path_hooks`` that takes the entry
    (kept there as the import system would keep it)."""
    if entry in sys.path_importer_cache:
        return sys.path_importer_cache[entry]
    for hook in sys.path_hooks:
        try:
            finder = hook(entry)
        except ImportError:
            continue
        sys.path_importer_cache[entry] = finder
        return finder
    return None


def _path_spec(name: str, search: Sequence[str]) -> Any:
    """What ``PathFinder`` finds for ``name`` in ``search``, asked of each entry's finder.

    ``PathFinder`` itself cannot answer for a namespace package below a package that is not
    imported: the search path it builds for it reads the parent module from ``sys.modules``.
    """
    portions: list[str] = []
    for entry in search:
        finder = _entry_finder(entry)
        spec = entry_spec(finder, name) if finder is not None else None
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions.extend(spec.submodule_search_locations or ())
    return _namespace(name, portions) if portions else None


def entry_spec(finder: Any, name: str) -> Any:
    """What one path entry's finder finds for ``name``; a finder of the older protocols
    (Python 3.9's zipimporter has only ``find_loader``; before 3.12, ``find_module`` is asked
    too) is asked as the import system asks it."""
    if hasattr(finder, "find_spec"):
        return finder.find_spec(name)
    portions: Sequence[str] = ()
    if hasattr(finder, "find_loader"):
        loader, portions = finder.find_loader(name)
    elif _OLDER_FINDERS_ASKED and hasattr(finder, "find_module"):
        loader = finder.find_module(name)
    else:
        return None
    if loader is None:
        return _namespace(name, portions) if portions else None
    from importlib.util import spec_from_loader

    return spec_from_loader(name, loader)


def _namespace(name: str, portions: Sequence[str]) -> Any:
    """The spec of a namespace package made of ``portions``."""
    # importlib.machinery.ModuleSpec, taken from a spec the interpreter made at start-up: a
    # warm call asking about a missed import below a namespace package imports no importlib.
    spec_type: Any = type(sys.__spec__)
    namespace = spec_type(name, None, is_package=True)
    namespace.submodule_search_locations = list(portions)
    return namespace
