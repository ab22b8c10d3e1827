"""Cache files: where they live, how they are written and read, and how a document is checked.

Two caches use these helpers: a plugin directory's (``_directory_file``) and a ``sys.path``
entry's entry-point index (``_entrypoints``), each *beside* what it describes when that place
can be written -- where Python keeps the bytecode of modules there (``bytecode_directory``) --
else in the *per-user cache*: ``$COMPAT_PLUGIN_CACHE_DIR``, else the system's
cache directory (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux and other Unix systems,
``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows) followed by ``compat_plugin``.
``COMPAT_PLUGIN_NO_CACHE_WRITE`` (non-empty, not ``0``) stops all writing, and
``COMPAT_PLUGIN_NO_CACHE_READ`` all reading, so that a process works as a cold one would.

Every cache is data: JSON text, checked against a declared shape (the ``Shape`` helpers below)
before anything in it is used; whatever does not fit, or is no regular file, is ignored and
rewritten.  Writes are atomic (a temporary file beside the target, then :func:`os.replace`):
a reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from ._log import debug, info

if TYPE_CHECKING:  # an alias for the type checker only: making it costs every warm call
    Shape = Callable[[Any], bool]


def interpreter_tag(optimize: int | None = None) -> str:
    """The interpreter a cache is valid for (``cpython-311``, ``cpython-311.opt-1`` under
    ``-O``, as bytecode is kept): records depend on it, and on ``__debug__`` and docstrings.
    ``optimize`` names another optimization level than this process's."""
    tag = sys.implementation.cache_tag
    tag = tag or f"{sys.implementation.name}-{sys.version_info[0]}{sys.version_info[1]}"
    level = sys.flags.optimize if optimize is None else optimize
    return f"{tag}.opt-{level}" if level else tag


def bytecode_directory(directory: str) -> str:
    """Where Python keeps the bytecode of the modules in ``directory`` (``""``: the working
    directory), and so where a cache kept *beside* them goes: their ``__pycache__``, or, when
    ``sys.pycache_prefix`` is set (``PYTHONPYCACHEPREFIX``, ``-X pycache_prefix``), the
    directory the import system's own rule gives under that prefix -- nothing is then written
    into ``directory`` itself."""
    directory = directory or "."
    # An interpreter without a cache tag keeps no bytecode at all, nor a rule for where.
    if sys.pycache_prefix is None or sys.implementation.cache_tag is None:
        return os.path.join(directory, "__pycache__")
    from importlib.util import cache_from_source

    return os.path.dirname(cache_from_source(os.path.join(os.path.abspath(directory),
                                                          "module.py")))


