"""Alloys, new in 2.0."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Alloy:
    def __init__(self, name: str) -> None:
        self.name = name


bronze = Alloy("bronze")
