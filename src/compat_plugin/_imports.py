"""Modules and objects by dotted name.

A warm call imports only what it yields; ``importlib.import_module`` would add the
``importlib`` package itself to every process that has not imported it yet, so these helpers
use the import statement's own machinery.
"""

from __future__ import annotations

import sys
from types import ModuleType


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