def user_cache_root() -> str:
    """The per-user cache directory, by the order the module docstring gives."""
    explicit = os.environ.get("COMPAT_PLUGIN_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(os.path.abspath(base), "compat_plugin")


def writes_disabled() -> bool:
    """Whether ``COMPAT_PLUGIN_NO_CACHE_WRITE`` turns cache writing off."""
    return os.environ.get("COMPAT_PLUGIN_NO_CACHE_WRITE", "") not in ("", "0")


def digest(text: str) -> str:
    """A short, stable digest of ``text`` for per-user file names (CRC-32 then Adler-32).

    Not cryptographic: every file also records what it was written for, and is checked.
    """
    data = text.encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    The temporary file is created in the same directory with mode 0o666 less the umask, as any
    ordinary file would be, and removed if anything fails.
    """
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    # Named as ``_inventory`` knows a temporary a killed writer left, for ``cache clear``.
    unique = f"{os.getpid()}.{os.urandom(4).hex()}"
    temporary = os.path.join(parent, f".{os.path.basename(path)}.{unique}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# Not blocking: a FIFO put where a cache belongs would wait for a writer.
_READING = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


# Far more than any cache holds (one of a 10,000-module directory is a few megabytes): a larger
# file is not read, where every process would read it whole before finding it unusable.
LARGEST = 64 << 20


def read_cache(path: str) -> tuple[bytes, int] | None:
    """The content of the cache file ``path`` and its ``st_mtime_ns`` (when it was written),
    or None if it cannot be read, is no regular file (a FIFO, a device) or is larger than
    ``LARGEST`` -- or if ``COMPAT_PLUGIN_NO_CACHE_READ`` asks that no cache be read (to see
    what a cold process does)."""
    if os.environ.get("COMPAT_PLUGIN_NO_CACHE_READ", "") not in ("", "0"):
        return None
    try:
        with open(os.open(path, _READING), "rb") as stream:
            status = os.fstat(stream.fileno())
            if not S_ISREG(status.st_mode) or status.st_size > LARGEST:
                return None
            return stream.read(), status.st_mtime_ns
    except (OSError, ValueError):
        return None


def parse_json(raw: bytes | str, where: str) -> Any:
    """``raw`` parsed as JSON, or None (said at DEBUG level) if it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        debug("ignoring unreadable plugin cache %s: %s", where, exc)
        return None


def dump_json(value: object) -> str:
    """Compact, ASCII-only JSON text: the form caches store and search."""
    return _COMPACT.encode(value)


# One encoder for every document: ``json.dumps`` with separators makes one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))

# The key of a sealed document's last member.
_SEAL = b'"checksum":'


def sealed(document: dict[str, Any], after: bytes = b"") -> bytes:
    """``document`` as compact ASCII JSON with one more member, last: ``checksum``, the CRC-32
    of ``document``'s own compact text followed by ``after`` (what the file holds after it)."""
    body = dump_json(document).encode("ascii")
    joint = b"," if document else b""
    return b"%s%s%s%d}" % (body[:-1], joint, _SEAL, zlib.crc32(after, zlib.crc32(body)))


def seal_holds(raw: bytes, recorded: int, after: bytes | memoryview = b"") -> bool:
    """Whether ``raw``, a sealed document's text, and ``after`` are what its checksum
    ``recorded`` was made of: a change not also made to the checksum shows."""
    head, seal, tail = raw.rpartition(_SEAL)
    body = (head[:-1] if head.endswith(b",") else head) + b"}"
    return (bool(seal) and tail == b"%d}" % recorded
            and zlib.crc32(after, zlib.crc32(body)) == recorded)


# The oldest generation's threshold while full collections are held: more collections of the
# middle one than any pass makes.
_HELD = 1 << 30
# The holds under way, one token each, and the threshold the last to end gives back.  No lock:
# each step below is one operation of the interpreter, in an order that leaves no interleaving
# of threads with the threshold raised and no hold; and code run in the middle of a hold's own
# steps (a finalizer, a ``gc`` callback, a signal handler) may hold again, in that thread.
_holders: set[object] = set()
_given_back = gc.get_threshold()[2]  # until the first hold reads it again


@contextlib.contextmanager
def held_full_collections() -> Iterator[None]:
    """Hold the cyclic collector's full collections -- those of the oldest generation, which
    walk every object the process holds -- while young collections keep their course.

    For a pass that imports and builds much: each module it imports adds to what a full
    collection walks, and what it makes keeps counting towards one.  Young collections stay:
    held as well, they would leave all the pass made to one collection after it, walking
    tens of thousands of objects no longer in the processor's cache.  While any hold (of any
    thread) lasts, the oldest generation's threshold is raised -- but for an instant, where
    one begins as the last ends -- and the last to end restores it, unless it was set
    meanwhile (the other thresholds are kept, but one another thread sets at the very moment
    may be undone).  An interruption before the body runs undoes the hold; a forked child
    holds nothing, whatever its parent was holding.  Where the collector has no oldest
    generation to hold (a free-threaded build's), the threshold does nothing, and neither
    does this.
    """
    global _given_back
    token = object()
    try:
        _holders.add(token)
        young, middle, oldest = gc.get_threshold()
        if oldest != _HELD:  # the caller's, not another hold's
            _given_back = oldest
        gc.set_threshold(young, middle, _HELD)
        yield
    finally:
        _holders.discard(token)
        _give_back_if_done()


def _give_back_if_done() -> None:
    """Restore the oldest generation's threshold if no hold is left and it is still raised."""
    young, middle, oldest = gc.get_threshold()
    if not _holders and oldest == _HELD:
        gc.set_threshold(young, middle, _given_back)
        if _holders:  # one began meanwhile, and may have raised it before this restored it
            gc.set_threshold(young, middle, _HELD)


def _forked() -> None:
    """In a forked child, no hold of the parent's counts: those of other threads never end
    there, and the forking thread's may not either (a worker that runs its task and exits, as
    multiprocessing's do).  What the child still runs of a pass runs unheld."""
    _holders.clear()
    _give_back_if_done()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forked)


