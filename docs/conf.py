"""Sphinx configuration: the API reference, built from the docstrings.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Document this tree's compat_plugin, installed or not.
sys.path.insert(0, str(ROOT / "src"))

project = "compat_plugin"
author = "The compat_plugin developers"
copyright = "2026, The compat_plugin developers"
_version = re.search(
    r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M
)
release = version = _version.group(1) if _version else ""

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []

# Types in the signatures: the docstrings are prose, without per-parameter field lists.
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
# Unresolvable cross-references (zope.interface, typing internals) are not errors.
nitpicky = False


def _skip_tuple_fields(
    app: Any, what: str, name: str, obj: object, skip: bool, options: Any
) -> bool | None:
    """Leave out NamedTuple fields that only say "Alias for field number N".

    The class signature already lists the fields and the class docstring says what they are.
    """
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    return None


def _drop_type_docstrings(
    app: Any, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """A constant without a ``#:`` comment would show its type's docstring (tuple's): drop it."""
    own = (type(obj).__doc__ or "").strip().splitlines()
    if what == "data" and own and lines and lines[0].strip() == own[0].strip():
        lines.clear()


def setup(app: Any) -> None:
    app.connect("autodoc-skip-member", _skip_tuple_fields)
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
