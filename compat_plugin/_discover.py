"""The modern face: plugin records with where they came from, and what failed."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import NamedTuple

from zope.interface.interface import InterfaceClass

from ._interfaces import identifier
from ._records import LoadError, PluginRecord, Skip
from ._resolver import Rules, resolve


class Discovery(NamedTuple):
    """The outcome of :func:`discover`.

    ``plugins`` are in the documented resolution order, each with its ``origin``; ``errors``
    lists every candidate that could not be imported, inspected or accepted, with the
    exception that stopped it; ``skipped`` every candidate left out on purpose before import
    (shadowed, disabled, a duplicate), with the reason.
    """

    plugins: tuple[PluginRecord, ...]
    errors: tuple[LoadError, ...]
    skipped: tuple[Skip, ...]


def discover(
    package: ModuleType,
    interface: InterfaceClass | None = None,
    *,
    disable: Iterable[str] = (),
    enable: Iterable[str] = (),
) -> Discovery:
    """Find the plugins of ``package`` from its directories and entry points, unloaded.

    With ``interface``, only records providing it (or an interface extending it) are kept;
    this is decided from the records alone, so nothing but modules needing a scan is
    imported.  ``disable`` and ``enable`` are glob patterns as for ``getPlugins``.
    """
    resolution = resolve(package, Rules(disable, enable), interface)
    wanted = identifier(interface) if interface is not None else None
    plugins = tuple(
        record for record in resolution.plugins() if wanted is None or wanted in record.interfaces
    )
    return Discovery(plugins, resolution.errors, resolution.skipped)
