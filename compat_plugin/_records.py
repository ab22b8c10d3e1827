"""The data that flows through discovery: stamps, origins, plugin records, load errors.

Everything here is immutable and cheap to build, because a warm call builds one record per
cached plugin without importing anything.
"""

from __future__ import annotations

from typing import NamedTuple


class Stamp(NamedTuple):
    """What a cache entry is validated against: a file's ``st_mtime_ns`` and ``st_size``.

    Two stamps are equal only if both numbers are; a file rewritten within the same clock tick
    almost always changes size, and any later edit changes ``st_mtime_ns``.
    """

    mtime_ns: int
    size: int


class Origin(NamedTuple):
    """Where a plugin was found.

    ``kind`` is ``"directory"`` (``path`` is the plugin directory) or ``"entry-point"``
    (``distribution``, ``version`` and ``entry_point`` name it).
    """

    kind: str
    path: str | None = None
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None

    def __str__(self) -> str:
        if self.kind == "directory":
            return f"directory {self.path}"
        return f"{self.distribution} {self.version} (entry point {self.entry_point!r})"


class PluginRecord(NamedTuple):
    """One plugin, as known without importing it.

    ``module`` and ``attribute`` say where the object lives; ``provided`` holds the dotted
    names of the interfaces it declares directly, in declaration order; ``interfaces`` holds
    those and every base interface, so a query for any of them matches by name alone.
    """

    module: str
    attribute: str
    description: str | None
    provided: tuple[str, ...]
    interfaces: tuple[str, ...]
    origin: Origin

    @property
    def qualified_name(self) -> str:
        """``module:attribute``, the form entry points use."""
        return f"{self.module}:{self.attribute}"


class ModuleRecords(NamedTuple):
    """The plugins one module contributes, with the module's own docstring."""

    module: str
    description: str | None
    plugins: tuple[PluginRecord, ...]
    origin: Origin


class LoadError(NamedTuple):
    """A candidate that could not be imported or inspected; discovery went on without it."""

    target: str
    origin: Origin
    error: BaseException


class Skip(NamedTuple):
    """A candidate deliberately left out before import, and why (shadowed, disabled, a
    duplicate of an earlier candidate)."""

    target: str
    origin: Origin
    reason: str


class MalformedEntryPoint(ValueError):
    """An entry point's value does not name ``module`` or ``module:attribute``."""


class NotAPlugin(TypeError):
    """An entry point names an object that provides no IPlugin."""


class IncompatiblePlugin(Exception):
    """A plugin distribution requires a version of the host that is not installed."""
