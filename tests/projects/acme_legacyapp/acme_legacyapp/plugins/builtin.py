"""The command the application ships in its own plugin directory."""

from twisted.plugin import IPlugin
from zope.interface import implementer

from ..icommand import ICommand


@implementer(IPlugin, ICommand)
class Command:
    def __init__(self, name: str) -> None:
        self.name = name


builtin = Command("builtin")
