"""Modules and objects by dotted name.

A warm call imports only what it yields; ``importlib.import_module`` would add the
``importlib`` package itself to every process that has not imported it yet, so these helpers
use the import statement's own machinery.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Optional


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


# Where a top-level module would be imported from: its file (None for a namespace package)
# and the directories its submodules are imported from (empty for a plain module).
Places = tuple[Optional[str], tuple[str, ...]]


def top_level_places(name: str) -> Places | None:
    """Where the top-level module ``name`` is, or would be, imported from -- None if no finder
    knows it.  Nothing is imported: an imported module answers for itself, else each finder on
    ``sys.meta_path`` is asked in turn, as the import statement asks them."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None), tuple(getattr(module, "__path__", ()))
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, None)
        except Exception:  # a finder that fails on a name cannot tell where it is
            return None
        if spec is not None:
            return spec.origin, tuple(spec.submodule_search_locations or ())
    return None


def read_from(filename: str, places: Places | None) -> bool:
    """Whether a module imported from ``places`` (those of its top-level module) would be read
    from ``filename``: it is the top-level module's file, or lies in one of its directories."""
    if places is None:
        return False
    origin, directories = places
    return filename == origin or any(filename.startswith(os.path.join(d, "")) for d in directories)
