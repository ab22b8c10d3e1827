"""A material that forgot to declare itself a plugin."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer


@implementer(IMaterial)
class Material:
    def __init__(self, name: str) -> None:
        self.name = name


plain = Material("plain")
