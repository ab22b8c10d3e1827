"""The well-formed entry point's module."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Mineral:
    def __init__(self, name: str) -> None:
        self.name = name


quartz = Mineral("quartz")
