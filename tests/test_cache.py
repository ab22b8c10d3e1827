"""The scan cache: its format, what it trusts, where it is written, and when.

Everything here runs against real files: plugin packages written to disk, caches written by the
library itself and then damaged or edited, and fresh interpreters standing in for later
processes.  Runs as an unprivileged user are made by a child interpreter that gives up root
before it touches the plugin package.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
import logging
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_plugin import _cache, _resolver, getPlugins
from compat_plugin._cache import encode, read_entries, valid_entry, write_atomic
from compat_plugin._entrypoints import build_index, path_stamps

from .conftest import INTERFACES, PLUGINS_INIT, PluginTree, run_python

TAG = sys.implementation.cache_tag
CACHE_NAME = f"compat_plugin.{TAG}.json"
NOBODY = 65534
IPLUGIN_NAMES = ["compat_plugin.IPlugin", "twisted.plugin.IPlugin"]

_serial = itertools.count()


# -- building plugin packages ----------------------------------------------------------------


def plugin_source(tag: str, *interfaces: str) -> str:
    """A plugin module whose one plugin, ``Plugin``, has ``tag`` and provides ``interfaces``.

    Importing it appends its short name to ``{pkg}.counter.imports``; ``{pkg}`` is left for
    the caller (PluginTree.write) to fill in.
    """
    names = ", ".join(interfaces or ("ITestPlugin",))
    return (
        f'"""Module {tag}."""\n'
        "from zope.interface import provider\n"
        "from compat_plugin import IPlugin\n"
        f"from {{pkg}}.ifaces import {names}\n"
        "from {pkg} import counter\n"
        "\n"
        'counter.imports.append(__name__.rpartition(".")[2])\n'
        "\n"
        f"@provider(IPlugin, {names})\n"
        "class Plugin:\n"
        f'    tag = "{tag}"\n'
    )


@pytest.fixture
def ptree(tree: PluginTree) -> PluginTree:
    """A tree whose plugin ``a`` provides ITestPlugin and ``b`` ITestPlugin2."""
    tree.write("counter.py", "imports = []\n")
    tree.plugin("a", plugin_source("a", "ITestPlugin"))
    tree.plugin("b", plugin_source("b", "ITestPlugin2"))
    return tree


def tags(tree: PluginTree, interface: str) -> list[str]:
    """The tags of what getPlugins yields for ``interface`` (a name in the tree's ifaces)."""
    found = getPlugins(getattr(tree.ifaces(), interface), tree.package())
    return [plugin.tag for plugin in found]


def loaded(package: str) -> set[str]:
    """Short names of the plugin modules of ``package`` currently imported."""
    prefix = f"{package}."
    return {name[len(prefix) :] for name in sys.modules if name.startswith(prefix)}


def imports(tree: PluginTree) -> list[str]:
    """The plugin modules imported since the tree's counter module was (re)imported."""
    counter = importlib.import_module(f"{tree.name}.counter")
    found: list[str] = counter.imports
    return list(found)


def primary(tree: PluginTree) -> Path:
    return tree.plugins_dir / "__pycache__" / CACHE_NAME


def fallback_name(directory: Path | str) -> str:
    digest = hashlib.sha256(os.path.abspath(directory).encode("utf-8")).hexdigest()
    return f"{digest[:32]}.{TAG}.json"


def user_cache() -> Path:
    return Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"])


def files_in(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def directory_caches(root: Path) -> list[Path]:
    """The plugin-directory caches in the user cache ``root`` (its entry-point indexes aside)."""
    return [path for path in files_in(root) if path.parent != root / "entry-points"]


def snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    """Every file below ``root`` with what a rewrite would change."""
    return {path: identity(path) for path in files_in(root)}


def installed_environment() -> str:
    """The digest of the installed distributions this process sees."""
    path = [entry for entry in sys.path if isinstance(entry, str)]
    return build_index("unused.plugins", path, path_stamps(path), None).environment


def identity(path: Path) -> tuple[int, int]:
    """What changes when a file is rewritten, atomically or not."""
    st_ = path.stat()
    return st_.st_ino, st_.st_mtime_ns


def disk_stamps(directory: Path) -> dict[str, list[Any]]:
    """``{module: [filename, mtime_ns, size]}`` for the ``.py`` modules in ``directory``."""
    stamps: dict[str, list[Any]] = {}
    for path in directory.glob("*.py"):
        if path.name != "__init__.py":
            info = path.stat()
            stamps[path.stem] = [path.name, info.st_mtime_ns, info.st_size]
    return stamps


def load_cache(path: Path, directory: Path | str, package: str) -> dict[str, Any]:
    """Parse the cache file at ``path`` and check it is a complete, well-formed one."""
    raw = path.read_bytes()
    raw.decode("ascii")
    document: dict[str, Any] = json.loads(raw)
    assert type(document) is dict
    assert type(document["schema"]) is int
    assert document["schema"] == _cache.SCHEMA
    assert document["interpreter"] == TAG
    assert document["directory"] == os.path.abspath(directory)
    assert document["package"] == package
    assert type(document["environment"]) is str
    assert type(document["modules"]) is dict
    for name, entry in document["modules"].items():
        assert valid_entry(entry), (name, entry)
    return document


def assert_fresh_cache(path: Path, directory: Path, package: str) -> dict[str, Any]:
    """The cache at ``path`` describes exactly the modules now in ``directory``."""
    document = load_cache(path, directory, package)
    stamps = {name: entry[:3] for name, entry in document["modules"].items()}
    assert stamps == disk_stamps(directory)
    return document


def noisy(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def open_up(base: Path) -> None:
    """Directories 0755 and files 0644 below (and including) ``base``."""
    base.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def remove_tree(base: Path) -> None:
    for dirpath, dirnames, _ in os.walk(base):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    shutil.rmtree(base)


# -- child interpreters ----------------------------------------------------------------------

_CHILD_HEADER = """
import importlib, json, logging, os, sys
# The working directory is not part of the scenario (and its stamp would make the
# entry-point index of one child differ from the next).
sys.path[:] = [entry for entry in sys.path if entry != ""]
import compat_plugin
from compat_plugin import getPlugins

assert compat_plugin.__file__.startswith(@LIBRARY@), compat_plugin.__file__

if @DROP@ and os.geteuid() == 0:
    # The interpreter may live where the unprivileged user cannot reach it, so everything the
    # run needs from there is loaded first, by reading the installed metadata once for a group
    # nothing uses; the plugin package is imported only after privileges are dropped.
    import hashlib, keyword, zipfile, zipimport
    import packaging.requirements, packaging.utils
    from compat_plugin import _entrypoints
    _path = [entry for entry in sys.path if isinstance(entry, str)]
    _entrypoints.build_index("unused.plugins", _path, _entrypoints.path_stamps(_path), None)
    os.setgroups([])
    os.setgid(@ID@)
    os.setuid(@ID@)

LOGS = []

class _Keep(logging.Handler):
    def emit(self, record):
        LOGS.append([record.levelname, record.getMessage()])

_logger = logging.getLogger("compat_plugin")
_logger.addHandler(_Keep())
_logger.setLevel(logging.DEBUG)

package = importlib.import_module("@PKG@.plugins")
ifaces = importlib.import_module("@PKG@.ifaces")
counter = importlib.import_module("@PKG@.counter")

def tags(interface):
    return [plugin.tag for plugin in getPlugins(getattr(ifaces, interface), package)]

def loaded():
    prefix = package.__name__ + "."
    return sorted(name[len(prefix):] for name in sys.modules if name.startswith(prefix))

out = {"uid": os.geteuid(), "gid": os.getegid(), "groups": os.getgroups()}
"""

_CHILD_FOOTER = """
out["logs"] = LOGS
out["imports"] = list(counter.imports)
print(json.dumps(out))
"""


def run_child(
    package: str,
    body: str,
    *,
    path: list[str],
    env: dict[str, str] | None = None,
    drop_to: int | None = None,
) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter and return the ``out`` dict it fills in.

    The body sees ``package``/``ifaces``/``counter`` (the modules of the tree ``package``),
    ``tags(interface_name)``, ``loaded()`` and ``out``; ``out["logs"]`` gets every record of
    the ``compat_plugin`` logger.  With ``drop_to``, a child started as root becomes that user
    (uid, gid, no supplementary groups) before importing the tree.
    """
    header = (
        _CHILD_HEADER.replace("@DROP@", str(drop_to is not None))
        .replace("@ID@", str(drop_to))
        .replace("@PKG@", package)
        .replace("@LIBRARY@", repr(os.path.dirname(_cache.__file__)))
    )
    code = header + textwrap.dedent(body) + _CHILD_FOOTER
    result = run_python(code, path=path, env=env)
    document: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def levels(out: dict[str, Any]) -> set[str]:
    return {level for level, _ in out["logs"]}


def unwritable_notes(out: dict[str, Any]) -> list[list[str]]:
    return [record for record in out["logs"] if "not writable" in record[1]]


# -- format ---------------------------------------------------------------------------------------


def test_cache_is_plain_json_beside_the_plugins(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]

    assert ptree.cache_files() == [primary(ptree)]
    document = assert_fresh_cache(primary(ptree), ptree.plugins_dir, ptree.plugins_name)
    assert document["interpreter"] == sys.implementation.cache_tag
    assert document["environment"] == installed_environment()
    assert set(document["modules"]) == {"a", "b"}
    filename, _, _, description, plugins = document["modules"]["a"]
    assert filename == "a.py"
    assert description == "Module a."
    [[attribute, _, provided, interfaces]] = plugins
    assert attribute == "Plugin"
    assert provided == ["compat_plugin.IPlugin", f"{ptree.name}.ifaces.ITestPlugin"]
    assert f"{ptree.name}.ifaces.ITestPlugin" in interfaces
    assert f"{ptree.name}.ifaces.ITestPlugin2" not in interfaces

    everything = [*ptree.root.rglob("*"), *user_cache().rglob("*")]
    assert not [path for path in everything if path.name == "dropin.cache"]
    assert directory_caches(user_cache()) == []


# -- damaged caches -------------------------------------------------------------------------------

Damage = Callable[[dict[str, Any], bytes], bytes]


def _dumps(document: object) -> bytes:
    return json.dumps(document).encode("ascii")


def _header(**changes: object) -> Damage:
    """The valid document with top-level keys replaced (or removed, for ``...``)."""

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        changed = copy.deepcopy(document)
        for key, value in changes.items():
            if value is ...:
                del changed[key]
            else:
                changed[key] = value
        return _dumps(changed)

    return damage


def _entry(change: Callable[[list[Any]], object]) -> Damage:
    """The valid document with the entry of ``a`` (which provides ITestPlugin) replaced.

    Where the damaged entry still has a usable shape it also claims no plugins, so if it were
    trusted, ``a`` would go missing from the results.
    """

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        changed = copy.deepcopy(document)
        changed["modules"]["a"] = change(copy.deepcopy(document["modules"]["a"]))
        return _dumps(changed)

    return damage


def _modules(value: object) -> Damage:
    return _header(modules=value)


def _raw(data: bytes) -> Damage:
    return lambda document, raw: data


def _deep_modules(document: dict[str, Any], raw: bytes) -> bytes:
    header = {key: value for key, value in document.items() if key != "modules"}
    text = json.dumps({**header, "modules": "@"})
    return text.replace('"@"', '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()


def _nested(depth: int) -> object:
    value: object = []
    for level in range(depth):
        value = [value, {"k": value}] if level % 7 == 0 else [value]
    return value


DAMAGES = [
    pytest.param(_raw(random.Random(1).randbytes(4096)), id="random-bytes"),
    pytest.param(_raw(b"\x00" * 64), id="nul-bytes"),
    pytest.param(_raw(b"\xff\xfe{\x00"), id="bad-utf16"),
    pytest.param(lambda document, raw: raw[: len(raw) // 2], id="truncated-half"),
    pytest.param(lambda document, raw: raw[:-1], id="truncated-last-byte"),
    pytest.param(_raw(b""), id="empty"),
    pytest.param(_raw(b"   \n"), id="whitespace"),
    pytest.param(_raw(b"[]"), id="list"),
    pytest.param(_raw(b"42"), id="number"),
    pytest.param(_raw(b'"text"'), id="string"),
    pytest.param(_raw(b"null"), id="null"),
    pytest.param(_raw(b"NaN"), id="nan"),
    pytest.param(_raw(b"1" * 5000), id="huge-integer"),
    pytest.param(_raw(b"{}"), id="empty-object"),
    pytest.param(_raw(b"[" * 100_000), id="deep-list"),
    pytest.param(_raw(b'{"a":' * 100_000), id="deep-object"),
    pytest.param(_raw(b"[" * 100_000 + b"]" * 100_000), id="deep-list-closed"),
    pytest.param(_deep_modules, id="deep-modules"),
    pytest.param(_header(schema=0), id="schema-0"),
    pytest.param(_header(schema=2), id="schema-future"),
    pytest.param(_header(schema="1"), id="schema-string"),
    pytest.param(_header(schema=True), id="schema-true"),
    pytest.param(_header(schema=None), id="schema-null"),
    pytest.param(_header(schema=...), id="schema-missing"),
    pytest.param(_header(interpreter="cpython-27"), id="other-interpreter"),
    pytest.param(_header(interpreter=...), id="interpreter-missing"),
    pytest.param(_header(directory="/somewhere/else"), id="other-directory"),
    pytest.param(_header(directory=...), id="directory-missing"),
    pytest.param(_header(package="other.plugins"), id="other-package"),
    pytest.param(_header(package=None), id="package-null"),
    pytest.param(_header(environment="0" * 32), id="other-environment"),
    pytest.param(_header(environment=None), id="environment-null"),
    pytest.param(_header(environment=...), id="environment-missing"),
    pytest.param(_modules(...), id="modules-missing"),
    pytest.param(_modules([]), id="modules-list"),
    pytest.param(_modules("a"), id="modules-string"),
    pytest.param(_modules(None), id="modules-null"),
    pytest.param(_modules({"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}}), id="modules-garbage"),
    pytest.param(_entry(lambda e: None), id="entry-null"),
    pytest.param(_entry(lambda e: dict(zip("fmsdp", e))), id="entry-object"),
    pytest.param(_entry(lambda e: "a.py"), id="entry-string"),
    pytest.param(_entry(lambda e: [7, e[1], e[2], e[3], []]), id="filename-int"),
    pytest.param(_entry(lambda e: [e[0], str(e[1]), e[2], e[3], []]), id="mtime-string"),
    pytest.param(_entry(lambda e: [e[0], None, e[2], e[3], []]), id="mtime-null"),
    pytest.param(_entry(lambda e: [e[0], e[1], float(e[2]), e[3], []]), id="size-float"),
    pytest.param(_entry(lambda e: [e[0], e[1], str(e[2]), e[3], []]), id="size-string"),
    pytest.param(_entry(lambda e: [e[0], e[1], e[2], 5, []]), id="docstring-int"),
    pytest.param(_entry(lambda e: [e[0], e[1], e[2], ["doc"], []]), id="docstring-list"),
    pytest.param(_entry(lambda e: [*e[:4], {}]), id="plugins-object"),
    pytest.param(_entry(lambda e: [*e[:4], "Plugin"]), id="plugins-string"),
    pytest.param(_entry(lambda e: [*e[:4], [None]]), id="plugin-null"),
    pytest.param(_entry(lambda e: [*e[:4], [e[4][0][:3]]]), id="plugin-missing-field"),
    pytest.param(_entry(lambda e: [*e[:4], [[*e[4][0], "x"]]]), id="plugin-extra-field"),
    pytest.param(_entry(lambda e: [*e[:4], [[1, *e[4][0][1:]]]]), id="plugin-attribute-int"),
    pytest.param(_entry(lambda e: [*e[:4], [[e[4][0][0], 3, *e[4][0][2:]]]]), id="plugin-doc-int"),
    pytest.param(
        _entry(lambda e: [*e[:4], [[*e[4][0][:2], [1, 2], e[4][0][3]]]]), id="provided-ints"
    ),
    pytest.param(
        _entry(lambda e: [*e[:4], [[*e[4][0][:3], "compat_plugin.IPlugin"]]]),
        id="interfaces-string",
    ),
    pytest.param(_entry(lambda e: [*e[:4], [[*e[4][0][:3], [True]]]]), id="interfaces-bools"),
    pytest.param(_entry(lambda e: [*e[:5], None]), id="entry-extra-field"),
    pytest.param(_entry(lambda e: [*e[:4]]), id="entry-missing-field"),
    pytest.param(_entry(lambda e: [e[0], e[1], e[2], e[3], _nested(60)]), id="entry-nested"),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_cache_is_ignored_and_rewritten(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture, damage: Damage
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = primary(ptree)
    raw = path.read_bytes()
    good = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)

    path.write_bytes(damage(good, raw))
    ptree.purge()
    caplog.clear()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert noisy(caplog) == []
    assert load_cache(path, ptree.plugins_dir, ptree.plugins_name) == good
    assert directory_caches(user_cache()) == []


def test_boolean_mtime_is_not_an_integer(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    """``True == 1``: an entry stamped ``true`` must not match a file whose mtime is 1 ns."""
    caplog.set_level(logging.DEBUG)
    os.utime(ptree.plugins_dir / "a.py", ns=(1, 1))
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = primary(ptree)
    good = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)
    assert good["modules"]["a"][1] == 1

    forged = copy.deepcopy(good)
    forged["modules"]["a"] = ["a.py", True, good["modules"]["a"][2], "Module a.", []]
    path.write_bytes(_dumps(forged))
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    rewritten = load_cache(path, ptree.plugins_dir, ptree.plugins_name)
    assert rewritten == good
    assert type(rewritten["modules"]["a"][1]) is int


def test_boolean_size_is_not_an_integer(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry sized ``true`` must not match a one-byte module and lend it a plugin."""
    caplog.set_level(logging.DEBUG)
    ptree.plugin("z", "\n")
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = primary(ptree)
    good = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)
    filename, mtime_ns, size, _, plugins = good["modules"]["z"]
    assert (size, plugins) == (1, [])

    iface = f"{ptree.name}.ifaces.ITestPlugin"
    forged = copy.deepcopy(good)
    forged["modules"]["z"] = [
        filename, mtime_ns, True, None, [["Fake", None, [iface], [iface, *IPLUGIN_NAMES]]]
    ]
    path.write_bytes(_dumps(forged))
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    assert load_cache(path, ptree.plugins_dir, ptree.plugins_name) == good


def test_valid_entry_rejects_booleans_for_integers() -> None:
    plugin = ["Plugin", None, ["x.I"], ["x.I"]]
    assert valid_entry(["a.py", 1, 1, None, [plugin]])
    assert not valid_entry(["a.py", True, 1, None, [plugin]])
    assert not valid_entry(["a.py", 1, False, None, [plugin]])
    assert not valid_entry(["a.py", 1, 1, None, [["Plugin", None, [True], ["x.I"]]]])
    assert not valid_entry(("a.py", 1, 1, None, [plugin]))


# -- read_entries as a property -------------------------------------------------------------------

PACKAGE = "some.plugins"
DIRECTORY = "/some/plugins"
ENVIRONMENT = "0123456789abcdef" * 2
EXPECTED = {
    "schema": _cache.SCHEMA,
    "interpreter": TAG,
    "directory": DIRECTORY,
    "package": PACKAGE,
    "environment": ENVIRONMENT,
}

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)
_text = st.text(max_size=12)
_plugins = st.lists(
    st.tuples(
        _text, st.none() | _text, st.lists(_text, max_size=3), st.lists(_text, max_size=4)
    ).map(list),
    max_size=3,
)
_valid_entries = st.tuples(
    _text,
    st.integers(min_value=-(2**63), max_value=2**64),
    st.integers(min_value=0, max_value=2**63),
    st.none() | _text,
    _plugins,
).map(list)
_names = st.lists(st.text(max_size=10) | _scalars, max_size=3)
_pluginish = st.one_of(
    st.tuples(st.text(max_size=8) | _scalars, st.none() | _scalars, _names, _names).map(list),
    st.lists(_json, max_size=6),
    _json,
)


# Values of the wrong type for every field, booleans (which are ints to Python) first.
_wrong: st.SearchStrategy[object] = (
    st.sampled_from([True, False, None, 0, 1, 1.0, "", "x", [], {}, [1], ["x", 2]]) | _json
)


@st.composite
def _spoiled_entries(draw: st.DrawFn) -> list[Any]:
    """A valid entry with one thing changed: a field, a plugin field, a name, the length."""
    entry: list[Any] = draw(_valid_entries)
    where = draw(st.sampled_from(["field", "plugin", "name", "length"]))
    if where in ("plugin", "name"):
        entry[4].append(draw(_plugins.filter(bool))[0])
        plugin = draw(st.sampled_from(entry[4]))
        if where == "plugin":
            plugin[draw(st.integers(0, 3))] = draw(_wrong)
        else:
            plugin[draw(st.integers(2, 3))].append(draw(_wrong))
    elif where == "length":
        if draw(st.booleans()):
            entry.append(draw(_json))
        else:
            entry.pop(draw(st.integers(0, 4)))
    else:
        entry[draw(st.integers(0, 4))] = draw(_wrong)
    return entry


_entryish = st.one_of(
    _valid_entries,
    _spoiled_entries(),
    st.tuples(
        st.text(max_size=8) | _scalars,
        st.integers() | _scalars,
        st.integers(min_value=0) | _scalars,
        st.none() | _scalars,
        st.lists(_pluginish, max_size=3) | _scalars,
    ).map(list),
    st.lists(_json, max_size=7),
    _json,
)


@st.composite
def _cache_documents(draw: st.DrawFn) -> dict[str, object]:
    """A cache document for DIRECTORY/PACKAGE/ENVIRONMENT, often with a few fields spoiled."""
    document: dict[str, object] = dict(EXPECTED)
    document["modules"] = draw(
        st.dictionaries(st.text(max_size=8), _spoiled_entries() | _entryish, max_size=6) | _json
    )
    for key in draw(st.sets(st.sampled_from([*document, "extra"]), max_size=2)):
        if key in document and draw(st.booleans()):
            del document[key]
        else:
            document[key] = draw(_json)
    return document


_documents = _cache_documents() | _json


def _well_formed(entry: object) -> bool:
    """The stored shape, written out independently of the library:
    ``[filename, mtime_ns, size, docstring or null, [[attribute, docstring or null,
    [names], [names]], ...]]``, integers being ints proper (not booleans)."""

    def text_or_none(value: object) -> bool:
        return value is None or isinstance(value, str)

    def names(value: object) -> bool:
        return isinstance(value, list) and all(isinstance(name, str) for name in value)

    def plugin(value: object) -> bool:
        if not isinstance(value, list) or len(value) != 4:
            return False
        attribute, description, provided, interfaces = value
        return (
            isinstance(attribute, str)
            and text_or_none(description)
            and names(provided)
            and names(interfaces)
        )

    if not isinstance(entry, list) or len(entry) != 5:
        return False
    filename, mtime_ns, size, description, plugins = entry
    return (
        isinstance(filename, str)
        and isinstance(mtime_ns, int)
        and not isinstance(mtime_ns, bool)
        and isinstance(size, int)
        and not isinstance(size, bool)
        and text_or_none(description)
        and isinstance(plugins, list)
        and all(plugin(item) for item in plugins)
    )


def _exactly_ours(document: object) -> bool:
    """Whether the header of ``document`` is exactly that of a cache for DIRECTORY/PACKAGE."""
    return type(document) is dict and all(
        type(document.get(key)) is type(value) and document.get(key) == value
        for key, value in EXPECTED.items()
    )


def _check_read(path: Path) -> dict[str, Any]:
    entries = read_entries(str(path), DIRECTORY, PACKAGE, ENVIRONMENT)
    assert type(entries) is dict
    for name, entry in entries.items():
        assert type(name) is str
        assert valid_entry(entry)
        assert _well_formed(entry), entry
    return entries


@settings(max_examples=500)
@given(entry=_entryish)
def test_valid_entry_is_exactly_the_stored_shape(entry: object) -> None:
    assert valid_entry(entry) == _well_formed(entry)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.binary(max_size=512))
