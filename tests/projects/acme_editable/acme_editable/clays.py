"""Clays."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Clay:
    def __init__(self, name: str) -> None:
        self.name = name


kaolin = Clay("kaolin")
