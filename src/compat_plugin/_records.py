"""The records every stage passes on: stamps, origins, plugin and module records, outcomes.

Everything here is immutable plain data: named tuples of strings, integers and tuples of
them.  A warm call builds a record only for a plugin that provides the asked interface.

Every warm call imports this module, and making a class with ``typing.NamedTuple`` or
``collections.namedtuple`` compiles code for it -- about ten times what making a class
costs.  So at run time each record is a :class:`Record`, a tuple subclass with the same
interface as a named tuple (fields by name, ``_fields``, ``_field_defaults``, ``_replace``,
``_asdict``, ``_make``, ``copy.replace``, pickling), whose constructor is written out below;
type checkers read the same fields, typed, from the ``typing.NamedTuple`` declarations
(``tests/test_records.py`` checks that the two agree).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple


class UnknownFields(TypeError, ValueError):
    """``_replace`` was given names that are not fields.  Both kinds, as named tuples raise
    ValueError before Python 3.13 and TypeError from then on."""


class Record(tuple[Any, ...]):
    """What every record class is at run time: a tuple whose items are also its named fields,
    behaving as a named tuple does.  Made by :func:`record_type`."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _field_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Any:
        made = tuple.__new__(cls, iterable)
        if len(made) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
        return made

    def _replace(self, **changes: Any) -> Any:
        values = [changes.pop(name, value) for name, value in zip(self._fields, self)]
        if changes:
            raise UnknownFields(f"Got unexpected field names: {sorted(changes)!r}")
        return self._make(values)

    # ``copy.replace`` (Python 3.13) asks for this.
    __replace__ = _replace

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
        return f"{type(self).__name__}({fields})"


def record_type(name: str, new: Callable[..., Any]) -> type[Record]:
    """A :class:`Record` class of this module whose constructor is ``new`` (``cls`` and then
    one parameter per field, defaults included, returning the tuple): its parameters name the
    fields."""
    code = new.__code__
    fields = code.co_varnames[1:code.co_argcount]
    defaults = new.__defaults__ or ()
    # Named as errors name it: by the code object before Python 3.10, the function after.
    new.__code__ = code.replace(co_name="__new__")
    new.__name__, new.__qualname__ = "__new__", f"{name}.__new__"
    namespace: dict[str, Any] = {
        "__slots__": (), "__new__": new, "__match_args__": fields, "_fields": fields,
        "_field_defaults": dict(zip(fields[len(fields) - len(defaults):], defaults)),
        "__module__": __name__,
    }
    for at, field in enumerate(fields):
        namespace[field] = property(itemgetter(at), doc=f"Alias for field number {at}")
    return type(name, (Record,), namespace)


if TYPE_CHECKING:

    class _Stamp(NamedTuple):
        mtime_ns: int
        size: int

    class _Origin(NamedTuple):
        kind: str
        path: str | None = None
        distribution: str | None = None
        version: str | None = None
        entry_point: str | None = None

    class _PluginRecord(NamedTuple):
        module: str
        attribute: str
        description: str | None
        provided: tuple[str, ...]
        interfaces: tuple[str, ...]
        origin: Origin

    class _ModuleRecords(NamedTuple):
        module: str
        description: str | None
        plugins: tuple[PluginRecord, ...]
        origin: Origin
        unexported: tuple[str, ...] = ()

    class _LoadError(NamedTuple):
        target: str
        origin: Origin
        error: BaseException

    class _Skip(NamedTuple):
        target: str
        origin: Origin
        reason: str

    class _Discovery(NamedTuple):
        plugins: tuple[PluginRecord, ...]
        errors: tuple[LoadError, ...]
        skipped: tuple[Skip, ...]
        modules: tuple[ModuleRecords, ...] = ()

else:
    # Each constructor names its record's fields, in order, with their defaults.
    _new = tuple.__new__

    def _stamp(cls, mtime_ns, size):
        return _new(cls, (mtime_ns, size))

    def _origin(cls, kind, path=None, distribution=None, version=None, entry_point=None):
        return _new(cls, (kind, path, distribution, version, entry_point))

    def _plugin_record(cls, module, attribute, description, provided, interfaces, origin):
        return _new(cls, (module, attribute, description, provided, interfaces, origin))

    def _module_records(cls, module, description, plugins, origin, unexported=()):
        return _new(cls, (module, description, plugins, origin, unexported))

    def _load_error(cls, target, origin, error):
        return _new(cls, (target, origin, error))

    def _skip(cls, target, origin, reason):
        return _new(cls, (target, origin, reason))

    def _discovery(cls, plugins, errors, skipped, modules=()):
        return _new(cls, (plugins, errors, skipped, modules))

    _Stamp = record_type("Stamp", _stamp)
    _Origin = record_type("Origin", _origin)
    _PluginRecord = record_type("PluginRecord", _plugin_record)
    _ModuleRecords = record_type("ModuleRecords", _module_records)
    _LoadError = record_type("LoadError", _load_error)
    _Skip = record_type("Skip", _skip)
    _Discovery = record_type("Discovery", _discovery)


