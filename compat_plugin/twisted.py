"""Twisted's own tools, finding plugins through compat_plugin.

``install()`` makes every place in Twisted that looks plugins up use
:func:`compat_plugin.getPlugins`, so that ``twistd``, ``twist``, ``trial``, endpoint strings,
reactor names and ``--auth`` checkers also see the plugins that installed distributions declare
in the ``twisted.plugins`` entry-point group.  ``uninstall()`` puts back exactly the objects
that were there before.  The places, and why each one needs patching:

``twisted.plugin.getPlugins`` and its alias ``twisted.plugin.getPlugIns``
    Looked up at call time by modules calling ``plugin.getPlugins(...)``:
    ``twisted.scripts.trial`` (``--reporter``, ``--help-reporters`` and the completion of
    reporter names) and ``twisted.words.tap`` (its protocol plugins, looked up once, when that
    module is first imported); and bound by any module that runs
    ``from twisted.plugin import getPlugins`` after ``install()``.
``twisted.application.app.ServerOptions._getPlugins``
    twistd's service makers (its subcommands).  A static method made from Twisted's function
    when the class was created; twistd's platform ``ServerOptions`` classes inherit it.
``twisted.application.twist._options.getPlugins``
    twist's service makers.  Bound by name at import time.
``twisted.application.reactors.getPlugins``
    Reactor installers, for the ``--reactor`` option of twistd, twist and trial.  Bound by
    name at import time.
``twisted.internet.endpoints.getPlugins``
    Endpoint string parsers, for ``serverFromString``, ``clientFromString`` and therefore
    ``strports``.  Bound by name at import time.
``twisted.cred.strcred.getPlugins``
    Checker factories, for the ``--auth`` option of Twisted's servers.  Bound by name at
    import time.

``install()`` imports each of these modules (none of them installs a reactor) before
replacing anything, so a module is never first imported with the replacement in place and
the function it would have bound is always the one restored.  A place that the installed
Twisted does not have is left out; :func:`patched` tells which ones were replaced.  Objects
that other code copied from these places, and modules importing ``getPlugins`` by name
while it is installed, keep what they copied.

Importing this module does not import Twisted; ``install()`` does.

It is also a command: ``python -m compat_plugin.twisted twistd|twist|trial [ARGS...]`` runs
that Twisted command (the function its ``console_scripts`` entry point names) with
``install()`` done first.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from ._api import getPlugins

__all__ = ["COMMANDS", "PLACES", "install", "main", "patched", "uninstall"]

PROG = "python -m compat_plugin.twisted"

# (module, attribute path within it): the places described in the docstring.
_PLACES: tuple[tuple[str, str], ...] = (
    ("twisted.plugin", "getPlugins"),
    ("twisted.plugin", "getPlugIns"),
    ("twisted.application.app", "ServerOptions._getPlugins"),
    ("twisted.application.twist._options", "getPlugins"),
    ("twisted.application.reactors", "getPlugins"),
    ("twisted.internet.endpoints", "getPlugins"),
    ("twisted.cred.strcred", "getPlugins"),
)

#: Every place ``install()`` replaces when the installed Twisted has it, as dotted names.
PLACES: tuple[str, ...] = tuple(f"{module}.{attribute}" for module, attribute in _PLACES)

#: The Twisted commands the runner knows, with the entry point each had when this was written
#: (used only if the installed Twisted's metadata does not name one).
_KNOWN_COMMANDS = {
    "twistd": "twisted.scripts.twistd:run",
    "twist": "twisted.application.twist._twist:Twist.main",
    "trial": "twisted.scripts.trial:run",
}
COMMANDS: tuple[str, ...] = tuple(_KNOWN_COMMANDS)


class _Replaced(NamedTuple):
    """One replaced attribute and the object that was there before."""

    place: str
    owner: object
    name: str
    previous: object


# None while not installed.
_replaced: list[_Replaced] | None = None


def _owner_and_name(module_name: str, path: str) -> tuple[object, str] | None:
    """The object holding the attribute at ``path`` in ``module_name``, and the attribute's
    name; None if the module cannot be imported or the attribute is not there."""
    try:
        owner: object = importlib.import_module(module_name)
    except ImportError:
        if module_name == "twisted.plugin":
            raise
        return None
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return None
    # Only an attribute held by the object itself is replaced (and later restored).
    if name not in getattr(owner, "__dict__", {}):
        return None
    return owner, name


def install() -> tuple[str, ...]:
    """Make Twisted look plugins up with compat_plugin; return the places replaced.

    Calling it again while installed changes nothing.  Raises ImportError if Twisted is not
    installed.
    """
    global _replaced
    if _replaced is not None:
        return patched()
    # Import every module first: nothing must bind the replacement while we look.
    found = [
        (f"{module}.{path}", located)
        for module, path in _PLACES
        if (located := _owner_and_name(module, path)) is not None
    ]
    replaced: list[_Replaced] = []
    try:
        for place, (owner, name) in found:
            previous = vars(owner)[name]
            # A class attribute made with staticmethod() must stay one, or it would be bound.
            replacement: object = getPlugins
            if isinstance(previous, staticmethod):
                replacement = staticmethod(getPlugins)
            replaced.append(_Replaced(place, owner, name, previous))
            setattr(owner, name, replacement)
    except BaseException:
        _restore(replaced)
        raise
    _replaced = replaced
    return patched()


def _restore(replaced: list[_Replaced]) -> None:
    for item in reversed(replaced):
        setattr(item.owner, item.name, item.previous)


def uninstall() -> None:
    """Put back, in every replaced place, the very object that was there; idempotent."""
    global _replaced
    if _replaced is None:
        return
    _restore(_replaced)
    _replaced = None


def patched() -> tuple[str, ...]:
    """The places currently replaced, as dotted names; empty when not installed."""
    return tuple(item.place for item in _replaced or ())


def _entry_function(command: str) -> Callable[[], object]:
    """The function the installed Twisted's ``console_scripts`` entry point ``command`` names."""
    from importlib.metadata import EntryPoint, PackageNotFoundError, distribution

    entry_point = EntryPoint(name=command, value=_KNOWN_COMMANDS[command], group="console_scripts")
    declared: Iterable[EntryPoint]
    try:
        declared = distribution("twisted").entry_points
    except PackageNotFoundError:
        declared = ()
    for candidate in declared:
        if candidate.group == "console_scripts" and candidate.name == command:
            entry_point = candidate
            break
    function: Callable[[], object] = entry_point.load()
    return function