def test_read_entries_survives_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(data)
    _check_read(path)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=300,
)
@given(
    document=_documents,
    cut=st.sampled_from([None, None, None]) | st.integers(min_value=0, max_value=200),
)
def test_read_entries_keeps_only_valid_entries(
    tmp_path: Path, document: object, cut: int | None
) -> None:
    path = tmp_path / "cache.json"
    raw = json.dumps(document).encode("utf-8")
    path.write_bytes(raw if cut is None else raw[:cut])
    entries = _check_read(path)
    if cut is not None and cut < len(raw):
        return
    if _exactly_ours(document) and type(document) is dict and type(document.get("modules")) is dict:
        modules = document["modules"]
        assert entries == {name: entry for name, entry in modules.items() if _well_formed(entry)}
    elif type(document) is not dict or any(
        document.get(key) != value for key, value in EXPECTED.items()
    ):
        assert entries == {}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(entries=st.dictionaries(_text, _valid_entries, max_size=6))
def test_encode_then_read_entries_round_trips(
    tmp_path: Path, entries: dict[str, list[Any]]
) -> None:
    for entry in entries.values():
        assert valid_entry(entry)
    path = tmp_path / "cache.json"
    path.write_bytes(encode(DIRECTORY, PACKAGE, ENVIRONMENT, entries))
    assert read_entries(str(path), DIRECTORY, PACKAGE, ENVIRONMENT) == entries
    assert read_entries(str(path), DIRECTORY, "other.plugins", ENVIRONMENT) == {}
    assert read_entries(str(path), "/other/plugins", PACKAGE, ENVIRONMENT) == {}
    assert read_entries(str(path), DIRECTORY, PACKAGE, "f" * 32) == {}


