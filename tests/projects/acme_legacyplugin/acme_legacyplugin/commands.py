"""The ``extra`` command, found only through the ``acme_legacyapp.plugins`` entry point."""

from acme_legacyapp.icommand import ICommand  # type: ignore[import-not-found]
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, ICommand)
class Extra:
    name = "extra"


extra = Extra()
