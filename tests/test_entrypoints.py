"""The entry-point source (``compat_plugin._entrypoints``): merging the indexes of ``sys.path``
entries, the index document and its validation, where indexes live, when an entry is read
again, and what an index is trusted for.

The pure parts (``merge``, the placement rules) are tested with indexes built by hand.  The
rest uses real distributions, built once per module by setuptools and installed by pip
(``--target``) into a template directory each; a test copies the templates it needs into site
directories of its own, puts them on this process's ``sys.path``, and calls ``fresh()`` to
forget the imported modules and the resolver's memory, as a new process would start.  What
needs another user or another process runs real interpreters.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pickle
import random
import shutil
import sys
import tempfile
import textwrap
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import importlib_metadata
import pytest

from compat_plugin import _entrypoints, _metadata, discover, getPlugins
from compat_plugin._entries import Entry
from compat_plugin._entry_indexes import GroupView, may_live_beside, merge
from compat_plugin._entrypoints import (
    Declared,
    Distribution,
    EntryIndex,
    Gate,
    Shadowed,
    checked_scans,
    index_places,
    read_index,
    read_index_at,
    save_index,
)
from compat_plugin._inventory import cache_states
from compat_plugin._records import Stamp
from compat_plugin._resolver import forget_state, resolver
from compat_plugin._store import LARGEST, CacheFile, digest, interpreter_tag, user_cache_root
from compat_plugin.cli import main
from compat_plugin.testing import PluginPackage, build_wheels, install_wheels, run_python
from compat_plugin.testing import write_project as project

from .conftest import PLUGINS_INIT, open_to_everyone, write

GROUP = "ephost.plugins"
NOBODY = 65534
PROBLEMS = ("WARNING", "ERROR", "CRITICAL")


# -- merge(), with indexes built by hand -------------------------------------------------------


def dist(key: str, version: str = "1.0", *, entry: str = "/a", has_metadata: bool = True
         ) -> Distribution:
    module = key.replace("-", "_")
    return Distribution(key, key, version, f"{entry}/{module}-{version}.dist-info", None,
                        has_metadata, (Declared("ep", f"{module}:p", module, "p"),), ())


def index(entry: str, *dists: Distribution, others: tuple[str, ...] = (),
          shadowed: tuple[Shadowed, ...] = ()) -> EntryIndex:
    """The index of ``entry`` holding ``dists`` (which declare entry points in the group) and
    ``others`` (which do not)."""
    named = [d.key for d in dists if d.has_metadata] + list(others)
    nameless = [d.key for d in dists if not d.has_metadata]
    return EntryIndex(entry, "g.plugins", Stamp(1, 1), "\n".join(["", *named, ""]),
                      "\n".join(["", *nameless, ""]), dists, shadowed)


def counted(view: GroupView) -> list[tuple[str, str, int]]:
    return [(c.distribution.key, c.source.entry, c.position) for c in view.contributions]


def hidden(view: GroupView) -> list[tuple[str, str, str, str]]:
    return [(s.key, s.version, source.entry, s.by) for s, source in view.shadowed]


def test_merge_first_copy_on_the_path_wins() -> None:
    first = index("/a", dist("foo", entry="/a"))
    second = index("/b", dist("foo", "2.0", entry="/b"), dist("bar", entry="/b"))
    view = merge([(0, first), (3, second)])
    assert counted(view) == [("foo", "/a", 0), ("bar", "/b", 3)]
    assert hidden(view) == [("foo", "2.0", "/b", "/a/foo-1.0.dist-info")]


def test_merge_prefers_a_later_copy_with_metadata_to_an_earlier_copy_without() -> None:
    first = index("/a", dist("foo", "3.0", entry="/a", has_metadata=False))
    second = index("/b", dist("foo", entry="/b"))
    view = merge([(0, first), (1, second)])
    assert counted(view) == [("foo", "/b", 1)]
    assert hidden(view) == [("foo", "3.0", "/a", "/b/foo-1.0.dist-info")]


def test_merge_copy_without_metadata_counts_when_no_copy_has_any() -> None:
    first = index("/a", dist("foo", entry="/a", has_metadata=False))
    second = index("/b", dist("foo", "2.0", entry="/b", has_metadata=False))
    view = merge([(0, first), (1, second)])
    assert counted(view) == [("foo", "/a", 0)]
    assert hidden(view) == [("foo", "2.0", "/b", "/a/foo-1.0.dist-info")]


def test_merge_copy_declaring_nothing_in_the_group_still_shadows() -> None:
    # /a holds foo (in its names) but foo there declares no entry point of the group.
    view = merge([(0, index("/a", others=("foo",))), (1, index("/b", dist("foo", entry="/b")))])
    assert counted(view) == []
    assert hidden(view) == [("foo", "1.0", "/b", "/a")]


def test_merge_passes_on_what_an_entry_hid_within_itself() -> None:
    inner = Shadowed("foo", "0.9", "/a/foo-0.9.dist-info", "/a/foo-1.0.dist-info")
    view = merge([(0, index("/a", dist("foo", entry="/a"), shadowed=(inner,)))])
    assert counted(view) == [("foo", "/a", 0)]
    assert hidden(view) == [("foo", "0.9", "/a", "/a/foo-1.0.dist-info")]


def test_locate_finds_the_copy_that_counts() -> None:
    nameless = index("/a", dist("foo", entry="/a", has_metadata=False))
    view = merge([(0, nameless), (1, index("/b", others=("foo", "bar"))),
                  (2, index("/c", others=("bar",)))])
    found = [view.locate(key) for key in ("foo", "bar", "baz")]
    assert [source.entry if source else None for source in found] == ["/b", "/b", None]
    assert merge([(0, nameless)]).locate("foo") is nameless


# -- The index document ------------------------------------------------------------------------


def test_index_document_round_trips(tmp_path: Path) -> None:
    entry = str(tmp_path)
    entry_points = (Declared("a", "foo:a", "foo", "a"), Declared("b", "x:y:z", None, None))
    declared = Distribution("foo", "Foo", "1.0", f"{entry}/foo-1.0.dist-info", Stamp(5, 6),
                            True, entry_points, ("host>=2",))
    written = EntryIndex(entry, GROUP, Stamp(1, 2), "\nfoo\nbar\n", "\nbaz\n", (declared,),
                         (Shadowed("foo", "0.9", "/b/foo-0.9.dist-info", declared.metadata),))
    written.judged("foo", Gate("requires host>=2", (("host", "/b", Stamp(3, 4)),)))
    written.store("foo\0a\0foo:a", Entry("/x/foo.py", Stamp(7, 8), "[null,[],[]]",
                                         (("opt", "foo"), ("probed", None))))
    place = str(tmp_path / "index.json")
    save_index(written, CacheFile([place]))
    assert not written.dirty

    read = read_index_at(place, entry, GROUP)
    assert read is not None
    for field in ("stamp", "names", "nameless", "distributions", "shadowed", "gates", "scans"):
        assert getattr(read, field) == getattr(written, field), field
    assert read_index_at(place, entry, "other.plugins") is None
    raw = Path(place).read_bytes()
    assert raw == sealed(json.loads(raw))  # written as documented


def test_read_index_tells_a_current_index_from_a_stale_one(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    written = EntryIndex(str(entry), GROUP, Stamp(1, 2), "\nfoo\n", links=3)
    written.dirty = True
    (place, _) = index_places(str(entry), GROUP, beside=True)
    save_index(written, CacheFile([place]))
    current, stale = read_index(str(entry), GROUP, (Stamp(1, 2), 3, True))
    assert current is not None and stale is None
    for state in ((Stamp(1, 3), 3, True), (Stamp(1, 2), 4, True)):
        current, stale = read_index(str(entry), GROUP, state)
        assert current is None and stale is not None and stale.names == "\nfoo\n", state


def test_an_entry_cut_to_whole_seconds_is_current_for_an_index_written_after_its_second(
    tmp_path: Path,
) -> None:
    """An image layer cuts the entry's time to its second.  That still describes the entry
    for an index read from a file written after that second -- a distribution installed
    later would have changed the second -- but not for one written within it, nor for an
    index this process holds only in memory."""
    second = 10**9
    entry = tmp_path / "entry"
    entry.mkdir()
    written = EntryIndex(str(entry), GROUP, Stamp(5 * second + 400_000_000, 4096), links=1)
    written.dirty = True
    (place, _) = index_places(str(entry), GROUP, beside=True)
    save_index(written, CacheFile([place]))
    cut = (Stamp(5 * second, 4096), 1, True)
    assert not written.describes(cut)
    for when, current in ((5 * second + 900_000_000, False), (6 * second, True)):
        os.utime(place, ns=(when, when))
        read = read_index_at(place, str(entry), GROUP)
        assert read is not None and read.written_ns == when
        assert read.describes(cut) is current, when
        assert not read.describes((Stamp(5 * second, 4097), 1, True))
        assert not read.describes((Stamp(5 * second, 4096), 2, True))


def test_scans_carried_into_a_new_index_file_are_checked_and_restamped(tmp_path: Path) -> None:
    """An index written now vouches for every scan it holds (``Stamp.matches``): a scan this
    process did not make goes into it only if it still describes its module's file, and with
    the file's stamp now -- whether the index is rewritten or rebuilt from a stale one."""
    second = 10**9
    when = 1_700_000_000 * second
    module = tmp_path / "mod.py"
    module.write_text("x = 1\n")
    size = module.stat().st_size
    recorded = Entry(str(module), Stamp(when + 300_000_000, size), "[null,[],[]]")
    os.utime(module, ns=(when, when))  # cut to its second
    now = Stamp(when, size)
    assert checked_scans({"k": recorded}, when + second) == {
        "k": Entry(str(module), now, "[null,[],[]]")}
    assert checked_scans({"k": recorded}, when + 600_000_000) == {}  # written within it
    assert checked_scans({"k": recorded}, None) == {}

    index = EntryIndex(str(tmp_path), GROUP, Stamp(1, 2))
    index.scans = {"carried": recorded}
    index.written_ns = when + second
    index.store("fresh", Entry(str(tmp_path / "gone.py"), Stamp(5, 6), "[null,[],[]]"))
    save_index(index, CacheFile([str(tmp_path / "index.json")]))
    assert index.scans["carried"].stamp == now  # checked, restamped
    assert "fresh" in index.scans  # this process's own scan goes in as it is
    index.written_ns = when + 600_000_000
    index.scans["carried"] = recorded
    index.dirty = True
    save_index(index, CacheFile([str(tmp_path / "index.json")]))
    assert "carried" not in index.scans


