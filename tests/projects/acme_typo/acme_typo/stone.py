"""A material hostapp never sees: its entry point is in the group hostapp.plugin."""

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin


@implementer(IPlugin, IMaterial)
class Stone:
    name = "marble"


marble = Stone()
