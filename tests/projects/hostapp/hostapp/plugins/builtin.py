"""The material hostapp ships with."""

from zope.interface import implementer

from compat_plugin import IPlugin
from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]


@implementer(IPlugin, IMaterial)
class Stone:
    def __init__(self, name: str) -> None:
        self.name = name


granite = Stone("granite")
