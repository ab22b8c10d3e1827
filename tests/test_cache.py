"""The scan cache: its format, what it trusts, where it is written, and when.

Everything here runs against real files: plugin packages written to disk, caches written by the
library itself and then damaged or edited, and fresh interpreters standing in for later
processes.  Runs as an unprivileged user are made by a child interpreter that gives up root
before it touches the plugin package.
"""

from __future__ import annotations

import copy
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
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from compat_plugin._cache import Entry, decode, encode, entry_from, read_entries, write_atomic
from compat_plugin._dropins import Candidate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_plugin import _cache, _resolver, getPlugins
from compat_plugin._entrypoints import _distribution_dirs, installed_fingerprint
from compat_plugin._records import ModuleRecords, Origin, PluginRecord

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


def crc_adler(text: str) -> str:
    """CRC-32 then Adler-32 of ``text``'s UTF-8 bytes, as 16 hex digits (the documented digest
    of file names and fingerprints)."""
    data = text.encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def fallback_name(directory: Path | str) -> str:
    return f"{crc_adler(os.path.realpath(directory))}.{TAG}.json"


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
    """The fingerprint of the installed distributions this process sees."""
    path = [entry for entry in sys.path if isinstance(entry, str)]
    return installed_fingerprint(_distribution_dirs(path))


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


def compact(value: object) -> str:
    """``value`` as a detail line: compact, ASCII-only JSON."""
    return json.dumps(value, separators=(",", ":"))


def is_int(value: object) -> bool:
    """An integer proper: ``True`` is an int to Python, never to the cache."""
    return isinstance(value, int) and not isinstance(value, bool)


def well_formed_stamp(stamp: object) -> bool:
    """A module's stored stamp, written out independently of the library:
    ``[filename, mtime_ns, size]``, the two numbers being ints proper."""
    return (
        isinstance(stamp, list)
        and len(stamp) == 3
        and isinstance(stamp[0], str)
        and is_int(stamp[1])
        and is_int(stamp[2])
    )


def well_formed_details(details: object) -> bool:
    """A module's stored details, written out independently of the library:
    ``[docstring or null, [[attribute, docstring or null, [names], [names]], ...]]``."""

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

    if not isinstance(details, list) or len(details) != 2:
        return False
    description, plugins = details
    return (
        text_or_none(description)
        and isinstance(plugins, list)
        and all(plugin(item) for item in plugins)
    )


# The header's ``modules``: module n is names[n], loaded from files[n], stamped mtimes[n] and
# sizes[n]; detail line n (the file's line n + 1) describes it.
COLUMNS = ("names", "files", "mtimes", "sizes")


