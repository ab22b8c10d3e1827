"""Slate and chalk, dropped into hostapp's plugin directory."""

from hostapp.ifaces import IMaterial, IOther  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Rock:
    """A rock that splits into sheets.

    Roofs have been made of it for centuries.
    """

    def __init__(self, name: str) -> None:
        self.name = name


@implementer(IPlugin, IOther)
class Stick:
    """Something to write on a board with."""

    def __init__(self, name: str) -> None:
        self.name = name


slate = Rock("slate")
chalk = Stick("chalk")