def test_an_index_beside_an_entry_serves_it_by_every_path_and_no_copy(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    link = tmp_path / "link"
    link.symlink_to(entry)
    written = EntryIndex(str(link), GROUP, Stamp(1, 2), "\nfoo\n")
    written.dirty = True
    save_index(written, CacheFile([index_places(str(entry), GROUP, beside=True)[0]]))
    # Written through the link, it records the real path; both ways in read it.
    for path in (entry, link):
        current, _ = read_index(str(path), GROUP, (Stamp(1, 2), 0, True))
        assert current is not None and current.names == "\nfoo\n", path
    copy = Path(shutil.copytree(entry, tmp_path / "copy"))
    assert read_index(str(copy), GROUP, (Stamp(1, 2), 0, True)) == (None, None)


# -- Where an index lives ----------------------------------------------------------------------


def test_index_places(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    name = f"{GROUP}.{interpreter_tag()}.json"
    per_user = os.path.join(user_cache_root(), "entry-points",
                            f"{digest(str(tmp_path.resolve()))}.{name}")
    assert index_places(str(link), GROUP, beside=True) == [
        str(link / "__pycache__" / f"compat_plugin.entry-points.{name}"), per_user]
    # Keyed by the entry's real path: both ways to it share one per-user index.
    assert index_places(str(link), GROUP, beside=False) == [per_user]
    assert index_places(str(tmp_path), GROUP, beside=False) == [per_user]


@pytest.mark.parametrize(("layout", "beside"), [
    ("distributions", True), ("nameless-copy", True), ("pycache", True), ("nothing", False),
    ("file", False), ("missing", False)])
def test_an_index_lives_beside_an_entry_holding_distributions_or_a_pycache(
    tmp_path: Path, layout: str, beside: bool
) -> None:
    entry = tmp_path / "entry"
    if layout == "file":
        entry.write_bytes(b"PK\5\6" + bytes(18))  # an empty zip archive
    elif layout != "missing":
        entry.mkdir()
    if layout == "pycache":
        (entry / "__pycache__").mkdir()
    names = "\nfoo\n" if layout == "distributions" else "\n"
    nameless = "\nfoo\n" if layout == "nameless-copy" else "\n"
    made = EntryIndex(str(entry), GROUP, Stamp(1, 1), names, nameless)
    assert may_live_beside(made) is beside
    # ``cache regenerate`` writes beside every directory it can.
    assert may_live_beside(made, forced=True) is (layout not in ("file", "missing"))


# -- Real distributions, in template directories -------------------------------------------------

IFACES = '''
from zope.interface import Interface


class IOne(Interface):
    "One interface."


class ITwo(Interface):
    "Another, unrelated."
'''

PLUGIN = '''
from zope.interface import implementer

from compat_plugin import IPlugin
from ephost.ifaces import {interface}


@implementer(IPlugin, {interface})
class Plugin:
    def __init__(self, tag):
        self.tag = tag


plugin = Plugin({tag!r})
'''

OPTIONAL = '''
from zope.interface import implementer

from compat_plugin import IPlugin
from ephost.ifaces import IOne


@implementer(IPlugin, IOne)
class Plugin:
    def __init__(self, tag):
        self.tag = tag


always = Plugin("always")
try:
    import ep_optional_dependency
except ImportError:
    pass
else:
    extra = Plugin("extra")
'''


def plugin(tag: str, interface: str = "IOne") -> str:
    return PLUGIN.format(tag=tag, interface=interface)


def acme(root: Path, name: str, *plugins: tuple[str, str]) -> Path:
    """The project of a distribution ``name`` whose package has one module per (tag,
    interface) of ``plugins``, each the object of an entry point named by its tag."""
    package = name.replace("-", "_")
    files = {f"{package}/__init__.py": ""}
    files.update({f"{package}/{tag}.py": plugin(tag, interface) for tag, interface in plugins})
    declared = {tag: f"{package}.{tag}:plugin" for tag, _ in plugins}
    return project(name, root, files=files, entry_points={GROUP: declared})


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This module's wheels, by project name."""
    root = tmp_path_factory.mktemp("ep-projects")
    things = plugin("present") + "\nholder = Plugin\nnothing = None\n"
    projects = [
        project("ephost", root, files={"ephost/__init__.py": "", "ephost/ifaces.py": IFACES,
                                       "ephost/plugins/__init__.py": PLUGINS_INIT,
                                       "ephost/plugins/a.py": plugin("a")}),
        acme(root, "ep-good", ("good", "IOne"), ("other", "ITwo")),
        acme(root, "ep-broken", ("brokenplugin", "IOne")),
        acme(root, "ep-dup", ("dup", "IOne")),
        project("ep-attrs", root,
                files={"ep_attrs/__init__.py": "", "ep_attrs/things.py": things},
                entry_points={GROUP: {
                    "present": "ep_attrs.things:plugin", "absent": "ep_attrs.things:absent",
                    "deep": "ep_attrs.things:holder.absent",
                    "through-none": "ep_attrs.things:nothing.attr"}}),
        project("ep-opt", root, files={"ep_opt/__init__.py": "", "ep_opt/mod.py": OPTIONAL},
                entry_points={GROUP: {"opt": "ep_opt.mod"}}),
        project("ep-optional-dependency", root, files={"ep_optional_dependency.py": ""}),
    ]
    halves = [(projects[::2], root / "wheels-1"), (projects[1::2], root / "wheels-2")]
    with ThreadPoolExecutor(2) as pool:
        built = [w for ws in pool.map(lambda half: build_wheels(*half), halves) for w in ws]
    return {wheel.name.split("-")[0].replace("_", "-"): wheel for wheel in built}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]
              ) -> dict[str, Path]:
    """A directory per distribution, pip installed it into (``--target``)."""
    root = tmp_path_factory.mktemp("ep-templates")
    with ThreadPoolExecutor(2) as pool:
        done = pool.map(lambda item: install_wheels(root / item[0], item[1]), wheels.items())
        return dict(zip(wheels, done))