def columns(stamps: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The header's ``modules`` for ``{name: [filename, mtime_ns, size]}``, in that order."""
    return {
        "names": list(stamps),
        "files": [stamp[0] for stamp in stamps.values()],
        "mtimes": [stamp[1] for stamp in stamps.values()],
        "sizes": [stamp[2] for stamp in stamps.values()],
    }


def split_cache(raw: bytes) -> tuple[Any, list[str]]:
    """The parsed header and the detail lines of a complete cache file: ASCII only, every line
    (the last included) ended by a newline."""
    text = raw.decode("ascii")
    assert text.endswith("\n"), "the last line is not ended by a newline"
    header_line, *details = text[:-1].split("\n")
    return json.loads(header_line), details


def cache_bytes(header: object, details: Sequence[str | bytes]) -> bytes:
    """A cache file laid out as documented: ``header`` as a line of JSON, then the detail lines
    ``details`` (bytes as they are, text in UTF-8), each ended by a newline.

    A header without ``checksum`` gets the CRC-32 of these detail lines; one that has it keeps
    it, so a file whose lines were changed after the fact carries the old one.
    """
    block = b"".join(
        (line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in details
    )
    if isinstance(header, dict) and "checksum" not in header:
        header = {**header, "checksum": zlib.crc32(block)}
    return json.dumps(header).encode("ascii") + b"\n" + block


def dump_cache(document: dict[str, Any]) -> bytes:
    """The cache file for ``document`` in the form ``load_cache`` returns: each module's
    ``[filename, mtime_ns, size, docstring, plugins]`` split into its stamp, in the header's
    columns, and its details, on a line of their own."""
    header = {key: value for key, value in document.items() if key != "modules"}
    modules: dict[str, list[Any]] = document["modules"]
    header["modules"] = columns({name: entry[:3] for name, entry in modules.items()})
    return cache_bytes(header, [compact(entry[3:]) for entry in modules.values()])


def load_cache(path: Path, directory: Path | str, package: str) -> dict[str, Any]:
    """Parse the cache file at ``path``, check it is a complete, well-formed one, and return
    its header with each module's stamp and details joined: ``modules`` maps a module name to
    ``[filename, mtime_ns, size, docstring, plugins]``."""
    header, lines = split_cache(path.read_bytes())
    assert type(header) is dict
    assert type(header["schema"]) is int
    assert header["schema"] == _cache.SCHEMA
    assert header["interpreter"] == TAG
    assert header["directory"] == os.path.realpath(directory)
    assert header["package"] == package
    assert type(header["environment"]) is str
    table = header["modules"]
    assert type(table) is dict
    assert sorted(table) == sorted(COLUMNS)
    for key in COLUMNS:
        assert type(table[key]) is list
        assert len(table[key]) == len(lines), (key, table[key], lines)
    names = table["names"]
    assert all(type(name) is str for name in names)
    assert len(set(names)) == len(names)
    modules: dict[str, list[Any]] = {}
    for position, (name, line) in enumerate(zip(names, lines)):
        stamp = [table[key][position] for key in COLUMNS[1:]]
        assert well_formed_stamp(stamp), (name, stamp)
        details = json.loads(line)
        assert well_formed_details(details), (name, line)
        assert line == compact(details), (name, line)
        modules[name] = [*stamp, *details]
    block = "".join(f"{line}\n" for line in lines).encode("ascii")
    assert header["checksum"] == zlib.crc32(block)
    kept = {key: value for key, value in header.items() if key not in ("modules", "checksum")}
    return kept | {"modules": modules}


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
    import gc, keyword, re, zipfile, zipimport, zlib
    import packaging.requirements, packaging.utils
    from compat_plugin import _entrypoints
    _entrypoints.current_index("unused.plugins")
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


def test_cache_is_json_lines_beside_the_plugins(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]

    assert ptree.cache_files() == [primary(ptree)]
    header, lines = split_cache(primary(ptree).read_bytes())
    assert header["schema"] == _cache.SCHEMA == 3
    # Modules in name order, each with its file and stamp.
    assert header["modules"] == columns(dict(sorted(disk_stamps(ptree.plugins_dir).items())))
    assert header["modules"]["names"] == ["a", "b"]
    assert len(lines) == 2
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
    # Detail line n describes module n of the header.
    for name, line in zip(header["modules"]["names"], lines):
        assert json.loads(line)[0] == f"Module {name}."

    everything = [*ptree.root.rglob("*"), *user_cache().rglob("*")]
    assert not [path for path in everything if path.name == "dropin.cache"]
    assert directory_caches(user_cache()) == []


# -- damaged caches -------------------------------------------------------------------------------

Damage = Callable[[dict[str, Any], bytes], bytes]


def _parts(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The header and the detail lines of the cache file for ``document``."""
    header, lines = split_cache(dump_cache(document))
    assert type(header) is dict
    return header, lines


def _asked(details: list[Any]) -> str:
    """The name of ITestPlugin as recorded in the details of ``a``."""
    [name] = [name for name in details[1][0][2] if name.endswith(".ifaces.ITestPlugin")]
    assert isinstance(name, str)
    return name


def _header(**changes: object) -> Damage:
    """The valid file with header fields replaced (or removed, for ``...``)."""

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        header, lines = _parts(document)
        for key, value in changes.items():
            if value is ...:
                del header[key]
            else:
                header[key] = value
        return cache_bytes(header, lines)

    return damage


def _modules(value: object) -> Damage:
    """The valid file with the header's ``modules`` replaced and the detail lines kept."""
    return _header(modules=value)


def _column(key: str, change: Callable[[list[Any]], object]) -> Damage:
    """The valid file with one column of the header's ``modules`` replaced (or removed, where
    ``change`` returns ``...``)."""

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        header, lines = _parts(document)
        value = change(header["modules"][key])
        if value is ...:
            del header["modules"][key]
        else:
            header["modules"][key] = value
        return cache_bytes(header, lines)

    return damage


def _module(change: Callable[[list[Any]], list[Any]]) -> Damage:
    """The valid file with ``[name, filename, mtime_ns, size]`` of ``a`` (which provides
    ITestPlugin) replaced in the header's columns.

    The details of ``a`` then claim no plugins, so if the entry were trusted, ``a`` would go
    missing from the results.
    """

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        changed = copy.deepcopy(document)
        changed["modules"]["a"][4] = []
        header, lines = _parts(changed)
        table = header["modules"]
        position = table["names"].index("a")
        values = change([table[key][position] for key in COLUMNS])
        for key, value in zip(COLUMNS, values):
            table[key][position] = value
        return cache_bytes(header, lines)

    return damage


def _detail_line(change: Callable[[list[Any]], str | bytes]) -> Damage:
    """The valid file with the detail line of ``a`` replaced by ``change(details)``, where
    ``details`` is what that line held, ``[docstring, plugins]``."""

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        header, lines = _parts(document)
        position = header["modules"]["names"].index("a")
        changed: list[str | bytes] = list(lines)
        changed[position] = change(json.loads(lines[position]))
        return cache_bytes(header, changed)

    return damage


def _details(change: Callable[[list[Any]], object]) -> Damage:
    """The valid file with the details of ``a`` replaced by ``change(details)`` as JSON.

    Where the replacement no longer names ITestPlugin, the module would go missing from the
    results if its line were trusted; where it still does, the line is one a query for
    ITestPlugin has to decode.
    """
    return _detail_line(lambda details: compact(change(details)))


def _file_lines(change: Callable[[list[bytes]], list[bytes]]) -> Damage:
    """The valid file, split at its newlines (the last piece being empty), changed and joined."""
    return lambda document, raw: b"\n".join(change(raw.split(b"\n")))


def _header_line(change: Callable[[bytes], bytes]) -> Damage:
    """The valid file with the bytes of its header line replaced by ``change(line)``."""
    return _file_lines(lambda lines: [change(lines[0]), *lines[1:]])


def _raw(data: bytes) -> Damage:
    return lambda document, raw: data


def _deep_modules(document: dict[str, Any], raw: bytes) -> bytes:
    header, lines = _parts(document)
    text = json.dumps({**header, "modules": "@"})
    text = text.replace('"@"', '{"names": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return "".join(f"{line}\n" for line in [text, *lines]).encode("ascii")


def _schema_1_file(document: dict[str, Any], raw: bytes) -> bytes:
    """What schema 1 made of ``document``: one JSON object, each module's stamp and details in
    one list, no newline."""
    old = {**document, "schema": 1}
    return json.dumps(old, separators=(",", ":"), sort_keys=True).encode("ascii")


def _schema_2_file(schema: int) -> Damage:
    """What schema 2 made of ``document``: the stamps as ``{name: [filename, mtime_ns,
    size]}``, then the detail lines (marked with ``schema``)."""

    def damage(document: dict[str, Any], raw: bytes) -> bytes:
        header, lines = _parts(document)
        modules = {name: entry[:3] for name, entry in document["modules"].items()}
        return cache_bytes({**header, "schema": schema, "modules": modules}, lines)

    return damage


def _foreign_module(document: dict[str, Any], raw: bytes) -> bytes:
    """A header in UTF-8 (not ASCII) naming a module that is not in the directory."""
    changed = copy.deepcopy(document)
    changed["modules"] = {"\u00e9": ["\u00e9.py", 1, 1, None, []], **changed["modules"]}
    header, lines = _parts(changed)
    text = json.dumps(header, ensure_ascii=False)
    return "".join(f"{line}\n" for line in [text, *lines]).encode("utf-8")


def _nested(depth: int) -> object:
    value: object = []
    for level in range(depth):
        value = [value, {"k": value}] if level % 7 == 0 else [value]
    return value


DAMAGES = [
    # The whole file.
    pytest.param(_raw(random.Random(1).randbytes(4096)), id="random-bytes"),
    pytest.param(_raw(b"\x00" * 64), id="nul-bytes"),
    pytest.param(_raw(b"\xff\xfe{\x00"), id="bad-utf16"),
    pytest.param(lambda document, raw: raw[: len(raw) // 2], id="truncated-half"),
    pytest.param(lambda document, raw: raw[:-1], id="missing-trailing-newline"),
    pytest.param(lambda document, raw: raw + b"\n", id="extra-trailing-newline"),
    pytest.param(_raw(b""), id="empty"),
    pytest.param(_raw(b"   \n"), id="whitespace"),
    pytest.param(_raw(b"\n\n\n"), id="blank-lines"),
    pytest.param(_raw(b"[]"), id="list"),
    pytest.param(_raw(b"42"), id="number"),
    pytest.param(_raw(b'"text"'), id="string"),
    pytest.param(_raw(b"null"), id="null"),
    pytest.param(_raw(b"NaN"), id="nan"),
    pytest.param(_raw(b"1" * 5000), id="huge-integer"),
    pytest.param(_raw(b"{}"), id="empty-object"),
    pytest.param(_raw(b"{}\n"), id="empty-object-line"),
    pytest.param(_raw(b"[" * 100_000), id="deep-list"),
    pytest.param(_raw(b'{"a":' * 100_000), id="deep-object"),
    pytest.param(_raw(b"[" * 100_000 + b"]" * 100_000), id="deep-list-closed"),
    pytest.param(_schema_1_file, id="schema-1-file"),
    pytest.param(lambda document, raw: _schema_1_file(document, raw) + b"\n", id="schema-1-line"),
    pytest.param(_schema_2_file(2), id="schema-2-file"),
    pytest.param(_schema_2_file(_cache.SCHEMA), id="schema-2-layout-marked-current"),
    # The header line.
    pytest.param(_header_line(lambda line: b""), id="header-empty"),
    pytest.param(_header_line(lambda line: b"not json"), id="header-not-json"),
    pytest.param(_header_line(lambda line: line[:-1]), id="header-unclosed"),
    pytest.param(_header_line(lambda line: line + b"x"), id="header-trailing-garbage"),
    pytest.param(_header_line(lambda line: line + line), id="header-twice"),
    pytest.param(_header_line(lambda line: b"[" + line + b"]"), id="header-in-a-list"),
    pytest.param(_header_line(lambda line: b"\x00" + line), id="header-nul"),
    pytest.param(
        _header_line(lambda line: line.replace(b'.plugins"', b'.plugins\xc3\xa9"')),
        id="header-non-ascii-package",
    ),
    pytest.param(
        _header_line(lambda line: line.replace(b'.plugins"', b'.plugins\xff"')),
        id="header-undecodable",
    ),
    pytest.param(_foreign_module, id="header-non-ascii-module"),
    pytest.param(_deep_modules, id="deep-modules"),
    pytest.param(_header(schema=0), id="schema-0"),
    pytest.param(_header(schema=_cache.SCHEMA - 1), id="schema-previous"),
    pytest.param(_header(schema=_cache.SCHEMA + 1), id="schema-future"),
    pytest.param(_header(schema=str(_cache.SCHEMA)), id="schema-string"),
    pytest.param(_header(schema=float(_cache.SCHEMA)), id="schema-float"),
    pytest.param(_header(schema=True), id="schema-true"),
    pytest.param(_header(schema=None), id="schema-null"),
    pytest.param(_header(schema=...), id="schema-missing"),
    pytest.param(_header(interpreter="cpython-27"), id="other-interpreter"),
    pytest.param(_header(interpreter=None), id="interpreter-null"),
    pytest.param(_header(interpreter=...), id="interpreter-missing"),
    pytest.param(_header(directory="/somewhere/else"), id="other-directory"),
    pytest.param(_header(directory="plugins"), id="relative-directory"),
    pytest.param(_header(directory=...), id="directory-missing"),
    pytest.param(_header(package="other.plugins"), id="other-package"),
    pytest.param(_header(package=None), id="package-null"),
    pytest.param(_header(environment="0" * 16), id="other-environment"),
    pytest.param(_header(environment=None), id="environment-null"),
    pytest.param(_header(environment=...), id="environment-missing"),
    pytest.param(_modules(...), id="modules-missing"),
    pytest.param(_modules({}), id="modules-empty"),
    pytest.param(_modules([]), id="modules-list"),
    pytest.param(_modules("a"), id="modules-string"),
    pytest.param(_modules(None), id="modules-null"),
    pytest.param(_modules({"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}}), id="modules-garbage"),
    # One column of the header's ``modules``.
    *(
        pytest.param(_column(key, change), id=f"{key}-{how}")
        for key in COLUMNS
        for how, change in [
            ("missing", lambda column: ...),
            ("null", lambda column: None),
            ("object", lambda column: dict(enumerate(column))),
            ("string", lambda column: "a"),
            ("short", lambda column: column[:-1]),
            ("long", lambda column: [*column, column[0]]),
        ]
    ),
    pytest.param(_column("names", lambda names: ["b", "b"]), id="names-duplicate"),
    # The name, file and stamp of one module.
    pytest.param(_module(lambda m: [7, *m[1:]]), id="name-int"),
    pytest.param(_module(lambda m: [None, *m[1:]]), id="name-null"),
    pytest.param(_module(lambda m: ["b", *m[1:]]), id="name-of-another"),
    pytest.param(_module(lambda m: ["ghost", *m[1:]]), id="name-of-none"),
    pytest.param(_module(lambda m: [m[0], 7, m[2], m[3]]), id="filename-int"),
    pytest.param(_module(lambda m: [m[0], None, m[2], m[3]]), id="filename-null"),
    pytest.param(_module(lambda m: [m[0], [m[1]], m[2], m[3]]), id="filename-list"),
    pytest.param(_module(lambda m: [m[0], "b.py", m[2], m[3]]), id="filename-other"),
    pytest.param(_module(lambda m: [m[0], m[1], str(m[2]), m[3]]), id="mtime-string"),
    pytest.param(_module(lambda m: [m[0], m[1], None, m[3]]), id="mtime-null"),
    pytest.param(_module(lambda m: [m[0], m[1], float(m[2]), m[3]]), id="mtime-float"),
    pytest.param(_module(lambda m: [m[0], m[1], True, m[3]]), id="mtime-true"),
    pytest.param(_module(lambda m: [m[0], m[1], [m[2]], m[3]]), id="mtime-list"),
    pytest.param(_module(lambda m: [m[0], m[1], m[2] + 1, m[3]]), id="mtime-other"),
    pytest.param(_module(lambda m: [*m[:3], float(m[3])]), id="size-float"),
    pytest.param(_module(lambda m: [*m[:3], str(m[3])]), id="size-string"),
    pytest.param(_module(lambda m: [*m[:3], True]), id="size-true"),
    pytest.param(_module(lambda m: [*m[:3], False]), id="size-false"),
    pytest.param(_module(lambda m: [*m[:3], -m[3]]), id="size-negative"),
    # The number and ends of the detail lines.
    pytest.param(_file_lines(lambda lines: [*lines[:-2], b""]), id="detail-line-missing"),
    pytest.param(_file_lines(lambda lines: [lines[0], b""]), id="detail-lines-missing"),
    pytest.param(_file_lines(lambda lines: [lines[0]]), id="header-line-alone"),
    pytest.param(
        _file_lines(lambda lines: [*lines[:-1], b'["x",[]]', b""]), id="detail-line-extra"
    ),
    pytest.param(_file_lines(lambda lines: [lines[0], b"", *lines[1:]]), id="blank-line-inserted"),
    pytest.param(
        _file_lines(lambda lines: [lines[0], lines[1] + lines[2], b""]), id="detail-lines-joined"
    ),
    # The details of one module, no longer naming what it provides.
    pytest.param(_details(lambda d: None), id="details-null"),
    pytest.param(_details(lambda d: {"docstring": d[0], "plugins": []}), id="details-object"),
    pytest.param(_details(lambda d: d[0]), id="details-string"),
    pytest.param(_details(lambda d: 5), id="details-number"),
    pytest.param(_details(lambda d: []), id="details-empty-list"),
    pytest.param(_details(lambda d: [d[0]]), id="details-missing-field"),
    pytest.param(_details(lambda d: [d[0], [], None]), id="details-extra-field"),
    pytest.param(_details(lambda d: [5, []]), id="docstring-int"),
    pytest.param(_details(lambda d: [True, []]), id="docstring-true"),
    pytest.param(_details(lambda d: [[d[0]], []]), id="docstring-list"),
    pytest.param(_details(lambda d: [d[0], {}]), id="plugins-object"),
    pytest.param(_details(lambda d: [d[0], "Plugin"]), id="plugins-string"),
    pytest.param(_details(lambda d: [d[0], None]), id="plugins-null"),
    pytest.param(_details(lambda d: [d[0], [None]]), id="plugin-null"),
    pytest.param(_details(lambda d: [d[0], _nested(60)]), id="details-nested"),
    pytest.param(_detail_line(lambda d: ""), id="detail-empty"),
    pytest.param(_detail_line(lambda d: "not json"), id="detail-not-json"),
    pytest.param(_detail_line(lambda d: "NaN"), id="detail-nan"),
    pytest.param(_detail_line(lambda d: "1" * 5000), id="detail-huge-integer"),
    pytest.param(_detail_line(lambda d: "[" * 100_000), id="detail-deep-list"),
    pytest.param(_detail_line(lambda d: "[" * 100_000 + "]" * 100_000), id="detail-deep-closed"),
    # The details of one module, still naming what it provides.
    pytest.param(_details(lambda d: {"docstring": d[0], "plugins": d[1]}), id="named-object"),
    pytest.param(_details(lambda d: [d[1]]), id="named-missing-field"),
    pytest.param(_details(lambda d: [d[0], d[1], None]), id="named-extra-field"),
    pytest.param(_details(lambda d: [d[1], d[0]]), id="named-swapped-fields"),
    pytest.param(_details(lambda d: [5, d[1]]), id="named-docstring-int"),
    pytest.param(_details(lambda d: [[d[0]], d[1]]), id="named-docstring-list"),
    pytest.param(_details(lambda d: [float("nan"), d[1]]), id="named-docstring-nan"),
    pytest.param(_details(lambda d: [d[0], {"plugins": d[1]}]), id="named-plugins-object"),
    pytest.param(_details(lambda d: [d[0], _asked(d)]), id="named-plugins-string"),
    pytest.param(_details(lambda d: [d[0], d[1][0]]), id="named-plugins-flat"),
    pytest.param(_details(lambda d: [d[0], [None, *d[1]]]), id="named-plugin-null"),
    pytest.param(_details(lambda d: [d[0], [*d[1], _nested(60)]]), id="named-nested"),
    pytest.param(_details(lambda d: [d[0], [dict(zip("adpi", d[1][0]))]]), id="plugin-object"),
    pytest.param(_details(lambda d: [d[0], [d[1][0][:3]]]), id="plugin-missing-field"),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0], "x"]]]), id="plugin-extra-field"),
    pytest.param(_details(lambda d: [d[0], [[1, *d[1][0][1:]]]]), id="plugin-attribute-int"),
    pytest.param(_details(lambda d: [d[0], [[None, *d[1][0][1:]]]]), id="plugin-attribute-null"),
    pytest.param(_details(lambda d: [d[0], [[d[1][0][0], 3, *d[1][0][2:]]]]), id="plugin-doc-int"),
    pytest.param(
        _details(lambda d: [d[0], [[*d[1][0][:2], [1, 2], d[1][0][3]]]]), id="provided-ints"
    ),
    pytest.param(
        _details(lambda d: [d[0], [[*d[1][0][:2], _asked(d), d[1][0][3]]]]), id="provided-string"
    ),
    pytest.param(
        _details(lambda d: [d[0], [[*d[1][0][:3], "compat_plugin.IPlugin"]]]),
        id="interfaces-string",
    ),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0][:3], [True]]]]), id="interfaces-bools"),
    pytest.param(_detail_line(lambda d: compact(d)[:-1]), id="named-unclosed"),
    pytest.param(_detail_line(lambda d: compact(d) + "x"), id="named-trailing-garbage"),
    pytest.param(_detail_line(lambda d: compact(d) + compact(d)), id="named-twice"),
    pytest.param(
        _detail_line(lambda d: f"[{'1' * 5000},{compact(d[1])}]"), id="named-huge-integer"
    ),
    pytest.param(
        _detail_line(lambda d: "[" * 100_000 + json.dumps(_asked(d)) + "]" * 100_000),
        id="named-deep-list",
    ),
    pytest.param(
        _detail_line(lambda d: '{"a":' * 100_000 + json.dumps(_asked(d))), id="named-deep-object"
    ),
    pytest.param(
        _detail_line(lambda d: compact(d).replace("Module a.", "Module a.\x00")), id="named-nul"
    ),
    # Bytes that are not ASCII in a detail line.
    pytest.param(
        _detail_line(lambda d: compact(d).replace("Module a.", "Module \u00e0.")),
        id="detail-non-ascii",
    ),
    pytest.param(
        _detail_line(lambda d: compact(d).encode().replace(b"Module a.", b"Module a.\xff")),
        id="detail-undecodable",
    ),
    pytest.param(
        _detail_line(lambda d: compact(d).encode().replace(b"Module a.", b"Module \xc3.")),
        id="detail-truncated-utf8",
    ),
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

    damaged = damage(good, raw)
    assert damaged != raw
    path.write_bytes(damaged)
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
    path.write_bytes(dump_cache(forged))
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
    path.write_bytes(dump_cache(forged))
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    assert load_cache(path, ptree.plugins_dir, ptree.plugins_name) == good


