"""The records every stage passes on: stamps, origins, plugin and module records, outcomes.

Everything here is immutable plain data.  A warm call builds a record only for a plugin that
provides the asked interface, so these types are cheap to build and hold nothing but strings,
integers and tuples of them.
"""

# The annotations of these classes are real objects, not strings: a NamedTuple compiles each
# string annotation when its class is made, and this module is imported by every warm call.
import os
from typing import NamedTuple, Optional


class Stamp(NamedTuple):
    """What a cache entry is validated against: a file's ``st_mtime_ns`` and ``st_size``.

    Two stamps are equal only if both numbers are.  A file rewritten within one clock tick
    almost always changes size, and any later edit changes ``st_mtime_ns``; stamps are
    compared for equality, never for age, so clocks and copied timestamps cannot hide a change.
    """

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: str) -> "Optional[Stamp]":
        """The stamp of the file or directory at ``path`` now, or None if it cannot be read."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return cls(st.st_mtime_ns, st.st_size)


class Origin(NamedTuple):
    """Where a plugin was found.

    ``kind`` is ``"directory"`` (``path`` is the plugin directory) or ``"entry-point"``
    (``distribution``, ``version`` and ``entry_point`` name it; ``path`` is its metadata).
    """

    kind: str
    path: Optional[str] = None
    distribution: Optional[str] = None
    version: Optional[str] = None
    entry_point: Optional[str] = None

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
    description: Optional[str]
    provided: tuple[str, ...]
    interfaces: tuple[str, ...]
    origin: Origin

    @property
    def qualified_name(self) -> str:
        """``module:attribute``, the form entry points use."""
        return f"{self.module}:{self.attribute}"


class ModuleRecords(NamedTuple):
    """The plugins one module contributes, with the module's own docstring.

    ``unexported`` names, for a module without plugins, the classes it defines whose
    instances would be plugins: it most likely meant to export an instance.
    """

    module: str
    description: Optional[str]
    plugins: tuple[PluginRecord, ...]
    origin: Origin
    unexported: tuple[str, ...] = ()


class LoadError(NamedTuple):
    """A candidate that could not be imported, inspected or accepted; discovery went on
    without it.  ``error`` is the exception that stopped it, with its traceback."""

    target: str
    origin: Origin
    error: BaseException

    @property
    def kind(self) -> str:
        """What went wrong, in a few words: ``import error``, ``not a plugin``, ..."""
        for kind, words in _KINDS:
            if isinstance(self.error, kind):
                return words
        return "import error" if ":" not in self.target else "inspection error"

    def describe(self) -> str:
        """One line naming the candidate, where it came from, and the exception."""
        return (f"{self.target} from {self.origin}: {self.kind}: "
                f"{type(self.error).__name__}: {self.error}")

    def raised_at(self) -> str:
        """Where the plugin's own code raised: ``file:line: source`` of the last frame in the
        plugin's module (else the innermost outside the import system and compat_plugin; for
        a SyntaxError, the offending line); empty if the plugin's code never ran."""
        from ._tracebacks import plugin_frame

        return plugin_frame(self.error, self.target.partition(":")[0])


class Skip(NamedTuple):
    """A candidate deliberately left out before import, and why (shadowed, disabled, a
    duplicate of an earlier candidate)."""

    target: str
    origin: Origin
    reason: str


class Discovery(NamedTuple):
    """The outcome of one discovery pass (see :func:`compat_plugin.discover`).

    ``plugins`` are in the documented resolution order, each with its ``origin`` (with an
    interface given, only those providing it); ``errors`` lists every candidate that could not
    be imported, inspected or accepted, with the exception that stopped it; ``skipped`` every
    candidate left out on purpose before import (shadowed, disabled, a duplicate), with the
    reason; ``modules`` every plugin module read, in order, with its docstring and plugins.
    """

    plugins: tuple[PluginRecord, ...]
    errors: tuple[LoadError, ...]
    skipped: tuple[Skip, ...]
    modules: tuple[ModuleRecords, ...] = ()


class MalformedEntryPoint(ValueError):
    """An entry point's value does not name ``module`` or ``module:attribute``."""


class NotAPlugin(TypeError):
    """An entry point or attribute names an object that provides no IPlugin."""


class IncompatiblePlugin(Exception):
    """A plugin distribution requires a version of the host that is not installed."""


class StaleRecord(Exception):
    """A cached record no longer describes the object it names."""


_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (IncompatiblePlugin, "incompatible with the host"),
    (NotAPlugin, "not a plugin"),
    (MalformedEntryPoint, "malformed entry point"),
)
