"""Made for hostapp 1 on Python 2 only."""

import os
from pathlib import Path

from hostapp.ifaces import IMaterial  # type: ignore[import-not-found]
from zope.interface import implementer

from compat_plugin import IPlugin

# Tests set ACME_IMPORTS to a directory in which to note that this module was imported.
if os.environ.get("ACME_IMPORTS"):
    Path(os.environ["ACME_IMPORTS"], __name__).touch()


@implementer(IPlugin, IMaterial)
class Material:
    def __init__(self, name: str) -> None:
        self.name = name


flint = Material("flint")