# -- the stored forms as properties ---------------------------------------------------------------

PACKAGE = "some.plugins"
DIRECTORY = "/some/plugins"
ENVIRONMENT = "0123abcd-7"
EXPECTED = {
    "schema": _cache.SCHEMA,
    "interpreter": TAG,
    "directory": DIRECTORY,
    "package": PACKAGE,
    "environment": ENVIRONMENT,
}
ORIGIN = Origin("directory", path=DIRECTORY)


def _read(path: Path) -> _cache.StoredEntries:
    return read_entries(str(path), DIRECTORY, PACKAGE, ENVIRONMENT)


def _decoded(text: str) -> ModuleRecords | None:
    return decode(text, "pkg.m", ORIGIN)


def _records(module: str, details: list[Any]) -> ModuleRecords:
    """The records the documented details stand for, built here field by field."""
    plugins = tuple(
        PluginRecord(module, attribute, description, tuple(provided), tuple(interfaces), ORIGIN)
        for attribute, description, provided, interfaces in details[1]
    )
    return ModuleRecords(module, details[0], plugins, ORIGIN)


def test_stored_forms_reject_booleans_for_integers(tmp_path: Path) -> None:
    details = compact([None, [["Plugin", None, ["x.I"], ["x.I"]]]])
    assert entry_from(["a.py", 1, 1, details]) == Entry("a.py", 1, 1, details)
    assert entry_from(["a.py", True, 1, details]) is None
    assert entry_from(["a.py", 1, False, details]) is None
    assert entry_from(["a.py", 1.0, 1, details]) is None
    assert entry_from(("a.py", 1, 1, details)) is None

    path = tmp_path / "cache.json"
    stamps = {"a": ["a.py", 1, 1], "t": ["t.py", True, 1], "f": ["f.py", 1, False]}
    path.write_bytes(cache_bytes({**EXPECTED, "modules": columns(stamps)}, [details] * 3))
    stored = _read(path)
    assert stored.as_dict() == {"a": Entry("a.py", 1, 1, details)}
    assert stored.current(Candidate("a", "a.py", 1, 1)) == details
    assert stored.current(Candidate("t", "t.py", 1, 1)) is None
    assert stored.current(Candidate("f", "f.py", 1, 0)) is None

    assert _decoded(details) == _records("pkg.m", json.loads(details))
    assert _decoded(compact([None, [["Plugin", None, [True], ["x.I"]]]])) is None
    assert _decoded(compact([None, [["Plugin", None, ["x.I"], [1]]]])) is None
    assert _decoded(compact([False, []])) is None


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
_valid_details = st.tuples(st.none() | _text, _plugins).map(list)
_valid_stamps = st.tuples(
    _text,
    st.integers(min_value=-(2**63), max_value=2**64),
    st.integers(min_value=0, max_value=2**63),
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
def _spoiled_details(draw: st.DrawFn) -> list[Any]:
    """Valid details with one thing changed: a field, a plugin field, a name, the length."""
    details: list[Any] = draw(_valid_details)
    where = draw(st.sampled_from(["field", "plugin", "name", "length"]))
    if where in ("plugin", "name"):
        details[1].append(draw(_plugins.filter(bool))[0])
        plugin = draw(st.sampled_from(details[1]))
        if where == "plugin":
            plugin[draw(st.integers(0, 3))] = draw(_wrong)
        else:
            plugin[draw(st.integers(2, 3))].append(draw(_wrong))
    elif where == "length":
        if draw(st.booleans()):
            details.append(draw(_json))
        else:
            details.pop(draw(st.integers(0, 1)))
    else:
        details[draw(st.integers(0, 1))] = draw(_wrong)
    return details


@st.composite
def _spoiled_stamps(draw: st.DrawFn) -> list[Any]:
    """A valid ``[filename, mtime_ns, size]`` with one field of the wrong type."""
    stamp: list[Any] = draw(_valid_stamps)
    stamp[draw(st.integers(0, 2))] = draw(_wrong)
    return stamp


_detailish = st.one_of(
    _valid_details,
    _spoiled_details(),
    st.tuples(st.none() | _scalars, st.lists(_pluginish, max_size=3) | _scalars).map(list),
    st.lists(_json, max_size=4),
    _json,
)
_stampish = _valid_stamps | _spoiled_stamps()
_ascii_line = st.text(st.characters(max_codepoint=127, exclude_characters="\n"), max_size=40)
# Detail lines as a file may hold them: valid, of another shape, cut short, not JSON, not ASCII.
_ascii_detail_lines = st.one_of(
    _valid_details.map(compact),
    _detailish.map(compact),
    _valid_details.map(compact).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
    _ascii_line,
)
_detail_lines = _ascii_detail_lines | st.text(
    st.characters(codec="utf-8", exclude_characters="\n"), max_size=20
)


def _exactly_ours(header: object) -> bool:
    """Whether ``header`` is exactly that of a cache for DIRECTORY/PACKAGE/ENVIRONMENT, types
    included."""
    return type(header) is dict and all(
        type(header.get(key)) is type(value) and header.get(key) == value
        for key, value in EXPECTED.items()
    )


def _expected_modules(raw: bytes) -> dict[str, tuple[list[Any], str]] | None:
    """What the documented layout says ``raw`` holds: None unless its first line is a header for
    DIRECTORY/PACKAGE/ENVIRONMENT whose ``modules`` has four columns of one length n, ``names``
    being distinct strings, and whose ``checksum`` is the CRC-32 of the rest, followed by n
    ASCII lines, each ended by a newline; else each
    module's ``[filename, mtime_ns, size]`` (of any types) and detail line, by name."""
    first, _, rest = raw.partition(b"\n")
    try:
        header = json.loads(first)
    except (ValueError, RecursionError):
        return None
    if not _exactly_ours(header) or not isinstance(header.get("modules"), dict):
        return None
    checksum = header.get("checksum")
    if type(checksum) is not int or checksum != zlib.crc32(rest):
        return None
    table = [header["modules"].get(key) for key in COLUMNS]
    if not all(isinstance(column, list) for column in table) or not rest.isascii():
        return None
    names, files, mtimes, sizes = table
    lines = rest.decode("ascii").split("\n")
    trailing = lines.pop()
    if trailing and lines:  # the last of several lines is not ended by a newline
        return None
    if not all(len(column) == len(lines) for column in table):
        return None
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return None
    return {
        name: ([filename, mtime_ns, size], line)
        for name, filename, mtime_ns, size, line in zip(names, files, mtimes, sizes, lines)
    }


def _as_int(value: object) -> int:
    """An int equal to ``value`` where there is one (``True``, ``1.0``), else 0."""
    if isinstance(value, (bool, int)) or (isinstance(value, float) and value.is_integer()):
        return int(value)
    return 0


def _check_read(raw: bytes, path: Path, wanted: str) -> None:
    """``read_entries`` of ``raw`` (written to ``path``) holds exactly what the layout says: an
    Entry of the right types for every module with a well-formed stamp, and stored details only
    for candidates whose stamp is the recorded one, ints proper."""
    path.write_bytes(raw)
    stored = _read(path)
    expected = _expected_modules(raw) or {}
    entries = stored.as_dict()
    assert type(entries) is dict
    for name, entry in entries.items():
        assert type(name) is str
        assert type(entry) is Entry
        assert type(entry.filename) is str
        assert type(entry.mtime_ns) is int
        assert type(entry.size) is int
        assert type(entry.details) is str
    assert entries == {
        name: Entry(stamp[0], stamp[1], stamp[2], line)
        for name, (stamp, line) in expected.items()
        if well_formed_stamp(stamp)
    }
    assert set(stored.names()) == set(expected)
    assert len(stored) == len(expected)
    for name, (stamp, line) in expected.items():
        assert stored.get(name) == entries.get(name)
        filename = stamp[0] if isinstance(stamp[0], str) else "a.py"
        candidate = Candidate(name, filename, _as_int(stamp[1]), _as_int(stamp[2]))
        if not well_formed_stamp(stamp):
            assert stored.current(candidate) is None
            assert stored.current(candidate, wanted) is None
            continue
        assert stored.current(candidate) == line
        assert stored.current(candidate, wanted) == (line if wanted in line else "")
        assert stored.current(candidate._replace(mtime_ns=candidate.mtime_ns + 1)) is None
        assert stored.current(candidate._replace(size=candidate.size + 1)) is None
        assert stored.current(candidate._replace(filename=filename + "c")) is None


@st.composite
def _cache_files(draw: st.DrawFn) -> bytes:
    """A cache file for DIRECTORY/PACKAGE/ENVIRONMENT, often spoiled (each kind of damage in
    about one file in four): in its header fields, its columns, its detail lines, their number
    or the end of the last one."""

    def sometimes() -> bool:
        return draw(st.sampled_from([False, False, False, True]))

    header: dict[str, object] = dict(EXPECTED)
    stamps = draw(st.dictionaries(st.text(max_size=8), _stampish, max_size=5))
    table: dict[str, Any] = columns(stamps)
    spoiled = draw(st.sets(st.sampled_from([*COLUMNS, "extra"]), max_size=2))
    for key in spoiled if sometimes() else []:
        how = draw(st.sampled_from(["drop", "add", "remove", "replace", "duplicate"]))
        column = table.get(key)
        if how == "remove" or not isinstance(column, list):
            table.pop(key, None)
        elif how == "drop" and column:
            column.pop(draw(st.integers(0, len(column) - 1)))
        elif how == "add":
            column.append(draw(_json))
        elif how == "duplicate" and column:
            column.append(column[0])
        else:
            table[key] = draw(_json)
    header["modules"] = draw(_json) if sometimes() and sometimes() else table
    near = st.sampled_from([True, 1, 2, 3, 3.0, "3", TAG, DIRECTORY + "/", PACKAGE, ENVIRONMENT])
    spoiled = draw(st.sets(st.sampled_from([*EXPECTED, "extra"]), max_size=2))
    for key in spoiled if sometimes() else []:
        if key in header and draw(st.booleans()):
            del header[key]
        else:
            header[key] = draw(near | _json)
    lines = [draw(_ascii_detail_lines) for _ in stamps]
    if sometimes():
        drop: bool = draw(st.booleans())
        if lines and drop:
            lines.pop(draw(st.integers(0, len(lines) - 1)))
        else:
            lines.insert(draw(st.integers(0, len(lines))), draw(_ascii_detail_lines))
    if lines and sometimes():
        lines[draw(st.integers(0, len(lines) - 1))] = draw(_detail_lines)
    raw = cache_bytes(header, lines)
    return raw[:-1] if sometimes() else raw


_entries = st.builds(
    Entry,
    _text,
    st.integers(min_value=-(2**63), max_value=2**64),
    st.integers(min_value=0, max_value=2**63),
    _valid_details.map(compact) | _detailish.map(compact) | _ascii_line,
)


@st.composite
def _mutated_files(draw: st.DrawFn) -> bytes:
    """A valid file with a few bytes replaced, inserted or deleted."""
    entries = draw(st.dictionaries(_text, _entries, min_size=1, max_size=4))
    data = bytearray(encode(DIRECTORY, PACKAGE, ENVIRONMENT, entries))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from(["replace", "insert", "delete"]))
        if what == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            piece = draw(st.binary(min_size=1, max_size=3) | st.sampled_from([b"\n", b"1", b"]"]))
            data[where : where + (len(piece) if what == "replace" else 0)] = piece
    return bytes(data)


