"""Metals, offered to hostapp as a whole module; tin is new in 2.0."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Metal:
    def __init__(self, name: str) -> None:
        self.name = name


iron = Metal("iron")
copper = Metal("copper")
tin = Metal("tin")
