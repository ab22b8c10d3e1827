"""compat_plugin behind Twisted's plugin lookups from the moment Twisted is imported.

:func:`activate` puts a finder at the front of ``sys.meta_path`` that watches the few modules
in which Twisted binds its lookup function (:data:`PLACES`).  Each of them is still found and
run by the finder that would have found it; right after its code has run, before anything else
can import a name from it, :mod:`compat_plugin.twisted` replaces the lookup in it.  So a module
that later runs ``from twisted.plugin import getPlugins``, or binds it as a default argument,
gets compat_plugin's.  Every other import costs the finder one set lookup.

The ``.pth`` line that ``compat-plugin twisted enable`` writes calls :func:`startup` in every
interpreter of the environment, which activates the finder unless ``COMPAT_PLUGIN_TWISTED=0``.
That is why this module stands outside the ``compat_plugin`` package, holds only what must be
there at start-up, and imports nothing that an interpreter has not imported by then: importing
the package (zope.interface, the resolver) costs tens of milliseconds, which every interpreter
of the environment would pay whether it uses Twisted or not.  The package is imported when a
watched module is, that is, by programs that use Twisted.
"""

# No ``from __future__ import annotations``: importing __future__ would cost more than the
# rest of this module.  Annotations naming what is not imported here are strings.
import os
import sys

# typing is not imported at interpreter start-up; type checkers take this name as typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

#: Set to ``0``, the start-up hook leaves this process (and the processes it starts, which
#: inherit the variable) with Twisted's own lookups.
ENVIRONMENT_VARIABLE = "COMPAT_PLUGIN_TWISTED"

#: (module, attribute path within it): every place where Twisted binds its lookup function
#: (documented in :mod:`compat_plugin.twisted`).  ``twisted.plugin`` comes first: the other
#: modules import it while they run, and so bind the function it holds by then.
PLACES = (
    ("twisted.plugin", "getPlugins"),
    ("twisted.plugin", "getPlugIns"),
    ("twisted.application.app", "ServerOptions._getPlugins"),
    ("twisted.application.twist._options", "getPlugins"),
    ("twisted.application.reactors", "getPlugins"),
    ("twisted.internet.endpoints", "getPlugins"),
    ("twisted.cred.strcred", "getPlugins"),
)

#: The modules of :data:`PLACES`, in that order.
MODULES = tuple(dict.fromkeys([module for module, _ in PLACES]))
_WATCHED = frozenset(MODULES)


def _machinery(modules: str) -> "ModuleType | None":
    """:mod:`compat_plugin.twisted`, or None (logged) if it cannot be imported: the program
    then goes on with Twisted's own lookup in ``modules`` and, the finder given up so that
    this is said once, in every watched module imported later."""
    global _given_up
    try:
        import compat_plugin.twisted as machinery
    except Exception as exc:
        import logging

        # Not taken off sys.meta_path here: the import system may be going through it.
        _given_up = True
        logging.getLogger("compat_plugin").warning(
            "%s and the rest of Twisted keep Twisted's own plugin lookup: %s: %s",
            modules, type(exc).__name__, exc,
        )
        return None
    return machinery


class _TwistedImportFinder:
    """A ``sys.meta_path`` finder that acts only on the modules named in :data:`PLACES`."""

    def find_spec(
        self,
        fullname: str,
        path: "Sequence[str] | None" = None,
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        if fullname not in _WATCHED or _given_up:
            return None
        machinery = _machinery(fullname)
        if machinery is None:
            return None
        spec: ModuleSpec | None = machinery._replacing_spec(self, fullname, path, target)
        return spec


_finder = _TwistedImportFinder()
# Set when compat_plugin could not be imported: until activated again, the finder does nothing.
_given_up = False


def activate() -> None:
    """Make compat_plugin's lookup replace Twisted's in each watched module the moment it is
    first imported, and now in those already imported; calling it again changes nothing (but
    tries again after compat_plugin could not be imported)."""
    global _given_up
    _given_up = False
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    imported = [name for name in MODULES if name in sys.modules]
    if imported:
        machinery = _machinery(", ".join(imported))
        if machinery is not None:
            for name in imported:
                machinery._replace_logged(name)


def deactivate() -> None:
    """Stop replacing the lookup in modules imported from now on (nothing already replaced
    changes); idempotent."""
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def active() -> bool:
    """Whether watched modules imported from now on get compat_plugin's lookup."""
    return _finder in sys.meta_path and not _given_up


def startup() -> None:
    """What the ``.pth`` line runs at interpreter start-up: :func:`activate`, unless the
    environment variable :data:`ENVIRONMENT_VARIABLE` is ``0``."""
    if os.environ.get(ENVIRONMENT_VARIABLE) != "0":
        activate()