def _usage() -> str:
    return f"usage: {PROG} {{{','.join(COMMANDS)}}} [ARGS...]"


def main(argv: Sequence[str] | None = None) -> object:
    """Run a Twisted command with compat_plugin installed; return its exit status.

    ``argv`` (default ``sys.argv[1:]``) is the command's name followed by its arguments;
    the command sees ``sys.argv`` as ``[name, *arguments]``, as if run as its own script.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(_usage(), file=sys.stderr)
        return 2
    command, *rest = args
    if command in ("-h", "--help"):
        print(_usage())
        print("Runs a Twisted command whose plugin lookups also see entry-point plugins.")
        return 0
    if command not in COMMANDS:
        known = ", ".join(COMMANDS)
        print(f"{PROG}: unknown command {command!r} (expected one of: {known})", file=sys.stderr)
        return 2
    try:
        install()
        function = _entry_function(command)
    except ImportError as exc:
        print(f"{PROG}: cannot run {command}: {exc}", file=sys.stderr)
        return 1
    # Changed in place: Twisted may hold the list itself (as a default argument value).
    sys.argv[:] = [command, *rest]
    return function()


if __name__ == "__main__":
    # Run through the module's own name, so there is one install state per process.
    from compat_plugin.twisted import main as _main

    raise SystemExit(_main())
