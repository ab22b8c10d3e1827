"""The interface of the application's command plugins."""

from zope.interface import Attribute, Interface


class ICommand(Interface):
    """A sub-command of acme-legacyapp."""

    name = Attribute("The command's name.")