_wanted = st.one_of(_text.map(compact), st.sampled_from(['""', '"x"', "[", "null"]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.binary(max_size=512) | _mutated_files(), wanted=_wanted)
def test_read_entries_survives_any_bytes(tmp_path: Path, data: bytes, wanted: str) -> None:
    _check_read(data, tmp_path / "cache.json", wanted)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=300,
)
@given(
    raw=_cache_files(),
    cut=st.sampled_from([None, None, None]) | st.integers(min_value=0, max_value=400),
    wanted=_wanted,
)
def test_read_entries_keeps_exactly_the_well_stamped_entries(
    tmp_path: Path, raw: bytes, cut: int | None, wanted: str
) -> None:
    _check_read(raw if cut is None else raw[:cut], tmp_path / "cache.json", wanted)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(entries=st.dictionaries(_text, _entries, max_size=6))
def test_encode_then_read_entries_round_trips(tmp_path: Path, entries: dict[str, Entry]) -> None:
    raw = encode(DIRECTORY, PACKAGE, ENVIRONMENT, entries)
    header, lines = split_cache(raw)
    assert _exactly_ours(header)
    names = sorted(entries)
    assert header["modules"] == columns(
        {name: [entries[name].filename, entries[name].mtime_ns, entries[name].size]
         for name in names}
    )
    assert lines == [entries[name].details for name in names]

    path = tmp_path / "cache.json"
    path.write_bytes(raw)
    assert _read(path).as_dict() == entries
    for name, entry in entries.items():
        assert _read(path).current(Candidate(name, *entry[:3])) == entry.details
    assert read_entries(str(path), DIRECTORY, "other.plugins", ENVIRONMENT).as_dict() == {}
    assert read_entries(str(path), "/other/plugins", PACKAGE, ENVIRONMENT).as_dict() == {}
    assert read_entries(str(path), DIRECTORY, PACKAGE, "f" * 16).as_dict() == {}