# -- Shapes: what a stored document must look like --------------------------------------------
#
# Types are compared exactly: JSON's ``true`` is not the integer 1 here, as it is to ``==``.


class _Exactly:
    """The shape of values of exactly one type (the fast path of ``list_of``)."""

    __slots__ = ("kind",)

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def __call__(self, value: object) -> bool:
        return type(value) is self.kind


INT: Shape = _Exactly(int)
STR: Shape = _Exactly(str)
BOOL: Shape = _Exactly(bool)


def text(value: object) -> bool:
    """A string or None (a docstring)."""
    return value is None or type(value) is str


def equal_to(expected: object) -> Shape:
    """Exactly ``expected``, type included."""
    return lambda value: type(value) is type(expected) and value == expected


def list_of(item: Shape) -> Shape:
    """A list whose every item has the shape ``item``."""
    if isinstance(item, _Exactly):
        kind = item.kind
        # The types counted in C: the columns of a thousand-module directory are checked on
        # every warm call.
        return lambda value: type(value) is list and set(map(type, value)) <= {kind}

    # Loops rather than all() over a generator, here and below: an index's rows are checked on
    # every warm call, and a generator costs about as much again as the checks.
    def check(value: object) -> bool:
        if type(value) is not list:
            return False
        for x in value:  # noqa: SIM110
            if not item(x):
                return False
        return True

    return check


def row(*items: Shape) -> Shape:
    """A list of exactly ``len(items)`` values, each of the shape at its place."""
    if all(isinstance(item, _Exactly) for item in items):
        kinds = tuple(item.kind for item in items)  # type: ignore[attr-defined]
        return lambda value: type(value) is list and tuple(map(type, value)) == kinds
    count = len(items)

    def check(value: object) -> bool:
        if type(value) is not list or len(value) != count:
            return False
        for shape, x in zip(items, value):  # noqa: SIM110
            if not shape(x):
                return False
        return True

    return check


def mapping(values: Shape) -> Shape:
    """An object whose every value has the shape ``values``."""

    def check(value: object) -> bool:
        if type(value) is not dict:
            return False
        for x in value.values():  # noqa: SIM110
            if not values(x):
                return False
        return True

    return check


def record(**fields: Shape) -> Shape:
    """An object holding at least ``fields``, each of its shape."""
    missing, items = object(), tuple(fields.items())
    return lambda value: type(value) is dict and all(
        shape(value.get(name, missing)) for name, shape in items)


def optional(shape: Shape) -> Shape:
    """``shape``, or null."""
    return lambda value: value is None or shape(value)


STAMP: Shape = row(INT, INT)
# A scan's misses as stored: ``[[name, importer or null], ...]``.
MISSES: Shape = list_of(row(STR, optional(STR)))


# -- Where a cache lives --------------------------------------------------------------------------


class CacheFile:
    """One cache document's places, in the order tried, and which refused a write.

    A process reads from any place and writes to the first that takes the data; a place that
    refused once (read-only, permission denied) is not tried again by this object, and that is
    said once, at INFO level, on the ``compat_plugin`` logger.
    """

    __slots__ = ("_refused", "places")

    def __init__(self, places: Sequence[str]) -> None:
        self.places = tuple(places)
        self._refused: set[str] = set()

    def write(self, data: bytes, holds: Callable[[str], bool] | None = None) -> str | None:
        """Write ``data`` to the first place that takes it, and return that place.

        ``holds(place)`` tells whether a place already holds this data: then nothing is
        written.  Returns None when writing is off or no place took it.
        """
        if writes_disabled():
            return None
        for place in self.places:
            if place in self._refused:
                continue
            if holds is not None and holds(place):
                return place
            try:
                write_atomic(place, data)
            except OSError as exc:
                self._refuse(place, exc)
                continue
            return place
        return None

    def _refuse(self, place: str, exc: OSError) -> None:
        self._refused.add(place)
        reason = exc.strerror or str(exc)
        later = [p for p in self.places if p not in self._refused]
        instead = f"; using {later[0]} instead" if later else ""
        info("plugin cache %s is not writable (%s)%s", place, reason, instead)
