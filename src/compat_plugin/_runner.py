"""Running a program as its own command would run it, with the start-up hook active: a console
script, a script file, a directory or zip archive, or a module (``python -m
compat_plugin.twisted run ...``; ``compat_plugin.twisted.main`` parses the command line)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import _compat_plugin_twisted_hook as _hook

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

# The Twisted commands the runner knows, with the entry point each had when this was written
# (used only if no installed distribution declares the command).
KNOWN_COMMANDS = {
    "twistd": "twisted.scripts.twistd:run",
    "twist": "twisted.application.twist._twist:Twist.main",
    "trial": "twisted.scripts.trial:run",
}


class RunError(Exception):
    """The program cannot be run: one line on stderr and this exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _console_entry_point(name: str) -> EntryPoint | None:
    """The environment's ``console_scripts`` entry point ``name`` (of the first distribution
    on ``sys.path`` declaring it), else None."""
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points
    else:
        from importlib_metadata import entry_points

    return next(iter(entry_points(group="console_scripts", name=name)), None)


def _run_console_script(
    name: str, entry_point: EntryPoint | None, arguments: list[str]
) -> object:
    """Run the console script ``name`` (its ``entry_point``, if the environment has one) as its
    own script would; return what its function does.

    For the known Twisted commands, the entry point each had when this was written stands in
    when no distribution declares it, and Twisted missing is a one-line error.
    """
    known = entry_point is None and name in KNOWN_COMMANDS
    if known:
        from importlib.metadata import EntryPoint

        entry_point = EntryPoint(name=name, value=KNOWN_COMMANDS[name], group="console_scripts")
    if entry_point is None:
        raise RunError(f"no console script or script file named {name!r}")
    # Set before the program's modules are imported, since some read it then; changed in
    # place because Twisted may hold the list itself (as a default argument value).
    sys.argv[:] = [name, *arguments]
    # Where the script is: of this interpreter's environment, else on PATH.  (Imported here:
    # every enabled interpreter that imports Twisted's plugin module imports this module.)
    import shutil
    import sysconfig

    scripts = sysconfig.get_path("scripts")
    found = shutil.which(name, path=scripts) or shutil.which(name)
    _first_on_path(os.path.dirname(os.path.realpath(found)) if found else scripts)
    try:
        function = entry_point.load()
    except ImportError as exc:
        if not known:
            raise
        raise RunError(f"cannot run {name}: {exc}; it comes with Twisted: "
                       "python -m pip install twisted", status=1) from None
    # The program's __main__ is a console script's wrapper, which has no docstring: Twisted's
    # usage falls back to __main__.__doc__ (under a plugin's options, in twistd NAME --help),
    # and must not find this module's there.
    sys.modules["__main__"].__doc__ = None
    return function()


def _run_file(path: str, arguments: list[str]) -> object:
    """Run the script file (or directory or zip archive with a ``__main__``) at ``path`` as
    ``python PATH ARGS...`` would: ``__file__`` absolute, the script's directory first on
    ``sys.path`` -- for a directory or an archive, itself, which ``run_path`` puts there."""
    import runpy
    from pkgutil import get_importer

    from ._imports import entry_spec

    absolute = os.path.abspath(path)
    importer = get_importer(absolute)
    plain = importer is None
    if plain and not os.path.exists(absolute):
        raise RunError(f"cannot open file {path!r}: no such file")
    main = entry_spec(importer, "__main__") if importer is not None else None
    # A module, not a package or a namespace portion, as runpy runs it.
    if importer is not None and (main is None or main.submodule_search_locations is not None):
        raise RunError(f"cannot find a __main__ module in {path!r}")
    sys.argv[:] = [path, *arguments]
    _first_on_path(os.path.dirname(os.path.realpath(absolute)) if plain else None)
    runpy.run_path(absolute, run_name="__main__")
    return None


def _first_on_path(directory: str | None) -> None:
    """Put ``directory`` (None: nothing) where ``python -m`` put the working directory, as
    Python puts a script's -- unless ``-P`` (``PYTHONSAFEPATH``) kept both away."""
    if not getattr(sys.flags, "safe_path", False):
        sys.path[0:1] = [directory] if directory is not None else []


def _run_module(module: str, arguments: list[str]) -> object:
    """Run ``module`` as ``python -m MODULE ARGS...`` would."""
    import importlib.util
    import runpy

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise RunError(f"cannot run -m {module}: {exc}") from None
    if found is None:
        raise RunError(f"no module named {module!r}")
    sys.argv[:] = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return None


def run(arguments: list[str]) -> object:
    """Run ``SCRIPT ARGS...`` or ``-m MODULE ARGS...`` with the start-up hook active."""
    if not arguments or arguments == ["-m"]:
        raise RunError("run needs a SCRIPT, or -m and a MODULE")
    _hook.activate()
    if arguments[0] == "-m":
        return _run_module(arguments[1], arguments[2:])
    script, *rest = arguments
    if not any(sep and sep in script for sep in (os.sep, os.altsep)):
        entry_point = _console_entry_point(script)
        if entry_point is not None or not os.path.exists(script):
            return _run_console_script(script, entry_point, rest)
    return _run_file(script, rest)