@settings(max_examples=500)
@given(
    item=st.one_of(
        st.tuples(_stampish, _detail_lines | _scalars).map(lambda pair: [*pair[0], pair[1]]),
        st.tuples(
            st.text(max_size=8) | _scalars,
            st.integers() | _scalars,
            st.integers(min_value=0) | _scalars,
            _detail_lines | _scalars,
        ).map(list),
        st.lists(_json, max_size=5),
        _json,
    )
)
def test_entry_from_is_exactly_the_stored_list_form(item: object) -> None:
    """``[filename, mtime_ns, size, details]``: a well-formed stamp, then text (which is
    checked only when decoded)."""
    entry = entry_from(item)
    if (
        isinstance(item, list)
        and len(item) == 4
        and well_formed_stamp(item[:3])
        and isinstance(item[3], str)
    ):
        assert type(entry) is Entry
        assert entry == Entry(*item)
    else:
        assert entry is None


@settings(max_examples=800, deadline=None)
@given(
    text=st.one_of(
        _detail_lines,
        st.text(max_size=60),
        st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),
    )
)
def test_decode_accepts_exactly_the_documented_details(text: str) -> None:
    decoded = _decoded(text)
    try:
        details = json.loads(text)
    except (ValueError, RecursionError):
        assert decoded is None
        return
    if well_formed_details(details):
        assert decoded == _records("pkg.m", details)
    else:
        assert decoded is None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(details=st.lists(_valid_details, min_size=1, max_size=4), asked=_text)
