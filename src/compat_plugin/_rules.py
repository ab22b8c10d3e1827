"""Which candidates may be imported: the enable and disable patterns, decided before import."""

from __future__ import annotations

import os
from collections.abc import Iterable


class Rules:
    """Glob patterns checked against a candidate's names before it is imported.

    A candidate is left out when a disable pattern matches its distribution name, entry-point
    name or module name (short or dotted) and no enable pattern does.  Disable patterns come
    from ``COMPAT_PLUGIN_DISABLE`` (comma-separated) and the ``disable`` argument.  Distribution
    names are compared normalized (case, and ``-``, ``_`` and ``.`` alike), as packaging
    compares them.
    """

    def __init__(self, disable: Iterable[str] = (), enable: Iterable[str] = ()) -> None:
        """Raises TypeError unless ``disable`` and ``enable`` are iterables of strings (one
        string alone would be taken character by character)."""
        from_environment = os.environ.get("COMPAT_PLUGIN_DISABLE", "").split(",")
        self.disable = _patterns(from_environment) + _patterns(disable, "disable")
        self.enable = _patterns(enable, "enable")

    def blocking(self, names: tuple[str, ...], distribution: str | None = None) -> str | None:
        """The disable pattern that keeps these names out, or None if they may be imported."""
        for pattern in self.disable:
            if _matches(pattern, names, distribution):
                if any(_matches(allow, names, distribution) for allow in self.enable):
                    return None
                return pattern
        return None


def _patterns(given: Iterable[str], argument: str = "") -> tuple[str, ...]:
    if isinstance(given, (str, bytes)):
        raise TypeError(f"{argument} takes glob patterns, e.g. [{given!r}], not one string")
    patterns = list(given)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{argument} takes glob patterns (strings), not {pattern!r}")
    return tuple(p.strip() for p in patterns if p.strip())


def _matches(pattern: str, names: tuple[str, ...], distribution: str | None) -> bool:
    from fnmatch import fnmatchcase

    if distribution is not None:
        # Imported only when patterns are given: packaging is not needed otherwise.
        from packaging.utils import canonicalize_name

        if fnmatchcase(distribution, canonicalize_name(pattern)):
            return True
    return any(fnmatchcase(name, pattern) for name in names)
