"""Woods: only oak is offered to hostapp, by an entry point naming it."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Wood:
    def __init__(self, name: str) -> None:
        self.name = name


oak = Wood("oak")
pine = Wood("pine")
