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

Names bound before ``install()`` runs keep Twisted's function.  To reach those too, the
replacement must come before the program imports anything: the start-up hook
(:mod:`_compat_plugin_twisted_hook`, activated by the runner's ``run`` and, in every
interpreter of an environment, by ``compat-plugin twisted enable``) replaces the lookup in
each of these modules the moment it is first imported, through the same machinery; its
replacements are among :func:`patched` and ``uninstall()`` undoes them too.

Importing this module does not import Twisted; ``install()`` does.

It is also a command (see :func:`main`): ``python -m compat_plugin.twisted run SCRIPT
[ARGS...]`` runs any console script of the environment (or a script file), ``run -m MODULE
[ARGS...]`` any module, and ``twistd|twist|trial [ARGS...]`` those Twisted commands, each with
the start-up hook active before the program imports anything of its own.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, NamedTuple

import _compat_plugin_twisted_hook as _hook

from ._api import getPlugins
from ._log import logger
from ._runner import KNOWN_COMMANDS, RunError, run

__all__ = ["COMMANDS", "PLACES", "install", "main", "patched", "uninstall"]

PROG = "python -m compat_plugin.twisted"

# (module, attribute path within it): the places described in the docstring, kept with the
# start-up hook, which must know them without importing compat_plugin.
_PLACES = _hook.PLACES
_MODULES = _hook.MODULES
_PLUGIN_MODULE_LOOKUP = "twisted.plugin.getPlugins"

#: Every place ``install()`` replaces when the installed Twisted has it, as dotted names.
PLACES: tuple[str, ...] = tuple(f"{module}.{attribute}" for module, attribute in _PLACES)

#: The Twisted commands the runner knows.
COMMANDS: tuple[str, ...] = tuple(KNOWN_COMMANDS)


class _Replaced(NamedTuple):
    """One replaced attribute and Twisted's object, to put back."""

    owner: object
    name: str
    previous: Any


# Every place replaced now, in the order replaced.
_replaced: dict[str, _Replaced] = {}


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


def _unreplaced_places(module_names: Sequence[str]) -> list[tuple[str, object, str]]:
    """(place, owner, attribute name) of every place in those modules that the installed
    Twisted has and that is not replaced yet, importing each module first."""
    found: list[tuple[str, object, str]] = []
    for module, path in _PLACES:
        place = f"{module}.{path}"
        if module in module_names and place not in _replaced:
            located = _owner_and_name(module, path)
            if located is not None:
                found.append((place, *located))
    return found


def _replace(owner: object, name: str) -> _Replaced:
    """Put our lookup at ``owner.name``; the record holds what Twisted had there.

    A module imported after ``twisted.plugin`` was replaced has bound ours already; what
    Twisted had there is then its own function, in the same form (a class attribute made with
    staticmethod() must stay one, or it would be bound).
    """
    current = vars(owner)[name]
    static = isinstance(current, staticmethod)
    previous = current
    origin = _replaced.get(_PLUGIN_MODULE_LOOKUP)
    if (current.__func__ if static else current) is getPlugins and origin is not None:
        previous = staticmethod(origin.previous) if static else origin.previous
    setattr(owner, name, staticmethod(getPlugins) if static else getPlugins)
    return _Replaced(owner, name, previous)


def _replace_all(found: list[tuple[str, object, str]]) -> None:
    """Replace every place in ``found``, or none of them if one fails."""
    done: list[str] = []
    try:
        for place, owner, name in found:
            _replaced[place] = _replace(owner, name)
            done.append(place)
    except BaseException:
        _restore([_replaced.pop(place) for place in done])
        raise


def _replace_logged(module_name: str) -> None:
    """Replace the lookup in the places of ``module_name``, imported (for the start-up hook).

    A failure is logged, never raised: the program goes on with Twisted's own lookup there.
    """
    try:
        _replace_all(_unreplaced_places((module_name,)))
    except Exception:
        logger().warning("%s keeps Twisted's own plugin lookup", module_name, exc_info=True)