# -- entries that do not describe the files on disk -----------------------------------------------


def test_entry_for_missing_module_is_never_imported_and_pruned(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = primary(ptree)
    document = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)
    ghost = copy.deepcopy(document["modules"]["a"])
    ghost[0] = "ghost.py"
    ghost[4][0][0] = "Ghost"
    document["modules"]["ghost"] = ghost
    path.write_bytes(_dumps(document))
    assert not (ptree.plugins_dir / "ghost.py").exists()
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert f"{ptree.plugins_name}.ghost" not in sys.modules
    assert "ghost" not in loaded(ptree.plugins_name)
    assert imports(ptree) == ["a"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    rewritten = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)
    assert set(rewritten["modules"]) == {"a", "b"}


def test_entry_with_other_stamp_is_rescanned(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = primary(ptree)
    good = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)

    for stale in (
        [good["modules"]["a"][0], good["modules"]["a"][1] + 1, good["modules"]["a"][2], None, []],
        [good["modules"]["a"][0], good["modules"]["a"][1], good["modules"]["a"][2] + 1, None, []],
        ["b.py", *good["modules"]["a"][1:3], None, []],
    ):
        forged = copy.deepcopy(good)
        forged["modules"]["a"] = stale
        path.write_bytes(_dumps(forged))
        ptree.purge()

        assert tags(ptree, "ITestPlugin") == ["a"]
        assert imports(ptree) == ["a"]
        assert noisy(caplog) == []
        assert load_cache(path, ptree.plugins_dir, ptree.plugins_name) == good