class Sites:
    """Site directories of one test, made of copies of the templates, on ``sys.path``."""

    def __init__(self, templates: dict[str, Path], root: Path,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.templates = templates
        self.root = root
        self.monkeypatch = monkeypatch

    def make(self, name: str, *distributions: str) -> Path:
        """A site directory ``name`` holding ``distributions``, put first on ``sys.path``."""
        site = self.root / name
        site.mkdir()
        for distribution in distributions:
            shutil.copytree(self.templates[distribution], site, symlinks=True,
                            dirs_exist_ok=True)
        self.monkeypatch.syspath_prepend(str(site))
        return site

    def forget(self) -> None:
        prefix = str(self.root) + os.sep
        for name, module in list(sys.modules.items()):
            files = [getattr(module, "__file__", None) or "", *getattr(module, "__path__", ())]
            if name.split(".")[0] == "ephost" or any(
                    isinstance(f, str) and f.startswith(prefix) for f in files):
                del sys.modules[name]

    def fresh(self) -> None:
        """Forget what this process imported and remembers, as a new process would start."""
        self.forget()
        forget_state()
        importlib.invalidate_caches()


@pytest.fixture
def sites(templates: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Sites]:
    made = Sites(templates, tmp_path / "sites", monkeypatch)
    made.root.mkdir()
    # The working directory is no part of these scenarios.
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", ".")])
    yield made
    made.forget()


def package() -> ModuleType:
    return importlib.import_module(GROUP)


def tags(interface: str = "IOne") -> list[str]:
    ifaces = importlib.import_module("ephost.ifaces")
    return [p.tag for p in getPlugins(getattr(ifaces, interface), package())]


def beside(site: Path) -> Path:
    return Path(index_places(str(site), GROUP, beside=True)[0])


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "compat_plugin" and r.levelname in PROBLEMS]


def reads(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The entries whose installed metadata was read, as logged."""
    prefix = "reading installed metadata in "
    return [m[len(prefix):].partition(" for entry points")[0]
            for m in (r.getMessage() for r in caplog.records) if m.startswith(prefix)]


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    return caplog


# -- Which entries are read ----------------------------------------------------------------------


def test_entry_that_does_not_exist_holds_nothing_and_gets_no_index(
    tmp_path: Path, debug: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "missing")
    made = resolver().entry_points.entry_index(missing, GROUP)
    assert (made.stamp, made.distributions, made.dirty) == (None, (), False)
    resolver().entry_points.save(made)
    assert reads(debug) == []
    assert not any(Path(p).exists() for p in index_places(missing, GROUP, beside=True))


def test_entry_without_distributions_is_neither_read_nor_indexed(
    plugin_package: Callable[..., PluginPackage], debug: pytest.LogCaptureFixture
) -> None:
    made = plugin_package()
    made.module("mod", "")
    found = discover(made.package())
    assert found.plugins == ()
    assert str(made.root) not in reads(debug)
    places = index_places(str(made.root), made.plugins_name, beside=True)
    assert not any(Path(place).exists() for place in places)


def test_first_index_beside_an_entry_stays_valid(sites: Sites, templates: dict[str, Path]
                                                  ) -> None:
    # Only packages: pip made no __pycache__ there, so writing the index makes one, and so
    # would importing a module from there.
    site = sites.make("site", "ephost", "ep-good")
    assert not (site / "__pycache__").exists()
    assert tags() == ["a", "good"]
    stat = site.stat()
    assert json.loads(beside(site).read_text())["stamp"] == [stat.st_mtime_ns, stat.st_size]


def test_installing_into_one_entry_reads_only_that_entry(
    sites: Sites, wheels: dict[str, Path], debug: pytest.LogCaptureFixture
) -> None:
    first = sites.make("first", "ephost", "ep-good")
    second = sites.make("second", "ep-dup")
    assert tags() == ["a", "dup", "good"]
    assert set(reads(debug)) >= {str(first), str(second)}
    sites.fresh()
    debug.clear()
    assert tags() == ["a", "dup", "good"]
    assert reads(debug) == []

    install_wheels(second, wheels["ep-optional-dependency"])
    sites.fresh()
    debug.clear()
    assert tags() == ["a", "dup", "good"]
    assert reads(debug) == [str(second)]


def test_scans_survive_a_rebuild_of_the_index(
    sites: Sites, wheels: dict[str, Path], debug: pytest.LogCaptureFixture
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    install_wheels(site, wheels["ep-optional-dependency"])  # unrelated, into the same entry
    sites.fresh()
    debug.clear()
    ifaces = importlib.import_module("ephost.ifaces")
    found = discover(package(), ifaces.IOne)
    assert [(r.module, r.origin.distribution) for r in found.plugins] == [
        ("ephost.plugins.a", None), ("ep_good.good", "ep-good")]
    assert reads(debug) == [str(site)]
    # What the modules contributed came from the rebuilt index, not from importing them.
    assert not {"ep_good.good", "ep_good.other"} & set(sys.modules)


def test_a_distribution_extracted_into_an_entry_with_its_times_restored_is_seen(
    sites: Sites, templates: dict[str, Path]
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    # importlib-metadata has listed the entry, and remembers the listing by the entry's time.
    assert "ep-dup" not in {d.metadata["Name"] for d in importlib_metadata.distributions(
        path=[str(site)])}
    before = site.stat()
    # What extracting an archive over the entry does: new members, then the archived times.
    shutil.copytree(templates["ep-dup"], site, symlinks=True, dirs_exist_ok=True)
    os.utime(site, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = site.stat()
    if after.st_size != before.st_size:
        pytest.skip("this file system's directory sizes show the change")
    if after.st_nlink == before.st_nlink:
        pytest.skip("this file system's directories do not count their subdirectories")
    # The import system, too, remembers a listing by the directory's time: only its finder of
    # the entry is told to look again, as a program changing its entries under it must.
    finder: Any = sys.path_importer_cache[str(site)]
    finder.invalidate_caches()
    assert tags() == ["a", "dup", "good"]  # in the same process, which listed it before
    sites.fresh()
    assert tags() == ["a", "dup", "good"]  # and from the index that process stored


def test_a_working_copy_imported_ahead_of_the_installed_module_leaves_the_index_true(
    sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites.make("site", "ephost", "ep-good")
    checkout = sites.make("checkout")  # a working copy of ep_good, first on sys.path
    write(checkout / "ep_good" / "__init__.py", "")
    write(checkout / "ep_good" / "good.py", plugin("good", "ITwo"))
    assert tags() == ["a"]  # the working copy's plugin provides ITwo only
    sys.path.remove(str(checkout))
    sites.fresh()
    assert tags() == ["a", "good"]  # the installed module's plugin provides IOne
    sites.fresh()
    assert tags() == ["a", "good"]  # warm: the installed module's scan is kept
    monkeypatch.syspath_prepend(str(checkout))
    sites.fresh()
    # The installed module's scan does not answer for the copy: it would pass it over.
    assert tags("ITwo") == ["good"]
    assert sys.modules["ep_good.good"].__file__ == str(checkout / "ep_good" / "good.py")


def test_a_working_copy_of_a_module_a_warm_call_loads_is_taken_for_what_it_holds(
    sites: Sites, caplog: pytest.LogCaptureFixture
) -> None:
    """The kept scan mentions the asked interface, as the copy's plugins do: the copy ahead
    is scanned for itself, not loaded by the installed module's records."""
    sites.make("site", "ephost", "ep-opt")
    assert tags() == ["a", "always"]  # indexed: the installed module's scan
    checkout = sites.make("checkout")
    write(checkout / "ep_opt" / "__init__.py", "")
    write(checkout / "ep_opt" / "mod.py", plugin("copy") + "\nmore = Plugin('more')\n")
    for _process in range(2):  # the index keeps the installed module's scan, which is true
        sites.fresh()
        caplog.clear()
        assert tags() == ["a", "copy", "more"]
        assert problems(caplog) == []
    sys.path.remove(str(checkout))
    sites.fresh()
    assert tags() == ["a", "always"]


LOOKALIKE = '''
from zope.interface import Interface, implementer

from compat_plugin import IPlugin


class IOne(Interface):
    "Named as the host's interface is, but another."


@implementer(IPlugin, IOne)
class Plugin:
    tag = "lookalike"


lookalike = Plugin()
'''


def test_a_copy_ahead_of_a_module_whose_scan_only_seemed_to_answer_is_scanned_for_itself(
    sites: Sites,
) -> None:
    """A kept scan whose text mentions an interface of the asked name, though its plugins
    provide another, does not answer for a copy ahead of its module."""
    site = sites.make("site", "ephost", "ep-opt")
    write(site / "ep_opt" / "mod.py", LOOKALIKE)
    assert tags() == ["a"]  # indexed: its plugin provides ep_opt.mod.IOne
    checkout = sites.make("checkout")
    write(checkout / "ep_opt" / "__init__.py", "")
    write(checkout / "ep_opt" / "mod.py", plugin("copy"))
    sites.fresh()
    assert tags() == ["a", "copy"]
    assert sys.modules["ep_opt.mod"].__file__ == str(checkout / "ep_opt" / "mod.py")


def test_a_module_imported_before_the_call_is_checked_where_it_was_imported_from(
    sites: Sites,
) -> None:
    sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    checkout = sites.make("checkout")
    write(checkout / "ep_good" / "__init__.py", "")
    write(checkout / "ep_good" / "good.py", plugin("good", "ITwo"))
    sites.fresh()
    importlib.import_module("ep_good")  # from the copy, which sys.path now finds first
    sys.path.remove(str(checkout))  # the package already imported is what counts
    assert tags("ITwo") == ["good"]


def test_a_module_nothing_would_import_now_is_reported_as_a_cold_call_reports_it(
    sites: Sites,
) -> None:
    """A working copy of the package, imported ahead of the installed one, lacks the module:
    the installed module's scan does not answer for it, warm or cold."""
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]  # the index keeps the installed module's scan
    checkout = sites.make("checkout")
    write(checkout / "ep_good" / "__init__.py", "")
    ifaces = importlib.import_module("ephost.ifaces")
    for run in ("warm", "cold"):
        sites.fresh()
        if run == "cold":
            beside(site).unlink()
        importlib.import_module("ep_good")  # from the copy
        found = discover(package(), ifaces.IOne)
        assert [r.module for r in found.plugins] == ["ephost.plugins.a"], run
        assert sorted((e.target, e.kind, type(e.error)) for e in found.errors) == [
            (f"ep_good.{name}", "import error", ModuleNotFoundError)
            for name in ("good", "other")], run