class Stamp(_Stamp):
    """What a cache entry is validated against: a file's ``st_mtime_ns`` and ``st_size``.

    Two stamps are equal only if both numbers are.  A file rewritten within one clock tick
    almost always changes size, and any later edit changes ``st_mtime_ns``; stamps are
    compared for equality (``matches``: or the recorded time cut to whole seconds), never for
    age, so clocks and copied timestamps cannot hide a change.
    """

    __slots__ = ()

    def matches(self, now: Stamp | None, written_ns: int | None = None) -> bool:
        """Whether the file stamped ``self`` when a cache recorded it is, stamped ``now``, the
        same file: the stamps are equal -- or, for a cache file written at ``written_ns``
        (its own ``st_mtime_ns``), the sizes are and ``now`` holds the recorded time cut to
        whole seconds (``same_second``)."""
        return now is not None and (self == now or (
            written_ns is not None and self.size == now.size
            and same_second(self.mtime_ns, now.mtime_ns, written_ns)))

    @classmethod
    def of(cls, path: str) -> Stamp | None:
        """The stamp of the file or directory at ``path`` now, or None if it cannot be read."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return cls(st.st_mtime_ns, st.st_size)


def same_second(recorded_ns: int, now_ns: int, written_ns: int) -> bool:
    """Whether ``now_ns`` is ``recorded_ns`` truncated to whole seconds, recorded by a cache
    file written at ``written_ns``, after the recorded second was over.

    What a file's time becomes when it travels through an archive that keeps only seconds:
    container image layers (Docker's and containerd's layer writers truncate), tar files in
    the GNU or ustar format.  A file whose time became its whole second without changing size
    is taken to be the one recorded -- no more than Python asks of a source file before
    trusting its bytecode (the same second and size) -- unless the cache was written within
    that second: a change later in it would be cut to the same time (git calls such entries
    racy), so only the exact stamp holds.
    """
    second = 1_000_000_000
    return (now_ns == recorded_ns - recorded_ns % second
            and recorded_ns < written_ns - written_ns % second)


class Origin(_Origin):
    """Where a plugin was found: ``kind``, ``path``, ``distribution``, ``version``,
    ``entry_point``.

    ``kind`` is ``"directory"`` (``path`` is the plugin directory) or ``"entry-point"``
    (``distribution``, ``version`` and ``entry_point`` name it; ``path`` is its metadata).
    """

    __slots__ = ()

    def __str__(self) -> str:
        if self.kind == "directory":
            return f"directory {self.path}"
        if self.entry_point is None:  # the distribution as a whole
            return f"{self.distribution} {self.version}"
        return f"{self.distribution} {self.version} (entry point {self.entry_point!r})"


class PluginRecord(_PluginRecord):
    """One plugin, as known without importing it: ``module``, ``attribute``,
    ``description``, ``provided``, ``interfaces``, ``origin``.

    ``module`` and ``attribute`` say where the object lives; ``provided`` holds the dotted
    names of the interfaces it declares directly, in declaration order; ``interfaces`` holds
    those and every base interface, so a query for any of them matches by name alone.
    """

    __slots__ = ()

    @property
    def qualified_name(self) -> str:
        """``module:attribute``, the form entry points use."""
        return f"{self.module}:{self.attribute}"


class ModuleRecords(_ModuleRecords):
    """The plugins one module contributes: ``module``, ``description`` (its docstring),
    ``plugins``, ``origin``, ``unexported``.

    ``unexported`` names, for a module without plugins, the classes it defines whose
    instances would be plugins: it most likely meant to export an instance.
    """

    __slots__ = ()


class LoadError(_LoadError):
    """A candidate that could not be imported, inspected or accepted; discovery went on
    without it.  ``target`` names it, ``origin`` says where it came from, ``error`` is the
    exception that stopped it, with its traceback."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        """What went wrong, in a few words: ``import error``, ``not a plugin``, ..."""
        for kind, words in _KINDS:
            if isinstance(self.error, kind):
                return words
        module, attribute = self.target.partition(":")[::2]
        # A plugin loaded from a record, whose module is gone, was not inspected.
        return ("import error" if not attribute or missing_module(self.error, module)
                else "inspection error")

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


class Skip(_Skip):
    """A candidate deliberately left out before import: ``target``, ``origin``, and the
    ``reason`` (shadowed, disabled, a duplicate of an earlier candidate)."""

    __slots__ = ()


class Discovery(_Discovery):
    """The outcome of one discovery pass (see :func:`compat_plugin.discover`).

    ``plugins`` are in the documented resolution order, each with its ``origin`` (with an
    interface given, only those providing it); ``errors`` lists every candidate that could not
    be imported, inspected or accepted, with the exception that stopped it; ``skipped`` every
    candidate left out on purpose before import (shadowed, disabled, a duplicate), with the
    reason; ``modules`` every plugin module read, in order, with its docstring and plugins.
    """

    __slots__ = ()


class Value:
    """A few named fields, for the records the caches keep internally: iterable, compared and
    hashed as the tuple of its fields, like a named tuple -- whose class costs several times
    as much to make, on every warm call's imports.  Subclasses list their fields in
    ``__slots__`` and set them all in ``__init__``."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._fields())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and type(other) is type(self) and (
            other._fields() == self._fields())

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


# What a broken plugin may raise while imported or inspected.  SystemExit is included because
# a plugin calling sys.exit() at import time must not end its host; KeyboardInterrupt is not.
PLUGIN_FAULTS = (Exception, SystemExit)


class MalformedEntryPoint(ValueError):
    """An entry point's value does not name ``module`` or ``module:attribute``."""


class NotAPlugin(TypeError):
    """An entry point or attribute names an object that provides no IPlugin."""


class IncompatiblePlugin(Exception):
    """A plugin distribution requires a version of the host that is not installed."""


class StaleRecord(Exception):
    """A cached record no longer describes the object it names."""


def missing_module(error: BaseException, name: str) -> bool:
    """Whether ``error`` says that the module ``name``, or a package it lies in, is not there
    (not that something it imports is missing)."""
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    return missing is not None and (name == missing or name.startswith(missing + "."))


_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (IncompatiblePlugin, "incompatible with the host"),
    (NotAPlugin, "not a plugin"),
    (MalformedEntryPoint, "malformed entry point"),
)