@pytest.mark.parametrize("lie", ["extra-interface", "missing-attribute"])
def test_entry_claiming_what_the_module_does_not_provide(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture, lie: str
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = primary(ptree)
    good = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)
    other = f"{ptree.name}.ifaces.ITestPlugin2"
    forged = copy.deepcopy(good)
    [plugin] = forged["modules"]["a"][4]
    if lie == "extra-interface":
        plugin[2].append(other)
        plugin[3].append(other)
    else:
        forged["modules"]["a"][4].append(["Missing", None, [other], [other, *IPLUGIN_NAMES]])
    path.write_bytes(_dumps(forged))
    ptree.purge()
    caplog.clear()

    assert tags(ptree, "ITestPlugin2") == ["b"]
    warnings = noisy(caplog)
    assert len(warnings) == 1
    assert f"{ptree.plugins_name}" in warnings[0]
    assert "a" not in load_cache(path, ptree.plugins_dir, ptree.plugins_name)["modules"]

    caplog.clear()
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []

    ptree.purge()
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    assert load_cache(path, ptree.plugins_dir, ptree.plugins_name) == good


# -- freshness is the stamp, not the age ----------------------------------------------------------

OLD = 315_532_800 * 10**9  # 1980-01-01


def test_edit_dated_in_the_past_is_noticed(ptree: PluginTree) -> None:
    module = ptree.plugin("c", plugin_source("c1", "ITestPlugin"))
    assert tags(ptree, "ITestPlugin") == ["a", "c1"]
    assert primary(ptree).exists()

    size = module.stat().st_size
    ptree.plugin("c", plugin_source("c2", "ITestPlugin"))
    os.utime(module, ns=(OLD, OLD))
    assert module.stat().st_size == size
    assert module.stat().st_mtime_ns < primary(ptree).stat().st_mtime_ns
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a", "c2"]
    assert_fresh_cache(primary(ptree), ptree.plugins_dir, ptree.plugins_name)

    ptree.plugin("c", plugin_source("c3", "ITestPlugin2"))
    os.utime(module, ns=(OLD - 10**9, OLD - 10**9))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert tags(ptree, "ITestPlugin2") == ["b", "c3"]