def test_a_module_gone_from_a_copy_not_imported_yet_is_an_import_error(
    sites: Sites, caplog: pytest.LogCaptureFixture
) -> None:
    """Not imported, the copy's ``__init__`` could extend its ``__path__``: the kept scan
    answers, and loading the plugin fails -- said as what it is."""
    sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    checkout = sites.make("checkout")
    write(checkout / "ep_good" / "__init__.py", "")
    sites.fresh()
    caplog.clear()
    assert tags() == ["a"]
    (message,) = problems(caplog)
    assert message.startswith("ep_good.good from ep-good 1.0")
    assert ": import error: ModuleNotFoundError: " in message


def test_a_module_two_entry_points_name_that_no_longer_imports_fails_for_each(
    sites: Sites, caplog: pytest.LogCaptureFixture
) -> None:
    """Its dependency gone from ``sys.path``, a cached module fails to import on a warm call:
    imported once, and said for each entry point naming it, as a cold call says it."""
    site = sites.make("site", "ephost", "ep-attrs")
    deps = sites.make("deps", "ep-optional-dependency")
    write(site / "ep_attrs" / "things.py",
          "import ep_optional_dependency\n" + plugin("one") + "\nsecond = Plugin('two')\n")
    (metadata,) = site.glob("ep_attrs-*.dist-info")
    write(metadata / "entry_points.txt",
          f"[{GROUP}]\none = ep_attrs.things:plugin\ntwo = ep_attrs.things:second\n")
    assert tags() == ["a", "one", "two"]
    sys.path.remove(str(deps))
    for run in ("warm", "cold"):
        sites.fresh()
        if run == "cold":
            beside(site).unlink()
        caplog.clear()
        assert tags() == ["a"], run
        assert sorted(problems(caplog)) == [
            f"ep_attrs.things from ep-attrs 1.0 (entry point {name!r}): import error: "
            "ModuleNotFoundError: No module named 'ep_optional_dependency'"
            for name in ("one", "two")], run


def test_an_entry_named_relative_to_the_working_directory_is_indexed_by_full_paths(
    sites: Sites, monkeypatch: pytest.MonkeyPatch, debug: pytest.LogCaptureFixture
) -> None:
    """``python -c`` and the REPL put ``""`` on ``sys.path``: an index made through it serves a
    process started elsewhere that names the entry in full, without reading it again."""
    site = sites.make("site", "ephost", "ep-good")
    metadata = [str(path) for path in site.glob("ep_good-*.dist-info")]
    ifaces = importlib.import_module("ephost.ifaces")
    for entry, working in (("", site), (str(site), sites.root)):
        sys.path[0] = entry
        monkeypatch.chdir(working)
        sites.fresh()
        debug.clear()
        found = discover(package(), ifaces.IOne)
        assert [r.origin.path for r in found.plugins if r.origin.distribution] == metadata
        assert [m for m in (r.getMessage() for r in debug.records) if "again" in m] == []
    assert reads(debug) == []


