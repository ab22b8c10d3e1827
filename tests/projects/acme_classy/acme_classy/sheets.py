"""A material whose distribution names the class, not an instance of it."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Sheet:
    name = "sheet"