def test_edits_within_one_clock_tick_are_noticed(ptree: PluginTree) -> None:
    when = 1_700_000_000_123_456_789
    module = ptree.plugin("c", plugin_source("c1", "ITestPlugin"))
    os.utime(module, ns=(when, when))
    assert tags(ptree, "ITestPlugin") == ["a", "c1"]

    sizes = {module.stat().st_size}
    for version in ("c22", "c333", "c4444"):
        ptree.plugin("c", plugin_source(version, "ITestPlugin"))
        os.utime(module, ns=(when, when))
        assert module.stat().st_size not in sizes
        sizes.add(module.stat().st_size)
        ptree.purge()
        assert tags(ptree, "ITestPlugin") == ["a", version]
        entry = assert_fresh_cache(primary(ptree), ptree.plugins_dir, ptree.plugins_name)
        assert entry["modules"]["c"][1] == when


def test_edit_while_the_old_module_is_imported_is_not_recorded_as_the_new(
    ptree: PluginTree,
) -> None:
    """A process that still has the old code imported cannot describe the edited file."""
    ptree.plugin("c", plugin_source("c", "ITestPlugin"))
    assert tags(ptree, "ITestPlugin") == ["a", "c"]

    ptree.plugin("c", plugin_source("c-edited", "ITestPlugin2"))
    list(getPlugins(ptree.ifaces().ITestPlugin2, ptree.package()))
    ptree.purge()

    assert tags(ptree, "ITestPlugin2") == ["b", "c-edited"]
    assert tags(ptree, "ITestPlugin") == ["a"]