def test_a_working_copy_of_a_namespace_portion_ahead_of_the_installed_one_is_scanned(
    sites: Sites,
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    (site / "ep_good" / "__init__.py").unlink()  # ep_good, a namespace package (PEP 420)
    assert tags() == ["a", "good"]
    checkout = sites.make("checkout")  # a portion of ep_good ahead of the installed one
    write(checkout / "ep_good" / "good.py", plugin("good", "ITwo"))
    sites.fresh()
    # The installed file still lies in one of ep_good's directories, but is not the one read.
    assert tags("ITwo") == ["good", "other"]
    assert sys.modules["ep_good.good"].__file__ == str(checkout / "ep_good" / "good.py")


def test_an_entry_reached_through_a_symbolic_link_keeps_its_scans(sites: Sites) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    link = sites.root / "link"
    link.symlink_to(site)
    scanned: list[str] = []
    for entry in (link, site, link):  # processes reaching the entry by either spelling
        sys.path[0] = str(entry)
        sites.fresh()
        resolver().on_scan = scanned.append
        assert tags() == ["a", "good"]
    assert [name for name in scanned if name.startswith("ep_good")] == []


class _Strict:
    """A finder on ``sys.meta_path`` that wants all three arguments, and finds nothing."""

    def find_spec(self, name: str, path: object, target: object) -> None:
        return None


class _Failing:
    """A finder that fails on every name: it cannot tell where anything is."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        raise RuntimeError("no")


@pytest.mark.parametrize("finder", [_Strict, _Failing], ids=["three-arguments", "failing"])
def test_finders_asked_where_a_module_is_cost_no_rescan(
    sites: Sites, monkeypatch: pytest.MonkeyPatch, finder: type
) -> None:
    sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    sites.fresh()
    # Imported before the finder, which fails on every import after it.
    ifaces = importlib.import_module("ephost.ifaces")
    plugins = package()
    monkeypatch.setattr(sys, "meta_path", [finder(), *sys.meta_path])
    scanned: list[str] = []
    resolver().on_scan = scanned.append
    found = discover(plugins, ifaces.IOne)
    assert [r.module for r in found.plugins] == ["ephost.plugins.a", "ep_good.good"]
    assert scanned == []


def test_entry_point_plugin_depending_on_an_optional_package_appears_when_it_is_installed(
    sites: Sites,
) -> None:
    sites.make("site", "ephost", "ep-opt")
    assert tags() == ["a", "always"]
    sites.fresh()
    assert tags() == ["a", "always"]  # from the index
    sites.make("optional", "ep-optional-dependency")  # into another entry
    sites.fresh()
    assert tags() == ["a", "always", "extra"]


REGENERATE = """
from compat_plugin.cli import main
raise SystemExit(main(["cache", "regenerate", "ephost.plugins"]))
"""

# A child that starts as root, loads what it needs from where the interpreter lives (which an
# unprivileged user may not reach) by reading the installed metadata for a group nothing uses,
# without writing, then becomes ``nobody`` and looks for ephost's plugins.
UNPRIVILEGED = """
import importlib, json, logging, os, sys
os.environ["COMPAT_PLUGIN_NO_CACHE_WRITE"] = "1"
from compat_plugin import _metadata, _resolver, discover
_resolver.resolver().entry_points.view("unused.plugins")
_resolver.forget_state()
del os.environ["COMPAT_PLUGIN_NO_CACHE_WRITE"]
os.setgroups([])
os.setgid(UID)
os.setuid(UID)

logs = []


class Keep(logging.Handler):
    def emit(self, record):
        logs.append(record.getMessage())


logger = logging.getLogger("compat_plugin")
logger.addHandler(Keep())
logger.setLevel(logging.DEBUG)
found = discover(importlib.import_module("ephost.plugins"))
print(json.dumps({"uid": os.getuid(), "logs": logs,
                  "plugins": [r.qualified_name for r in found.plugins]}))
"""

WARM = """
import importlib, json, sys
loaded = set(sys.modules)
from compat_plugin import discover
found = discover(importlib.import_module("ephost.plugins"))
print(json.dumps({"plugins": [r.qualified_name for r in found.plugins],
                  "imported": sorted(set(sys.modules) - loaded)}))
"""


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A directory every user can read (the test's own temporary directory is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="compat-plugin-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def test_regenerated_indexes_serve_an_unprivileged_user_without_a_cache(
    templates: dict[str, Path], shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("privileges can only be dropped when running as root")
    site, extra, cwd, cache = (shared / name for name in ("site", "extra", "cwd", "cache"))
    for name in ("ephost", "ep-good"):
        shutil.copytree(templates[name], site, dirs_exist_ok=True)
    shutil.copytree(templates["ep-dup"], extra)
    for directory in (cwd, cache):  # root's: nobody can write neither
        directory.mkdir()
    open_to_everyone(shared)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(cache))
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(cache / "compat_plugin"))

    # The administrator: everything on their sys.path is indexed, beside each entry.
    run_python(REGENERATE, path=[site])
    warm = json.loads(run_python(WARM, path=[site]).stdout)
    assert warm["plugins"] == ["ephost.plugins.a:plugin", "ep_good.good:plugin",
                               "ep_good.other:plugin"]
    assert not [name for name in warm["imported"]
                if name.split(".")[0] in ("importlib_metadata", "packaging")
                or name.startswith("importlib.metadata")]

    # A user with an entry of their own, who can write no cache, reads only that one.
    code = f"UID = {NOBODY}\n{textwrap.dedent(UNPRIVILEGED)}"
    out = json.loads(run_python(code, path=[extra, site]).stdout)
    assert out["uid"] == NOBODY
    assert "ep_dup.dup:plugin" in out["plugins"]
    prefix = "reading installed metadata in "
    read = [m[len(prefix):].split(" for entry points of ") for m in out["logs"]
            if m.startswith(prefix)]
    assert read == [[str(extra), GROUP]]
    assert not (cache / "compat_plugin").exists()


# What importlib-metadata names in the group, as the child that ran UNPRIVILEGED sees it (or
# the exception it raises).
NAMED_BY_IMPORTLIB_METADATA = """
import importlib_metadata
try:
    named = sorted(e.value for e in importlib_metadata.entry_points(group="ephost.plugins"))
except Exception as exc:
    named = type(exc).__name__
print(json.dumps(named))
"""


class StrictUmask:
    """A site holding ephost and ep-good, every user's to read but ep-good's metadata (its
    directory, or its ``entry_points.txt``), as a distribution installed under a strict umask;
    a cache directory of nobody's."""

    def __init__(self, templates: dict[str, Path], shared: Path,
                 monkeypatch: pytest.MonkeyPatch, unreadable: str) -> None:
        if os.geteuid() != 0:
            pytest.skip("privileges can only be dropped when running as root")
        self.site, cache = shared / "site", shared / "cache"
        for name in ("ephost", "ep-good"):
            shutil.copytree(templates[name], self.site, dirs_exist_ok=True)
        cache.mkdir()
        open_to_everyone(shared)
        os.chown(cache, NOBODY, -1)
        monkeypatch.chdir(cache)
        monkeypatch.setenv("HOME", str(cache))
        monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(cache / "compat_plugin"))
        (self.metadata,) = self.site.glob("ep_good-*.dist-info")
        if unreadable == "directory":
            self.locked, self.opened = self.metadata, 0o755
            self.said = (f"cannot read the metadata directory {self.metadata} (permission "
                         "denied): its entry points are left out until it can be read")
        else:
            self.locked, self.opened = self.metadata / "entry_points.txt", 0o644
            self.said = (f"cannot read {self.locked} (permission denied): the entry points of "
                         f"the distribution at {self.metadata} are left out until it can be read")
        self.locked.chmod(0o700 if unreadable == "directory" else 0o600)

    def run(self, uid: int = NOBODY) -> tuple[dict[str, Any], list[str] | str]:
        """What discover() finds as ``uid``, and what importlib-metadata names."""
        code = f"UID = {uid}\n{textwrap.dedent(UNPRIVILEGED)}{NAMED_BY_IMPORTLIB_METADATA}"
        ours, theirs = run_python(code, path=[self.site]).stdout.splitlines()
        return json.loads(ours), json.loads(theirs)


EVERYTHING = ["ephost.plugins.a:plugin", "ep_good.good:plugin", "ep_good.other:plugin"]


@pytest.mark.parametrize("unreadable", ["directory", "entry_points.txt"])
def test_metadata_made_readable_is_read_by_the_next_process(
    templates: dict[str, Path], shared: Path, monkeypatch: pytest.MonkeyPatch, unreadable: str
) -> None:
    """A distribution installed under a strict umask is unreadable to users: importlib-metadata
    names none of its entry points (or raises), compat_plugin says so and leaves them out.
    Making it readable changes no stamp, but its marks, which the index recorded: the next
    process reads the entry again; until then, each takes the index as it is."""
    made = StrictUmask(templates, shared, monkeypatch, unreadable)
    hidden, named = made.run()
    assert hidden["plugins"] == EVERYTHING[:1]
    assert named == "PermissionError" or not [v for v in named if v.startswith("ep_good")]
    assert made.said in hidden["logs"]
    again, _ = made.run()
    assert again["plugins"] == hidden["plugins"]
    assert not [m for m in again["logs"] if m.startswith("reading installed metadata in ")]
    assert (f"the entry points of the distribution at {made.metadata} could not be read when "
            f"{made.site} was indexed: they are left out until it is mended or made readable"
            ) in again["logs"]
    made.locked.chmod(made.opened)  # the administrator's fix
    found, named = made.run()
    assert found["plugins"] == EVERYTHING
    assert {"ep_good.good:plugin", "ep_good.other:plugin"} <= set(named)
    warm, _ = made.run()
    assert warm["plugins"] == found["plugins"]
    assert not [m for m in warm["logs"] if m.startswith("reading installed metadata in ")]


