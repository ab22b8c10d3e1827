"""What a cache keeps of one scanned module (``compat_plugin._entries``): the stored form of
its records, decoded exactly when of the documented shape, searched undecoded; its entry; and
whether an import its scan missed has become importable, asked of real finders.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat_plugin._entries import Entry, becomes_importable, decode, details_of, mentions
from compat_plugin._records import ModuleRecords, Origin, PluginRecord, Stamp

from .conftest import JSON_VALUES, AskedFinder, well_formed_details

ORIGIN = Origin("directory", path="/some/plugins")


_names = st.lists(st.text(max_size=10), max_size=3).map(tuple)
_plugins = st.lists(
    st.builds(
        lambda attribute, description, provided, extra: PluginRecord(
            "pkg.m", attribute, description, provided, provided + extra, ORIGIN
        ),
        st.text(max_size=8), st.none() | st.text(max_size=12), _names, _names,
    ),
    max_size=3,
).map(tuple)
_modules = st.builds(
    lambda description, plugins, unexported: ModuleRecords(
        "pkg.m", description, plugins, ORIGIN, () if plugins else unexported
    ),
    st.none() | st.text(max_size=20), _plugins, _names,
)


@settings(max_examples=300)
@given(scanned=_modules)
def test_details_round_trip(scanned: ModuleRecords) -> None:
    details = details_of(scanned)
    assert details.isascii()
    assert "\n" not in details
    document = json.loads(details)
    assert well_formed_details(document)
    assert document == [
        scanned.description,
        [[p.attribute, p.description, list(p.provided), list(p.interfaces)]
         for p in scanned.plugins],
        list(scanned.unexported),
    ]
    assert decode(details, "pkg.m", ORIGIN) == scanned
    # The records say where they came from, which the details do not hold.
    elsewhere = Origin("directory", path="/elsewhere")
    assert decode(details, "pkg.m", elsewhere) == scanned._replace(
        origin=elsewhere, plugins=tuple(p._replace(origin=elsewhere) for p in scanned.plugins)
    )


_text_lines = st.one_of(
    JSON_VALUES.map(lambda value: json.dumps(value, separators=(",", ":"))),
    _modules.map(details_of),
    _modules.map(details_of).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
    st.text(max_size=40),
    st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),
)


@settings(max_examples=500, deadline=None)
@given(line=_text_lines)
def test_decode_accepts_exactly_the_documented_details(line: str) -> None:
    decoded = decode(line, "pkg.m", ORIGIN)
    try:
        document: Any = json.loads(line)
    except (ValueError, RecursionError):
        assert decoded is None
        return
    if not well_formed_details(document):
        assert decoded is None
        return
    assert decoded == ModuleRecords(
        "pkg.m", document[0],
        tuple(PluginRecord("pkg.m", a, d, tuple(p), tuple(i), ORIGIN)
              for a, d, p, i in document[1]),
        ORIGIN, tuple(document[2]),
    )


@pytest.mark.parametrize(
    "details",
    [
        "[null,[],[]]",
        '[null,[["P",null,["x.I"],["x.I"]]],[]]',
        '["doc",[],["Maker"]]',
    ],
)
def test_documented_details_decode(details: str) -> None:
    assert decode(details, "pkg.m", ORIGIN) is not None


@pytest.mark.parametrize(
    "details",
    [
        "[null,[]]",  # schema 3: no unexported classes
        '[null,[["P",null,[true],["x.I"]]],[]]',
        '[null,[["P",null,["x.I"],[1]]],[]]',
        '[false,[],[]]',
        '[null,[],[1]]',
        '[null,[],null]',
        '[null,[["P",null,["x.I"]]],[]]',
        '{"doc":null}',
    ],
)
def test_other_details_do_not(details: str) -> None:
    assert decode(details, "pkg.m", ORIGIN) is None


def test_an_entry_is_plain_data() -> None:
    entry = Entry("a.py", Stamp(1, 2), "[null,[],[]]")
    assert entry.missing == ()
    assert tuple(entry) == ("a.py", (1, 2), "[null,[],[]]", ())
    same = Entry("a.py", Stamp(1, 2), "[null,[],[]]", ())
    assert entry == same and hash(entry) == hash(same)
    assert entry != Entry("a.py", Stamp(1, 2), "[null,[],[]]", (("optdep", None),))


def test_a_miss_counts_unless_settled_by_its_importer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that can be imported now counts -- unless its importer is imported here and the
    name is not; then no finder is even asked."""
    name = f"compat_plugin_test_found_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    absent = "compat_plugin_test_never_there"
    asked = AskedFinder()
    monkeypatch.setattr(sys, "meta_path", [asked, *sys.meta_path])
    assert becomes_importable([(name, None)]) is True
    assert becomes_importable([[name, "compat_plugin_test_importer_not_imported"]]) is True
    assert becomes_importable([(absent, None), (absent, "sys")]) is False
    asked.names.clear()
    assert becomes_importable([(name, "sys"), [name, "os"]]) is False
    assert asked.names == []
    assert becomes_importable([(name, "sys"), (absent, None)]) is False
    assert asked.names == [absent]
    # Imported since, by someone: what the importer found can no longer be told.
    monkeypatch.setitem(sys.modules, name, ModuleType(name))
    assert becomes_importable([(name, "sys")]) is True