# -- writing --------------------------------------------------------------------------------------


def test_no_temporary_files_left_after_many_writes(ptree: PluginTree) -> None:
    for index in range(15):
        ptree.plugin(f"m{index:02d}", plugin_source(f"m{index:02d}", "ITestPlugin2"))
        ptree.purge()
        assert tags(ptree, "ITestPlugin") == ["a"]
    pycache = primary(ptree).parent
    strays = [
        path.name
        for path in pycache.iterdir()
        if path.name != CACHE_NAME and not path.name.endswith(f".{TAG}.pyc")
    ]
    assert strays == []
    document = assert_fresh_cache(primary(ptree), ptree.plugins_dir, ptree.plugins_name)
    assert len(document["modules"]) == 17


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "file.json"
    first, second = b"[" + b"1," * 300_000 + b"1]", b"[" + b"2," * 400_000 + b"2]"
    write_atomic(str(target), first)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from compat_plugin._cache import write_atomic\n"
            "a, b = b'[' + b'1,' * 300000 + b'1]', b'[' + b'2,' * 400000 + b'2]'\n"
            "for i in range(300):\n"
            "    write_atomic(sys.argv[1], b if i % 2 == 0 else a)\n",
            str(target),
        ]
    )
    try:
        reads = 0
        while writer.poll() is None:
            assert target.read_bytes() in (first, second)
            reads += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert reads > 0
    assert [path.name for path in target.parent.iterdir()] == ["file.json"]


def test_write_atomic_failing_to_replace_leaves_nothing(tmp_path: Path) -> None:
    parent = tmp_path / "cache"
    target = parent / "file.json"
    target.mkdir(parents=True)
    (target / "inside").write_bytes(b"x")
    with pytest.raises(OSError):
        write_atomic(str(target), b"{}")
    assert [path.name for path in parent.iterdir()] == ["file.json"]
    assert target.is_dir()


def test_write_atomic_failing_to_write_leaves_nothing(tmp_path: Path) -> None:
    parent = tmp_path / "cache"
    target = parent / "file.json"
    write_atomic(str(target), b"old")
    with pytest.raises(TypeError):
        write_atomic(str(target), "not bytes")  # type: ignore[arg-type]
    assert [path.name for path in parent.iterdir()] == ["file.json"]
    assert target.read_bytes() == b"old"


@pytest.mark.parametrize(
    ("umask", "mode"),
    [(0o027, 0o640), (0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)],
)
def test_cache_file_mode_follows_umask(ptree: PluginTree, umask: int, mode: int) -> None:
    out = run_child(
        ptree.name,
        f"""
        os.umask({umask:#o})
        out["calls"] = [tags("ITestPlugin")]
        """,
        path=[str(ptree.root)],
    )
    assert out["calls"] == [["a"]]
    assert stat.S_IMODE(primary(ptree).stat().st_mode) == mode


def test_cache_is_written_only_when_something_changed(ptree: PluginTree) -> None:
    body = """
    out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin2")]
    out["loaded"] = loaded()
    """
    cold = run_child(ptree.name, body, path=[str(ptree.root)])
    assert cold["calls"] == [["a"], ["b"]]
    path = primary(ptree)
    before = identity(path)

    for _ in range(2):
        warm = run_child(ptree.name, 'out["calls"] = [tags("ITestPlugin")]', path=[str(ptree.root)])
        assert warm["calls"] == [["a"]]
        assert warm["imports"] == ["a"]
        assert identity(path) == before

    ptree.plugin("c", plugin_source("c", "ITestPlugin"))
    grown = run_child(ptree.name, body, path=[str(ptree.root)])
    assert grown["calls"] == [["a", "c"], ["b"]]
    assert grown["imports"] == ["c", "a", "b"]
    assert identity(path) != before
    document = assert_fresh_cache(path, ptree.plugins_dir, ptree.plugins_name)
    assert set(document["modules"]) == {"a", "b", "c"}
    assert directory_caches(user_cache()) == []


def test_removing_a_module_rewrites_the_cache(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]
    (ptree.plugins_dir / "b.py").unlink()
    ptree.purge()
    assert tags(ptree, "ITestPlugin2") == []
    document = assert_fresh_cache(primary(ptree), ptree.plugins_dir, ptree.plugins_name)
    assert set(document["modules"]) == {"a"}


# -- COMPAT_PLUGIN_NO_CACHE_WRITE -----------------------------------------------------------------


