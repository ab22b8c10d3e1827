"""Modules and objects by dotted name, and where a module would be imported from.

A warm call imports only what it yields; ``importlib.import_module`` would add the
``importlib`` package itself to every process that has not imported it yet, so these helpers
use the import statement's own machinery.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any


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


def imported_file(name: str) -> str | None:
    """The file importing the module ``name`` now would read, as far as the finders tell
    without importing anything -- None if they cannot tell.

    An imported module answers for itself; else its deepest imported package's ``__path__``
    (the whole ``sys.path`` for a top-level name) is searched for the next part of the name,
    and so on down, by asking each finder on ``sys.meta_path`` in turn, as ``import`` asks
    them.  A package whose ``__init__`` extends its own ``__path__`` (pkgutil's namespace
    packages) is searched only where it lies, as no finder sees what running it would add: a
    file not found there is "cannot tell", never "elsewhere".
    """
    module = sys.modules.get(name)
    if module is not None:
        found = getattr(module, "__file__", None)
        return found if isinstance(found, str) else None
    parts = name.split(".")
    depth = len(parts) - 1
    while depth and ".".join(parts[:depth]) not in sys.modules:
        depth -= 1
    path = getattr(sys.modules[".".join(parts[:depth])], "__path__", None) if depth else None
    if depth and path is None:
        return None
    try:
        for end in range(depth + 1, len(parts) + 1):
            spec = _find_spec(".".join(parts[:end]), path)
            if spec is None:
                return None
            if end == len(parts):
                return spec.origin if isinstance(spec.origin, str) else None
            path = spec.submodule_search_locations
            if path is None:
                return None
    except Exception:  # a finder, or a package's __path__, that fails cannot tell
        return None
    return None


def _find_spec(name: str, path: Any) -> Any:
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is not None:
            spec = find_spec(name, path, None)
            if spec is not None:
                return spec
    return None


def same_file(recorded: str, now: str | None) -> bool:
    """Whether a module scanned from ``recorded`` would be read from it again, given where
    ``imported_file`` says it would be read from now (None: it cannot tell, and the scan's
    stamp alone decides).  Two spellings of one file (through a symbolic link) are one."""
    return (now is None or recorded == now
            or os.path.realpath(recorded) == os.path.realpath(now))
