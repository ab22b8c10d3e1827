"""The interfaces plugins of hostapp provide."""

from zope.interface import Attribute, Interface


class IMaterial(Interface):
    """Something the application can build with."""

    name = Attribute("The material's name.")


class IOther(Interface):
    """Something else entirely."""

    name = Attribute("The thing's name.")
