"""The marker interfaces and interface names (``compat_plugin._interfaces``), on real
zope.interface interfaces."""

from __future__ import annotations

from zope.interface import Interface, implementer

from compat_plugin._interfaces import extending


class IRoot(Interface):
    """The asked interface."""


class IChild(IRoot):
    """Extends it."""


class IGrandchild(IChild):
    """Extends it through IChild."""


class IOther(Interface):
    """Unrelated."""


class IBoth(IOther, IChild):
    """Extends it among other bases."""


@implementer(IGrandchild)
class Implementation:
    """A class declaration is a dependent of its interfaces too, and no interface."""


def test_extending_names_the_interface_first_then_every_interface_extending_it() -> None:
    found = extending(IRoot)
    assert found[0] == f"{__name__}.IRoot"
    assert sorted(found[1:]) == sorted(f"{__name__}.{name}"
                                       for name in ("IChild", "IGrandchild", "IBoth"))
    assert len(set(found)) == len(found)


def test_an_interface_nothing_extends_is_alone() -> None:
    assert extending(IOther) == (f"{__name__}.IOther", f"{__name__}.IBoth")
    assert extending(IGrandchild) == (f"{__name__}.IGrandchild",)


def test_an_interface_given_a_base_after_its_plugins_were_scanned_is_found_from_it() -> None:
    class ILate(Interface):
        """Made a base of IOther's after IOther existed."""

    assert f"{__name__}.IOther" not in extending(ILate)
    IOther.__bases__ = (ILate,)
    try:
        assert f"{__name__}.IOther" in extending(ILate)
    finally:
        IOther.__bases__ = (Interface,)
    assert f"{__name__}.IOther" not in extending(ILate)