class _ReplacingLoader(Loader):
    """Runs a watched module with its own loader, then replaces the lookup in it."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        finally:
            # The module keeps its real loader: nothing that inspects it later sees this one.
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader
        _replace_logged(module.__name__)

    def __getattr__(self, name: str) -> Any:
        # Whatever else is asked of the loader meanwhile (get_code, get_source...) is its own.
        return getattr(self.loader, name)


def _replacing_spec(
    hook: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """The spec the finders after the start-up hook's (``hook``) give for a watched module,
    its loader made to replace the lookup right after the module has run."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if finder is hook or find_spec is None:
            continue
        spec: ModuleSpec | None = find_spec(fullname, path, target)
        if spec is None:
            continue
        # A loader of the old protocol (no exec_module) cannot be wrapped; that module keeps
        # Twisted's lookup unless install() is called.
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = _ReplacingLoader(loader)
        return spec
    return None


def install() -> tuple[str, ...]:
    """Make Twisted look plugins up with compat_plugin; return the places replaced.

    Calling it again while installed changes nothing.  Raises ImportError if Twisted is not
    installed.
    """
    # Import every module first: nothing must bind the replacement while we look.
    _replace_all(_unreplaced_places(_MODULES))
    return patched()


def _restore(replaced: list[_Replaced]) -> None:
    for item in reversed(replaced):
        setattr(item.owner, item.name, item.previous)


def uninstall() -> None:
    """Put back Twisted's own object in every replaced place, and stop the start-up hook from
    replacing it in modules imported from now on; idempotent."""
    _hook.deactivate()
    _restore(list(_replaced.values()))
    _replaced.clear()


def patched() -> tuple[str, ...]:
    """The places currently replaced, as dotted names; empty when not installed."""
    return tuple(place for place in PLACES if place in _replaced)


def _usage() -> str:
    return f"usage: {PROG} run SCRIPT|-m MODULE [ARGS...] | {{{','.join(COMMANDS)}}} [ARGS...]"


def main(argv: Sequence[str] | None = None) -> object:
    """Run a program with compat_plugin behind Twisted's plugin lookups; return its exit status.

    ``argv`` (default ``sys.argv[1:]``) is one of:

    * ``run SCRIPT ARGS...``: the environment's console script ``SCRIPT`` (a name without a
      path separator that no distribution declares, but that names a file, is that file), or
      the script file ``SCRIPT``;
    * ``run -m MODULE ARGS...``: the module, as ``python -m`` runs it;
    * ``twistd|twist|trial ARGS...``: the same as ``run twistd ARGS...`` and so on.

    The start-up hook is active before the program imports anything: every Twisted module
    that binds the lookup gets compat_plugin's as it is imported, and so does every name the
    program binds to it.  The program sees ``sys.argv`` as ``[SCRIPT, *ARGS]`` (a console
    script's name, a file's path, a module's file as with ``python -m``).  This covers this
    process only; processes the program starts use their environment's setting (see
    ``compat-plugin twisted enable``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(_usage(), file=sys.stderr)
        return 2
    command, *rest = args
    # ``run --help`` too: no script is called so, while ``twistd --help`` is twistd's.
    if command in ("-h", "--help") or (command == "run" and rest[:1] in (["-h"], ["--help"])):
        print(_usage())
        print("Runs a program whose Twisted plugin lookups also see entry-point plugins.")
        return 0
    if command != "run" and command not in COMMANDS:
        known = ", ".join([*COMMANDS, "run"])
        print(f"{PROG}: unknown command {command!r} (expected one of: {known})", file=sys.stderr)
        return 2
    try:
        return run(rest if command == "run" else [command, *rest])
    except RunError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    # Run through the module's own name, so there is one install state per process.
    from compat_plugin.twisted import main as _main

    raise SystemExit(_main())
