"""Whether a record answers a query (``compat_plugin._matching``), on real zope.interface
interfaces and records as a scan makes them."""

from __future__ import annotations

import sys

import pytest
from zope.interface import Interface

from compat_plugin._interfaces import TWISTED_IPLUGIN, IPlugin, extending
from compat_plugin._matching import answering, provides
from compat_plugin._records import Origin, PluginRecord


class IBase(Interface):
    """A base the plugin's interface had when it was scanned."""


class IThing(Interface):
    """The plugin's interface, which no longer extends IBase."""


THING = f"{__name__}.IThing"
BASE = f"{__name__}.IBase"
NOT_IMPORTED = "compat_plugin_test_not_imported.IThing"


def record(*provided: str) -> PluginRecord:
    """A record scanned when IThing (and the interface not imported) extended IBase."""
    everything = (*provided, BASE, IPlugin.__identifier__, TWISTED_IPLUGIN)
    return PluginRecord("pkg.plugins.mod", "thing", None, provided, everything,
                        Origin("directory", path="/plugins"))


def test_declared_interfaces_that_are_imported_decide_as_they_are_now() -> None:
    assert not provides(record(THING), extending(IBase), IBase)
    assert provides(record(THING), extending(IThing), IThing)


def test_the_names_a_scan_recorded_decide_when_a_declared_interface_is_not_imported() -> None:
    assert provides(record(THING, NOT_IMPORTED), extending(IBase), IBase)


def test_a_marker_declared_is_no_interface_to_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin declaring Twisted's IPlugin, in a process that has not imported Twisted."""
    monkeypatch.delitem(sys.modules, "twisted.plugin", raising=False)
    assert not provides(record(TWISTED_IPLUGIN, THING), extending(IBase), IBase)


def test_a_query_for_either_marker_matches_every_plugin() -> None:
    assert provides(record(TWISTED_IPLUGIN, THING), extending(IPlugin), IPlugin)
    assert provides(record(IPlugin.__identifier__), (TWISTED_IPLUGIN,), None)


def test_answering_asks_an_imported_interface_as_it_is_and_imports_nothing() -> None:
    thing, other = record(THING), record(NOT_IMPORTED)
    assert answering([thing, other], THING) == [thing]
    assert answering([thing, other], BASE) == [other]  # IThing no longer extends IBase
    assert answering([thing, other], NOT_IMPORTED) == [other]
    assert "compat_plugin_test_not_imported" not in sys.modules


def test_an_interface_created_after_the_query_began_is_asked_as_it_is_now() -> None:
    """The names extending the asked interface were taken before the call imported the module
    that defines one more (a plugin module, or a module only it imports)."""
    accepted = extending(IThing)

    class IFancy(IThing):
        """Created after ``accepted``, as a scan or a load creates it."""

    fancy = f"{__name__}.IFancy"
    globals()["IFancy"] = IFancy
    try:
        assert fancy not in accepted
        assert provides(record(fancy), accepted, IThing)
        assert not provides(record(fancy), extending(IBase), IBase)
    finally:
        del globals()["IFancy"]


def test_a_query_for_an_interface_not_imported_matches_only_by_recorded_names() -> None:
    assert not provides(record(THING), (NOT_IMPORTED,), None)
    assert provides(record(THING, NOT_IMPORTED), (BASE,), None)