@pytest.mark.parametrize("unreadable", ["directory", "entry_points.txt"])
def test_an_index_another_user_could_not_read_all_of_is_read_again_by_one_who_can(
    templates: dict[str, Path], shared: Path, monkeypatch: pytest.MonkeyPatch, unreadable: str
) -> None:
    """Whether metadata can be read depends on who reads it; the index does not."""
    made = StrictUmask(templates, shared, monkeypatch, unreadable)
    assert made.run()[0]["plugins"] == EVERYTHING[:1]
    root, _ = made.run(0)  # the same index, which root may read all of
    assert root["plugins"] == EVERYTHING
    assert f"{made.site} for entry points of ephost.plugins" in " ".join(root["logs"])


def test_a_copy_hidden_for_being_unreadable_is_read_once_it_can_be(
    templates: dict[str, Path], shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy nobody may not read looks as if it had no metadata, so a readable copy hides
    it; made readable, it has metadata and may come first: the index is read again."""
    made = StrictUmask(templates, shared, monkeypatch, "directory")
    made.metadata.chmod(0o755)
    second = made.site / "ep_good-2.0.dist-info"
    shutil.copytree(made.metadata, second)
    metadata_file = second / "METADATA"
    metadata_file.write_text(metadata_file.read_text().replace("Version: 1.0", "Version: 2.0"))
    second.chmod(0o700)
    hidden, _ = made.run()
    assert hidden["plugins"] == EVERYTHING  # from the readable copy
    again, _ = made.run()
    assert not [m for m in again["logs"] if m.startswith("reading installed metadata in ")]
    assert (f"the entry points of the distribution at {second} could not be read when "
            f"{made.site} was indexed: they are left out until it is mended or made readable"
            ) in again["logs"]
    second.chmod(0o755)
    found, _ = made.run()
    assert [m for m in found["logs"] if m.startswith(f"reading installed metadata in {made.site}")]


def test_a_user_who_may_not_look_into_a_distribution_of_an_administrator_s_index_keeps_one(
    templates: dict[str, Path], shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index beside the entry, written by root, names a distribution nobody may not look
    into: nobody reads the entry once, keeps that in their own cache, and uses it after."""
    made = StrictUmask(templates, shared, monkeypatch, "directory")
    made.site.chmod(0o755)  # root may write beside it; nobody may not
    root, _ = made.run(0)
    assert root["plugins"] == EVERYTHING
    assert beside(made.site).exists()
    first, _ = made.run()
    assert first["plugins"] == EVERYTHING[:1]
    assert [m for m in first["logs"] if m.startswith("reading installed metadata in ")]
    again, _ = made.run()
    assert again["plugins"] == EVERYTHING[:1]
    assert not [m for m in again["logs"] if m.startswith("reading installed metadata in ")]


def test_entry_points_that_did_not_parse_are_read_again_once_mended_in_place(
    sites: Sites, debug: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mending an ``entry_points.txt`` in place changes no stamp an index records for a
    distribution it could not read, but its inode change time, which the index records: the
    entry is read again then, and only then."""
    site = sites.make("site", "ephost", "ep-good")
    (declared,) = site.glob("ep_good-*.dist-info/entry_points.txt")
    text = declared.read_bytes()
    declared.write_bytes(b"\xff" + text)  # not UTF-8: importlib-metadata cannot read it
    everything = ["ephost.plugins.a:plugin", "ep_good.good:plugin", "ep_good.other:plugin"]
    assert [r.qualified_name for r in discover(package()).plugins] == everything[:1]
    assert [m for m in problems(debug) if m.startswith(
        f"ignoring the entry points of the distribution at {declared.parent} until it is "
        "mended: UnicodeDecodeError")]
    assert [unread[0] for unread in json.loads(beside(site).read_bytes())["unread"]] == [
        str(declared.parent)]
    (state,) = [c for c in cache_states(package()) if c.place == str(beside(site))]
    assert (state.current, state.why) == (
        True, f"could not read the entry points of {declared.parent}")
    assert main(["cache", "info", "--wide", "ephost.plugins"]) == 0
    assert f"yes ({state.why})" in capsys.readouterr().out
    # Nothing changed: the next process takes the index as it is, and says what it lacks.
    written = beside(site).stat()
    sites.fresh()
    debug.clear()
    assert [r.qualified_name for r in discover(package()).plugins] == everything[:1]
    assert [r.qualified_name for r in discover(package()).plugins] == everything[:1]
    assert reads(debug) == []
    lacks = (f"the entry points of the distribution at {declared.parent} could not be read when "
             f"{site} was indexed: they are left out until it is mended or made readable")
    assert problems(debug).count(lacks) == 1  # once per process
    assert (beside(site).stat().st_ino, beside(site).stat().st_mtime_ns) == (
        written.st_ino, written.st_mtime_ns)
    declared.write_bytes(text)  # seen by this process's next call already
    (state,) = [c for c in cache_states(package()) if c.place == str(beside(site))]
    assert (state.current, state.why) == (
        False, f"{declared.parent} changed since its entry points could not be read")
    assert [r.qualified_name for r in discover(package()).plugins] == everything
    assert json.loads(beside(site).read_bytes())["unread"] == []
    sites.fresh()
    debug.clear()
    assert [r.qualified_name for r in discover(package()).plugins] == everything
    assert reads(debug) == []


def test_entry_points_mended_just_after_a_failed_read_are_not_recorded_as_unread(
    sites: Sites, debug: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure is confirmed by a second read, the marks taken before it: a file mended in
    between is read, and nothing is recorded against it."""
    site = sites.make("site", "ephost", "ep-good")
    (declared,) = site.glob("ep_good-*.dist-info/entry_points.txt")
    text = declared.read_bytes()
    declared.write_bytes(b"\xff" + text)
    attempt = _metadata._attempt

    def mended_after_a_failure(*args: Any) -> Any:
        outcome = attempt(*args)
        if isinstance(outcome, _metadata._Failed):
            declared.write_bytes(text)  # the administrator's fix lands between the two reads
        return outcome

    monkeypatch.setattr(_metadata, "_attempt", mended_after_a_failure)
    found = [r.qualified_name for r in discover(package()).plugins]
    assert found == ["ephost.plugins.a:plugin", "ep_good.good:plugin", "ep_good.other:plugin"]
    assert json.loads(beside(site).read_bytes())["unread"] == []
    assert problems(debug) == []


def test_a_hidden_copy_that_does_not_parse_leaves_the_index_complete(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    """A later copy without metadata is hidden by the copy with it: whatever its
    ``entry_points.txt`` holds would not count, so the index need not be read again for it."""
    site = sites.make("site", "ephost", "ep-good")
    hidden = site / "ep_good-0.9.dist-info"
    hidden.mkdir()
    (hidden / "entry_points.txt").write_bytes(b"\xff[ephost.plugins]\n")
    found = [r.qualified_name for r in discover(package()).plugins]
    assert found == ["ephost.plugins.a:plugin", "ep_good.good:plugin", "ep_good.other:plugin"]
    assert json.loads(beside(site).read_bytes())["unread"] == []


# -- The index as a cache: damaged, forged ----------------------------------------------------

IndexDamage = Callable[[dict[str, Any], bytes, Path], bytes]


def sealed(document: dict[str, Any]) -> bytes:
    """An index's text as the module docstring describes it: compact JSON whose last member,
    ``checksum``, is the CRC-32 of the text before it with the closing brace."""
    fields = {key: value for key, value in document.items() if key != "checksum"}
    body = json.dumps(fields, separators=(",", ":")).encode("ascii")
    return body[:-1] + b',"checksum":' + str(zlib.crc32(body)).encode() + b"}"


def _changed(**changes: object) -> IndexDamage:
    """Fields replaced, the checksum made to match: only the fields' shapes can tell."""

    def damage(document: dict[str, Any], raw: bytes, marker: Path) -> bytes:
        if "checksum" in changes:
            return json.dumps({**document, **changes}).encode()
        return sealed({**document, **changes})

    return damage


def _each(field: str, change: Callable[[Any], object]) -> IndexDamage:
    """Change every item of a list field, or every value of an object field (the checksum made
    to match)."""

    def damage(document: dict[str, Any], raw: bytes, marker: Path) -> bytes:
        value = document[field]
        changed = ({k: change(v) for k, v in value.items()} if isinstance(value, dict)
                   else [change(item) for item in value])
        return sealed({**document, field: changed})

    return damage


class RunsCodeWhenUnpickled:
    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (exec, (self.source,))


def _pickle(document: dict[str, Any], raw: bytes, marker: Path) -> bytes:
    return pickle.dumps(RunsCodeWhenUnpickled(f"open({str(marker)!r}, 'w').write('x')"))


INDEX_DAMAGES = [
    pytest.param(lambda d, raw, m: random.Random(5).randbytes(4096), id="random-bytes"),
    pytest.param(lambda d, raw, m: raw[: len(raw) // 2], id="truncated"),
    pytest.param(lambda d, raw, m: b"", id="empty"),
    pytest.param(lambda d, raw, m: b"[]", id="list"),
    pytest.param(lambda d, raw, m: b"[" * 100_000, id="deep-list"),
    pytest.param(_pickle, id="pickle"),
    pytest.param(_changed(schema=_entrypoints.SCHEMA + 1), id="future-schema"),
    pytest.param(_changed(schema=str(_entrypoints.SCHEMA)), id="schema-string"),
    pytest.param(_changed(schema=True), id="schema-true"),
    pytest.param(_changed(interpreter="cpython-27"), id="other-interpreter"),
    pytest.param(_changed(group="other.plugins"), id="other-group"),
    pytest.param(_changed(entry="/elsewhere"), id="other-entry"),
    pytest.param(_changed(stamp="x"), id="stamp-string"),
    pytest.param(_changed(stamp=[1]), id="stamp-short"),
    pytest.param(_changed(names=["ep-good"]), id="names-list"),
    pytest.param(_changed(distributions={"x": 1}), id="distributions-object"),
    pytest.param(_each("distributions", lambda row: row[:7]), id="distribution-short"),
    pytest.param(_each("distributions", lambda row: [*row[:4], "stamp", *row[5:]]),
                 id="distribution-stamp-string"),
    pytest.param(_each("distributions", lambda row: [*row[:5], 1, *row[6:]]),
                 id="distribution-has-metadata-integer"),
    pytest.param(_each("distributions", lambda row: [*row[:6], [e[:3] for e in row[6]],
                                                     row[7]]), id="declared-short"),
    pytest.param(_changed(gates={"ep-good": 1}), id="gates-wrong-shape"),
    pytest.param(_changed(shadowed=[[1]]), id="shadowed-wrong-shape"),
    pytest.param(_changed(scans=[]), id="scans-list"),
    pytest.param(_each("scans", lambda scan: scan[:3]), id="scan-short"),
    pytest.param(_each("scans", lambda scan: [scan[0], True, *scan[2:]]), id="scan-mtime-true"),
    pytest.param(_each("scans", lambda scan: [*scan[:4], ["optdep"]]), id="scan-miss-name-only"),
    pytest.param(_each("scans", lambda scan: [*scan[:4], [["optdep", 1]]]),
                 id="scan-miss-importer-integer"),
    pytest.param(_changed(checksum="0"), id="checksum-string"),
    pytest.param(_changed(unread=[["/x", "yes", None, None]]), id="unread-denied-string"),
    pytest.param(_changed(unread=[["/x", True, [1, 2], None]]), id="unread-marks-short"),
    # Of the documented shape, naming a path no file system takes.
    pytest.param(_changed(unread=[["/x\u0000y", True, None, None]]), id="unread-null-byte"),
]


@pytest.mark.parametrize("damage", INDEX_DAMAGES)
def test_damaged_entry_point_index_is_ignored_and_rebuilt(
    sites: Sites, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: IndexDamage
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    assert tags("ITwo") == ["other"]
    index = beside(site)
    raw = index.read_bytes()
    good = json.loads(raw)
    marker = tmp_path / "unpickled"

    damaged = damage(good, raw, marker)
    assert damaged != raw
    index.write_bytes(damaged)
    sites.fresh()
    caplog.clear()

    assert tags() == ["a", "good"]
    assert tags("ITwo") == ["other"]
    assert problems(caplog) == []
    assert not marker.exists()
    assert json.loads(index.read_bytes()) == good
    assert [p.name for p in index.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("old", "new"), [
    pytest.param(b'"ep_good.good"', b'"ep_good.goof"', id="entry-point-module"),
    pytest.param(b"\\nep-good\\n", b"\\nep-gooe\\n", id="names"),
    pytest.param(b'"ep-good","ep-good"', b'"ep-gooe","ep-good"', id="distribution-key"),
    pytest.param(b'"checksum":', b'"checksum":1', id="checksum"),
])
def test_a_byte_changed_anywhere_in_the_index_is_caught(
    sites: Sites, caplog: pytest.LogCaptureFixture, old: bytes, new: bytes
) -> None:
    """A damage that leaves the index JSON of the right shapes is caught by its checksum:
    the index is rebuilt, no plugin goes missing or comes from a copy that counts not."""
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    raw = beside(site).read_bytes()
    assert raw.count(old) == 1, old
    beside(site).write_bytes(raw.replace(old, new))
    for _ in range(2):
        sites.fresh()
        caplog.clear()
        assert tags() == ["a", "good"]
        assert problems(caplog) == []
    assert json.loads(beside(site).read_bytes()) == json.loads(raw)


def test_an_index_grown_larger_than_any_index_is_not_read(
    sites: Sites, caplog: pytest.LogCaptureFixture
) -> None:
    """Still of the documented shape (a member more is passed over) and sealed, but every
    process would read it whole."""
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    raw = beside(site).read_bytes()
    beside(site).write_bytes(sealed({**json.loads(raw), "padding": " " * LARGEST}))
    sites.fresh()
    caplog.clear()
    assert tags() == ["a", "good"]
    assert problems(caplog) == []
    assert beside(site).read_bytes() == raw  # rebuilt


def _flip(details: str) -> str:
    """``details`` with one character of each interface name changed: still JSON."""
    return details.replace("IOne", "IOnE")


@pytest.mark.parametrize("change", [
    pytest.param(lambda details: "not json", id="details-not-json"),
    pytest.param(lambda details: "[]", id="details-wrong-shape"),
    pytest.param(_flip, id="details-interface-name-changed"),
])
def test_damaged_scan_in_the_index_hides_no_plugin(
    sites: Sites, change: Callable[[str], str]
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    document = json.loads(beside(site).read_bytes())
    for scan in document["scans"].values():
        scan[3] = change(scan[3])
    beside(site).write_text(json.dumps(document))  # the checksum no longer matches
    sites.fresh()
    assert tags() == ["a", "good"]


def forge(site: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the index of ``site`` with ``change``, and make it consistent again: its
    checksum matches, so that only what it claims can give it away."""
    document = json.loads(beside(site).read_bytes())
    change(document)
    beside(site).write_bytes(sealed(document))


def lying_index(sites: Sites) -> Path:
    """Index ep-good's ``good`` entry point, then make its scan claim a second plugin,
    ``missing``, that the module does not define."""
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]

    def claim_more(document: dict[str, Any]) -> None:
        (scan,) = [s for key, s in document["scans"].items() if "\0good\0" in key]
        details = json.loads(scan[3])
        [[_, _, provided, interfaces]] = details[1]
        details[1].append(["missing", None, provided, interfaces])
        scan[3] = json.dumps(details, separators=(",", ":"))

    forge(site, claim_more)
    sites.fresh()
    return site


def test_index_scan_claiming_a_plugin_the_module_lacks_is_not_believed(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    lying_index(sites)
    assert tags() == ["a", "good"]
    (warning,) = problems(debug)
    assert "ep_good.good:missing" in warning
    assert "ep-good" in warning


def test_index_scan_claiming_a_plugin_the_module_lacks_is_repaired(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    lying_index(sites)
    assert tags() == ["a", "good"]
    assert len(problems(debug)) == 1
    debug.clear()
    sites.fresh()
    assert tags() == ["a", "good"]
    assert problems(debug) == []


def test_entry_points_edited_in_place_are_read_again_before_any_import(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    declared = site / "ep_good-1.0.dist-info" / "entry_points.txt"
    before = site.stat().st_mtime_ns
    declared.write_text(declared.read_text().replace("good = ep_good.good:plugin\n", ""))
    assert site.stat().st_mtime_ns == before  # the entry's own stamp cannot tell
    sites.fresh()
    debug.clear()
    assert tags() == ["a"]
    assert "ep_good.good" not in sys.modules
    assert reads(debug) == [str(site)]
    assert [r for r in debug.records if "changed in place" in r.getMessage()]
    assert "\0good\0" not in "".join(json.loads(beside(site).read_bytes())["scans"])


def test_forged_index_naming_an_undeclared_module_causes_no_import(
    sites: Sites, tmp_path: Path
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    marker = tmp_path / "imported"
    (site / "undeclared.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    assert tags() == ["a", "good"]

    def add_entry_point(document: dict[str, Any]) -> None:
        (row,) = document["distributions"]
        row[6].append(["sneaky", "undeclared", "undeclared", None])
        row[4] = [row[4][0] + 1, row[4][1]]  # what it says of entry_points.txt is not so

    forge(site, add_entry_point)
    sites.fresh()
    assert tags() == ["a", "good"]
    assert not marker.exists()
    assert "undeclared" not in sys.modules


# -- Faults of installed metadata ---------------------------------------------------------------

BROKEN_METADATA = {
    "no-name": b"Metadata-Version: 2.1\nVersion: 1.0\n",
    "empty-name": b"Metadata-Version: 2.1\nName:\nVersion: 1.0\n",
    "no-version": b"Metadata-Version: 2.1\nName: ep-broken\n",
    "not-headers": b"this is not a core metadata file\n",
    "empty-file": b"",
    "undecodable-name": b"Metadata-Version: 2.1\nName: ep-\xff\xfebroken\nVersion: 1.0\n",
}


@pytest.mark.parametrize("metadata", list(BROKEN_METADATA))
def test_distribution_with_broken_metadata_counts_and_is_named(
    sites: Sites, debug: pytest.LogCaptureFixture, metadata: str
) -> None:
    # importlib-metadata tells distributions on the file system apart by their metadata
    # directories' names, and lists the entry points of each: so does compat_plugin.
    site = sites.make("site", "ephost", "ep-good", "ep-broken")
    broken = site / "ep_broken-1.0.dist-info"
    (broken / "METADATA").write_bytes(BROKEN_METADATA[metadata])

    assert tags() == ["a", "brokenplugin", "good"]
    (warning,) = problems(debug)
    assert str(broken) in warning
    assert "its entry points count" in warning
    debug.clear()
    assert tags() == ["a", "brokenplugin", "good"]
    assert problems(debug) == []

    # A later process reads the index, and says nothing.
    sites.fresh()
    assert tags() == ["a", "brokenplugin", "good"]
    assert problems(debug) == []
    recorded = json.loads(beside(site).read_bytes())
    assert sorted(row[0] for row in recorded["distributions"]) == ["ep-broken", "ep-good"]


@pytest.mark.parametrize("ahead", ["empty", "entry-points-only"])
def test_copy_without_metadata_ahead_of_a_good_copy(
    sites: Sites, debug: pytest.LogCaptureFixture, ahead: str
) -> None:
    good = sites.make("site", "ephost", "ep-dup") / "ep_dup-1.0.dist-info"
    empty = sites.make("front") / "ep_dup-1.0.dist-info"
    empty.mkdir()
    if ahead == "entry-points-only":
        (empty / "entry_points.txt").write_text(f"[{GROUP}]\nghost = ep_dup.ghost\n")

    for _ in ("cold", "warm"):
        assert tags() == ["a", "dup"]
        found = discover(package(), importlib.import_module("ephost.ifaces").IOne)
        assert [r.origin.path for r in found.plugins] == [
            str(good.parent / "ephost" / "plugins"), str(good)]
        assert found.errors == ()
        # A copy without metadata yields to one with it; listed if it declares entry points.
        assert [(s.origin.path, s.reason) for s in found.skipped] == (
            [(str(empty), f"shadowed by {good}")] if ahead == "entry-points-only" else [])
        assert problems(debug) == []
        sites.fresh()


def test_copy_without_metadata_is_named_in_the_log(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    sites.make("site", "ephost", "ep-dup")
    empty = sites.make("front") / "ep_dup-1.0.dist-info"
    empty.mkdir()
    assert tags() == ["a", "dup"]
    (record,) = [r for r in debug.records if str(empty) in r.getMessage()]
    assert record.levelname == "DEBUG"
    assert "without metadata" in record.getMessage()


def test_unreadable_copy_ahead_of_a_good_copy_comes_first_and_says_so(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    """The first copy on sys.path is the one ``import`` uses; a METADATA without a name does
    not make it a copy without metadata (importlib-metadata lists its entry points)."""
    good = sites.make("site", "ephost", "ep-dup") / "ep_dup-1.0.dist-info"
    broken = sites.make("front", "ep-dup") / "ep_dup-1.0.dist-info"
    (broken / "METADATA").write_bytes(BROKEN_METADATA["no-name"])

    assert tags() == ["a", "dup"]
    (warning,) = problems(debug)
    assert str(broken) in warning
    found = discover(package())
    assert [r.origin.path for r in found.plugins if r.origin.kind == "entry-point"] == [
        str(broken)]
    (skip,) = found.skipped
    assert (skip.origin.path, skip.reason) == (str(good), f"shadowed by {broken}")


def test_object_entry_point_naming_a_missing_attribute(
    sites: Sites, debug: pytest.LogCaptureFixture
) -> None:
    site = sites.make("site", "ephost", "ep-attrs")
    missing = {"absent", "holder.absent", "nothing.attr"}
    for run_number in range(2):
        assert tags() == ["a", "present"]
        assert {r.levelname for r in debug.records if r.levelname in PROBLEMS} == {"WARNING"}
        named = {m.split(" from ")[0].partition(":")[2] for m in problems(debug)}
        assert named == missing, run_number
        assert all("ep-attrs" in message for message in problems(debug))
        debug.clear()
        # The same process again: the same plugins, nothing said twice.
        assert tags() == ["a", "present"]
        assert problems(debug) == []
        errors = discover(package()).errors
        assert {e.target.partition(":")[2] for e in errors} == missing
        assert {type(e.error) for e in errors} == {AttributeError}
        # Only what could be taken is kept: failures are tried again by the next process.
        assert len(json.loads(beside(site).read_bytes())["scans"]) == 1
        sites.fresh()


def test_index_copied_with_its_entry_describes_only_the_original(
    sites: Sites, monkeypatch: pytest.MonkeyPatch, debug: pytest.LogCaptureFixture
) -> None:
    site = sites.make("site", "ephost", "ep-good")
    assert tags() == ["a", "good"]
    copy = Path(shutil.copytree(site, site.parent / "copy", symlinks=True))  # dates kept
    assert copy.stat().st_mtime_ns == site.stat().st_mtime_ns
    monkeypatch.setattr(sys, "path", [str(copy) if e == str(site) else e for e in sys.path])
    sites.fresh()
    debug.clear()
    found = discover(package())
    assert {r.origin.path for r in found.plugins if r.origin.kind == "entry-point"} == {
        str(copy / "ep_good-1.0.dist-info")}
    assert reads(debug) == [str(copy)]