def _module_in(directory: Path, name: str, source: str) -> str:
    (directory / f"{name}.py").write_text(source)
    return name


def test_an_importer_that_has_not_run_yet_settles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An importer that is in sys.modules but has not run its body -- a lazy module not touched
    yet, a module another thread is still importing, a blocked name -- or that cannot be asked
    settles nothing."""
    import importlib.util
    import threading

    monkeypatch.syspath_prepend(str(tmp_path))
    found = _module_in(tmp_path, f"compat_plugin_test_there_{os.getpid()}", "")
    lazy = _module_in(tmp_path, "compat_plugin_test_lazy_importer", "RAN = True\n")
    spec = importlib.util.find_spec(lazy)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, lazy, module)
    spec.loader.exec_module(module)
    assert becomes_importable([(found, lazy)]) is True
    assert "RAN" not in object.__getattribute__(module, "__dict__")  # still not run

    monkeypatch.setitem(sys.modules, "compat_plugin_test_blocked_importer", None)
    assert becomes_importable([(found, "compat_plugin_test_blocked_importer")]) is True

    class Odd:
        def __getattribute__(self, name: str) -> object:
            raise RuntimeError("nothing to be asked")

    monkeypatch.setitem(sys.modules, "compat_plugin_test_odd_importer", Odd())
    assert becomes_importable([(found, "compat_plugin_test_odd_importer")]) is True

    gate = _module_in(tmp_path, "compat_plugin_test_gate",
                      "import threading\nstarted, release = threading.Event(), threading.Event()\n")
    slow = _module_in(tmp_path, "compat_plugin_test_slow_importer",
                      f"import {gate}\n{gate}.started.set()\n{gate}.release.wait(30)\n")
    monkeypatch.delitem(sys.modules, slow, raising=False)
    gates = __import__(gate)
    worker = threading.Thread(target=__import__, args=(slow,))
    worker.start()
    try:
        assert gates.started.wait(30)
        assert slow in sys.modules
        assert becomes_importable([(found, slow)]) is True
    finally:
        gates.release.set()
        worker.join(30)
    assert becomes_importable([(found, slow)]) is False
    for name in (gate, slow):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(("wanted", "found"), [
    (('"a.I"',), True),
    (('"b.J"',), False),
    (('"b.J"', '"a.I"'), True),
    (('"a.I2"', '"b"'), False),
    ((), False),
])
def test_details_mention_any_of_the_wanted_names(wanted: tuple[str, ...], found: bool) -> None:
    details = '[null,[["p",null,["a.I"],["a.I","a.Base"]]],[]]'
    assert mentions(details, wanted) is found