def test_no_cache_write_writes_nothing_and_imports_once(
    ptree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPAT_PLUGIN_NO_CACHE_WRITE", "1")
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a", "b"]

    del sys.modules[f"{ptree.plugins_name}.b"]
    for _ in range(3):
        assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a", "b"]
    assert "b" not in loaded(ptree.plugins_name)

    assert ptree.cache_files() == []
    assert files_in(user_cache()) == []
    assert not [path for path in ptree.root.rglob("*.json")]


def test_no_cache_write_zero_means_writing(
    ptree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPAT_PLUGIN_NO_CACHE_WRITE", "0")
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert ptree.cache_files() == [primary(ptree)]


def test_without_no_cache_write_repeat_calls_do_not_rescan(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]
    del sys.modules[f"{ptree.plugins_name}.b"]
    for _ in range(3):
        assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a", "b"]


# -- unprivileged users, read-only directories ----------------------------------------------------


@dataclass
class Sandbox:
    """A plugin tree every user can read, in a read-only plugin directory.

    Children run as ``nobody`` when the tests run as root, else as the current user (for whom
    the 0555 plugin directory is just as unwritable).
    """

    base: Path
    tree: PluginTree
    user_cache: Path
    home: Path
    uid: int

    def run(self, body: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        environment = {"COMPAT_PLUGIN_CACHE_DIR": str(self.user_cache), "HOME": str(self.home)}
        environment.update(env or {})
        out = run_child(
            self.tree.name,
            body,
            path=[str(self.base)],
            env=environment,
            drop_to=self.uid if os.geteuid() == 0 else None,
        )
        assert out["uid"] == self.uid
        return out

    def fallback(self) -> Path:
        return self.user_cache / fallback_name(self.tree.plugins_dir)

    def add_plugin(self, name: str, source: str) -> None:
        self.tree.plugins_dir.chmod(0o755)
        self.tree.plugin(name, source).chmod(0o644)
        self.tree.plugins_dir.chmod(0o555)

    def owned_dir(self, name: str) -> Path:
        """A directory below ``base`` that the children's user owns."""
        return owned_dir(self.base / name, self.uid)


def owned_dir(path: Path, uid: int) -> Path:
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    base = Path(tempfile.mkdtemp(prefix="compat-plugin-", dir="/tmp"))
    try:
        tree = PluginTree(base, f"cpu{os.getpid()}_{next(_serial)}")
        tree.write("counter.py", "imports = []\n")
        tree.plugin("a", plugin_source("a", "ITestPlugin"))
        tree.plugin("b", plugin_source("b", "ITestPlugin2"))
        open_up(base)
        tree.plugins_dir.chmod(0o555)
        uid = NOBODY if os.geteuid() == 0 else os.geteuid()
        user_cache, home = owned_dir(base / "usercache", uid), owned_dir(base / "home", uid)
        yield Sandbox(base, tree, user_cache, home, uid)
    finally:
        remove_tree(base)


def test_children_run_unprivileged(sandbox: Sandbox) -> None:
    if os.geteuid() != 0:
        pytest.skip("privileges can only be dropped when running as root")
    out = sandbox.run(
        """
        try:
            open(os.path.join(os.path.dirname(package.__file__), "probe"), "w")
        except PermissionError:
            out["denied"] = True
        """
    )
    assert (out["uid"], out["gid"], out["groups"]) == (NOBODY, NOBODY, [])
    assert out.get("denied") is True


def test_unwritable_plugin_directory_uses_user_cache(sandbox: Sandbox) -> None:
    tree = sandbox.tree
    first = sandbox.run(
        """
        out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin")]
        out["calls"] += [tags("ITestPlugin2"), tags("ITestPlugin")]
        out["loaded"] = loaded()
        """
    )
    assert first["calls"] == [["a"], ["a"], ["b"], ["a"]]
    assert not (tree.plugins_dir / "__pycache__").exists()
    fallback = sandbox.fallback()
    assert directory_caches(sandbox.user_cache) == [fallback]
    document = assert_fresh_cache(fallback, tree.plugins_dir, tree.plugins_name)
    assert set(document["modules"]) == {"a", "b"}
    notes = unwritable_notes(first)
    assert len(notes) == 1
    assert notes[0][0] == "INFO"
    assert levels(first) <= {"DEBUG", "INFO"}

    before = snapshot(sandbox.user_cache)
    second = sandbox.run(
        """
        out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin")]
        out["loaded"] = loaded()
        """
    )
    assert second["calls"] == [["a"], ["a"]]
    assert second["loaded"] == ["a"]
    assert second["imports"] == ["a"]
    assert levels(second) <= {"DEBUG", "INFO"}
    assert len(unwritable_notes(second)) <= 1
    assert snapshot(sandbox.user_cache) == before
    assert not (tree.plugins_dir / "__pycache__").exists()

    sandbox.add_plugin("c", plugin_source("c", "ITestPlugin"))
    third = sandbox.run('out["calls"] = [tags("ITestPlugin")]\nout["loaded"] = loaded()')
    assert third["calls"] == [["a", "c"]]
    assert third["loaded"] == ["a", "c"]
    assert levels(third) <= {"DEBUG", "INFO"}
    document = assert_fresh_cache(fallback, tree.plugins_dir, tree.plugins_name)
    assert set(document["modules"]) == {"a", "b", "c"}
    assert directory_caches(sandbox.user_cache) == [fallback]


def test_unwritable_everywhere_stays_quiet_and_imports_once(sandbox: Sandbox) -> None:
    sandbox.user_cache.chmod(0o555)
    out = sandbox.run(
        """
        out["calls"] = [tags("ITestPlugin")]
        del sys.modules[package.__name__ + ".b"]
        out["calls"] += [tags("ITestPlugin"), tags("ITestPlugin")]
        out["before_loading_b"] = list(counter.imports)
        out["calls"].append(tags("ITestPlugin2"))
        """
    )
    assert out["calls"] == [["a"], ["a"], ["a"], ["b"]]
    assert out["before_loading_b"] == ["a", "b"]
    assert levels(out) <= {"DEBUG", "INFO"}
    notes = [message for _, message in unwritable_notes(out)]
    assert len(notes) == len(set(notes))
    assert sum(str(sandbox.tree.plugins_dir) in message for message in notes) == 1
    assert files_in(sandbox.user_cache) == []
    assert not (sandbox.tree.plugins_dir / "__pycache__").exists()


def test_no_cache_write_unprivileged_writes_nothing(sandbox: Sandbox) -> None:
    out = sandbox.run(
        'out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin2")]',
        env={"COMPAT_PLUGIN_NO_CACHE_WRITE": "1"},
    )
    assert out["calls"] == [["a"], ["b"]]
    assert files_in(sandbox.user_cache) == []
    assert files_in(sandbox.home) == []
    assert not (sandbox.tree.plugins_dir / "__pycache__").exists()
    assert unwritable_notes(out) == []


@pytest.mark.parametrize("where", ["xdg", "home", "empty-xdg"])
def test_user_cache_location(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    monkeypatch.delenv("COMPAT_PLUGIN_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    xdg = sandbox.owned_dir("xdg")
    env = {"COMPAT_PLUGIN_CACHE_DIR": ""}
    if where == "xdg":
        env["XDG_CACHE_HOME"] = str(xdg)
        expected = xdg / "compat_plugin" / fallback_name(sandbox.tree.plugins_dir)
    else:
        if where == "empty-xdg":
            env["XDG_CACHE_HOME"] = ""
        expected = sandbox.home / ".cache" / "compat_plugin"
        expected /= fallback_name(sandbox.tree.plugins_dir)

    out = sandbox.run('out["calls"] = [tags("ITestPlugin")]', env=env)
    assert out["calls"] == [["a"]]
    written = sorted(sandbox.base.rglob("*.json"))
    assert [path for path in written if path.parent.name != "entry-points"] == [expected]
    assert {path.parent.parent for path in written if path.parent.name == "entry-points"} <= {
        expected.parent
    }
    assert_fresh_cache(expected, sandbox.tree.plugins_dir, sandbox.tree.plugins_name)

    warm = sandbox.run('out["calls"] = [tags("ITestPlugin")]', env=env)
    assert warm["calls"] == [["a"]]
    assert warm["imports"] == ["a"]


def test_user_cache_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(tmp_path / "explicit"))
    assert _cache.user_cache_root() == str(tmp_path / "explicit")
    monkeypatch.delenv("COMPAT_PLUGIN_CACHE_DIR")
    assert _cache.user_cache_root() == str(tmp_path / "xdg" / "compat_plugin")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _cache.user_cache_root() == str(tmp_path / "home" / ".cache" / "compat_plugin")
    assert _cache.fallback_path("/x/plugins") == str(
        tmp_path / "home" / ".cache" / "compat_plugin" / fallback_name("/x/plugins")
    )


# -- zip archives ---------------------------------------------------------------------------------


def build_zip(archive: Path, package: str, plugins: dict[str, str]) -> None:
    members = {
        f"{package}/__init__.py": "",
        f"{package}/ifaces.py": INTERFACES,
        f"{package}/counter.py": "imports = []\n",
        f"{package}/plugins/__init__.py": PLUGINS_INIT,
        **{f"{package}/plugins/{name}.py": source for name, source in plugins.items()},
    }
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, textwrap.dedent(text).format(pkg=package))


def test_plugins_inside_a_zip_archive(tmp_path: Path) -> None:
    package = f"cpz{os.getpid()}_{next(_serial)}"
    archive = tmp_path / "plugins.zip"
    build_zip(
        archive,
        package,
        {"a": plugin_source("a", "ITestPlugin"), "b": plugin_source("b", "ITestPlugin2")},
    )
    content, when = archive.read_bytes(), archive.stat().st_mtime_ns
    directory = f"{archive}/{package}/plugins"
    body = """
    out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin")]
    out["loaded"] = loaded()
    """

    cold = run_child(package, body, path=[str(archive)])
    assert cold["calls"] == [["a"], ["a"]]
    assert cold["loaded"] == ["a", "b"]
    assert levels(cold) <= {"DEBUG", "INFO"}
    assert archive.read_bytes() == content
    assert archive.stat().st_mtime_ns == when
    assert [path.name for path in tmp_path.iterdir()] == ["plugins.zip"]
    fallback = user_cache() / fallback_name(directory)
    assert directory_caches(user_cache()) == [fallback]
    document = load_cache(fallback, directory, f"{package}.plugins")
    with zipfile.ZipFile(archive) as zf:
        sizes = {name: zf.getinfo(f"{package}/plugins/{name}.py").file_size for name in "ab"}
    assert {name: entry[:3] for name, entry in document["modules"].items()} == {
        name: [f"{name}.py", when, size] for name, size in sizes.items()
    }

    before = snapshot(user_cache())
    warm = run_child(package, body, path=[str(archive)])
    assert warm["calls"] == [["a"], ["a"]]
    assert warm["loaded"] == ["a"]
    assert warm["imports"] == ["a"]
    assert levels(warm) <= {"DEBUG", "INFO"}
    assert snapshot(user_cache()) == before
    assert archive.read_bytes() == content


# -- namespace plugin packages --------------------------------------------------------------------


def test_namespace_plugin_package_over_two_path_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cpns{os.getpid()}_{next(_serial)}"
    support = f"{name}_support"
    first, second = tmp_path / "one", tmp_path / "two"

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).format(pkg=support), encoding="utf-8")

    write(first / support / "__init__.py", "")
    write(first / support / "ifaces.py", INTERFACES)
    write(first / support / "counter.py", "imports = []\n")
    write(first / name / "a.py", plugin_source("a", "ITestPlugin"))
    write(first / name / "dup.py", plugin_source("dup-first", "ITestPlugin"))
    write(second / name / "b.py", plugin_source("b", "ITestPlugin"))
    write(second / name / "c.py", plugin_source("c", "ITestPlugin2"))
    write(second / name / "dup.py", plugin_source("dup-second", "ITestPlugin"))
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))

    def forget() -> None:
        for module in [m for m in sys.modules if m.split(".")[0] in (name, support)]:
            del sys.modules[module]
        _resolver.forget_state()
        importlib.invalidate_caches()

    def query(interface: str) -> list[str]:
        ifaces = importlib.import_module(f"{support}.ifaces")
        package = importlib.import_module(name)
        return [plugin.tag for plugin in getPlugins(getattr(ifaces, interface), package)]

    try:
        package = importlib.import_module(name)
        assert not hasattr(package, "__file__") or package.__file__ is None
        portions = [os.path.abspath(portion) for portion in package.__path__]
        assert portions == [str(first / name), str(second / name)]

        cold = query("ITestPlugin"), query("ITestPlugin2")
        assert cold == (["a", "dup-first", "b"], ["c"])
        counter = importlib.import_module(f"{support}.counter")
        assert sorted(counter.imports) == ["a", "b", "c", "dup"]

        for _ in range(2):
            forget()
            assert query("ITestPlugin") == cold[0]
            assert loaded(name) == {"a", "dup", "b"}
            assert query("ITestPlugin2") == cold[1]

        for portion, expected in ((first / name, {"a", "dup"}), (second / name, {"b", "c"})):
            document = load_cache(portion / "__pycache__" / CACHE_NAME, portion, name)
            assert expected <= set(document["modules"])
    finally:
        forget()