def test_details_passed_over_never_record_the_asked_interface(
    tmp_path: Path, details: list[list[Any]], asked: str
) -> None:
    """Stored details are passed over for a query (``""``) only if they do not record the asked
    interface; those that do are handed out whole."""
    entries = {f"m{n}": Entry(f"m{n}.py", n, n, compact(item)) for n, item in enumerate(details)}
    path = tmp_path / "cache.json"
    path.write_bytes(encode(DIRECTORY, PACKAGE, ENVIRONMENT, entries))
    stored = _read(path)
    for (name, entry), item in zip(entries.items(), details):
        recorded = {interface for plugin in item[1] for interface in [*plugin[2], *plugin[3]]}
        found = stored.current(Candidate(name, *entry[:3]), compact(asked))
        if asked in recorded:
            assert found == entry.details
        else:
            assert found in ("", entry.details)
        for interface in recorded:
            assert stored.current(Candidate(name, *entry[:3]), compact(interface)) == entry.details


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
    path.write_bytes(dump_cache(document))
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
        path.write_bytes(dump_cache(forged))
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
    path.write_bytes(dump_cache(forged))
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "0000000000000001"),
        ("a", "e8b7be4300620062"),
        ("foobar", "9ef61f9508ab027a"),
    ],
)
def test_digest_is_crc32_then_adler32(text: str, expected: str) -> None:
    assert crc_adler(text) == expected
    assert _cache.digest(text) == expected


@given(text=st.text() | st.sampled_from(["/x/\udcff", "/\u00e9t\u00e9/plugins"]))
def test_digest_agrees_with_the_documented_composition(text: str) -> None:
    assert _cache.digest(text) == crc_adler(text)


def test_fallback_file_is_named_by_the_digest_of_the_absolute_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(_cache.fallback_path("plugins"))
    assert name == f"{crc_adler(str(tmp_path / 'plugins'))}.{TAG}.json"
    digest, interpreter, suffix = name.split(".", 2)
    assert len(digest) == 16
    assert set(digest) <= set("0123456789abcdef")
    assert (interpreter, suffix) == tuple(f"{TAG}.json".split(".", 1))
    assert _cache.fallback_path("plugins") == _cache.fallback_path(str(tmp_path / "plugins"))


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
