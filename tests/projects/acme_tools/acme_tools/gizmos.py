"""Gizmos: plugins, but not materials."""

from hostapp.ifaces import IOther  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IOther)
class Gizmo:
    def __init__(self, name: str) -> None:
        self.name = name


lever = Gizmo("lever")
