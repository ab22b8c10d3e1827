"""The start-up hook of a whole environment: one ``.pth`` file in its site-packages.

Every interpreter of an environment runs the ``import`` lines of the ``.pth`` files in its
site-packages directory while it starts, child processes included; ``compat-plugin twisted
enable`` writes :data:`PTH_NAME` there, whose line activates :mod:`_compat_plugin_twisted_hook`.
The line does nothing at all (prints nothing, raises nothing) when that module is gone or
broken, for pip does not remove a file that it did not install.  The file is named so that it
is read after the ``__editable__.*.pth`` files that make an editable install importable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
from typing import NamedTuple

from ._store import write_atomic

PTH_NAME = "compat_plugin_twisted.pth"
# The hook module's name and its switch, spelled out rather than imported from it: with the
# module missing (a damaged install) ``status`` must still say so, and ``disable`` still work.
HOOK_MODULE = "_compat_plugin_twisted_hook"
ENVIRONMENT_VARIABLE = "COMPAT_PLUGIN_TWISTED"

# One import line (the only kind of .pth line that runs code), guarded so that it is silent
# when the hook module is missing or damaged.  A virtual environment's site-packages is read
# twice at start-up (once to put it before the user's), so the line skips the work the second
# time.  The comments say what the file is to whoever finds it.
_GUARDED_STARTUP = (
    f"try:\n import {HOOK_MODULE} as hook\n hook.startup()\n"
    "except Exception:\n pass"
)
PTH_TEXT = (
    "# Written by `compat-plugin twisted enable`: Twisted's plugin lookups in every interpreter\n"
    "# of this environment go through compat_plugin.  Undo with `compat-plugin twisted disable`\n"
    f"# (or delete this file); {ENVIRONMENT_VARIABLE}=0 turns it off for one process.\n"
    f"import sys; {HOOK_MODULE!r} in sys.modules or exec({_GUARDED_STARTUP!r})\n"
)

# Run by a new interpreter of this environment: is the hook active, and (if Twisted is
# installed) is twisted.plugin.getPlugins compat_plugin's?
_CHECK = f"""
import json, sys
hook = sys.modules.get({HOOK_MODULE!r})
active = hook is not None and hook.active()
try:
    import twisted.plugin
except ImportError:
    patched = None
else:
    import compat_plugin
    patched = twisted.plugin.getPlugins is compat_plugin.getPlugins
print(json.dumps([active, patched]))
"""


def pth_path() -> str:
    """Where :data:`PTH_NAME` goes: the site-packages directory (``purelib``) of the running
    interpreter's environment."""
    return os.path.join(sysconfig.get_paths()["purelib"], PTH_NAME)


def enable() -> bool:
    """Write the ``.pth`` file; return False if it was there already, as written."""
    path = pth_path()
    data = PTH_TEXT.encode("ascii")
    try:
        with open(path, "rb") as stream:
            if stream.read() == data:
                return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


def disable() -> bool:
    """Remove the ``.pth`` file; return False if there was none."""
    try:
        os.unlink(pth_path())
    except FileNotFoundError:
        return False
    return True


class Status(NamedTuple):
    """Whether the environment is enabled, and what a new interpreter of it does."""

    path: str
    #: The ``.pth`` file is there.
    enabled: bool
    #: It holds what :func:`enable` writes now (else another version of compat_plugin's).
    current: bool
    #: A new interpreter (without ``COMPAT_PLUGIN_TWISTED``) has the hook active; None if the
    #: check itself failed, with ``problem`` saying why.
    active: bool | None
    #: In it, ``twisted.plugin.getPlugins`` is compat_plugin's; None if Twisted is not
    #: installed or the check failed.
    twisted_patched: bool | None
    problem: str


def status() -> Status:
    """Look at the ``.pth`` file and start a new interpreter of the environment to see what it
    does (about as long as importing Twisted takes)."""
    from ._children import captured

    path = pth_path()
    try:
        with open(path, "rb") as stream:
            enabled, current = True, stream.read() == PTH_TEXT.encode("ascii")
    except FileNotFoundError:
        enabled, current = False, False
    environment = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    # ``python -c`` imports from its working directory first: run it where that adds nothing
    # (a checkout of compat_plugin, say, would answer for the installed one).
    result = captured(
        [sys.executable, "-c", _CHECK], env=environment, cwd=os.path.dirname(path),
        timeout=120,
    )
    try:
        active, patched = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        return Status(path, enabled, current, None, None, lines[-1])
    return Status(path, enabled, current, bool(active), patched, "")


# -- The ``compat-plugin twisted`` sub-command ----------------------------------------------------


def _describe(found: Status) -> tuple[list[str], bool]:
    """Lines saying what ``found`` means, and whether all is as enabling promises."""
    if not found.enabled:
        return [f"not enabled: no {found.path}"], False
    lines = [f"enabled: {found.path}"]
    if not found.current:
        lines.append("the file is not what this compat_plugin writes: run enable again")
    if found.active is None:
        lines.append(f"hook: could not check it in a new interpreter: {found.problem}")
    elif not found.active:
        import importlib.util

        missing = importlib.util.find_spec(HOOK_MODULE) is None
        lines.append(f"hook: not active in a new interpreter ({sys.executable}); " + (
            f"its module {HOOK_MODULE} is missing: reinstall compat-plugin" if missing
            else "is compat_plugin installed in this environment?"))
    elif found.twisted_patched is None:
        lines.append("hook: active; Twisted is not installed here, so there is nothing to do yet")
    elif found.twisted_patched:
        lines.append("hook: active; twisted.plugin.getPlugins is compat_plugin's in a new "
                     "interpreter")
    else:
        lines.append("hook: active, but twisted.plugin.getPlugins is still Twisted's there")
    good = found.current and found.active is True and found.twisted_patched is not False
    return lines, good


def command(args: argparse.Namespace) -> int:
    """``compat-plugin twisted enable|disable|status``; returns the exit status.

    ``enable`` and ``status`` print what a new interpreter of the environment does, and exit
    with 1 if it is not what enabling promises (``status``: or if not enabled); ``disable``
    exits with 0 whether or not the file was there.  A file that cannot be written or removed
    is one line on stderr and status 1.
    """
    path = pth_path()
    try:
        if args.action == "disable":
            print(f"disabled: removed {path}" if disable() else f"not enabled: no {path}")
            return 0
        if args.action == "enable":
            print(f"enabled: wrote {path}" if enable() else f"already enabled: {path}")
    except OSError as exc:
        print(f"compat-plugin: cannot change {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    lines, good = _describe(status())
    if args.action == "enable":
        lines = lines[1:]
    print("\n".join(lines))
    if os.environ.get(ENVIRONMENT_VARIABLE) == "0":
        print(f"note: {ENVIRONMENT_VARIABLE}=0 here, so processes started from here use "
              "Twisted's own lookups")
    return 0 if good else 1
