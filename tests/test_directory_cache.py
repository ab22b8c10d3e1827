"""A plugin directory's cache (``compat_plugin._directory_file``, ``_directory_cache``): its
format, what it trusts, when an entry is read again, where it is written, and when.

Everything here runs against real files: plugin packages written to disk, caches written by the
library itself and then damaged or edited, fresh interpreters standing in for later processes,
distributions built and installed by pip.  Runs as an unprivileged user are made by a child
interpreter that gives up root before it touches the plugin package (the interpreter may live
where that user cannot read, so it cannot be started as that user).
"""

from __future__ import annotations

import copy
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import json
import logging
import os
import py_compile
import random
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_plugin import _directory_cache, _directory_file, _scan, getPlugins
from compat_plugin._directories import Listing
from compat_plugin._directory_file import encode, read_entries
from compat_plugin._entries import Entry
from compat_plugin._records import Stamp
from compat_plugin.testing import PluginPackage, install_wheels

from .conftest import (
    CACHE_NAME,
    COLUMNS,
    DIRECTORY_SCHEMA,
    INTERFACES,
    PLUGINS_INIT,
    AskedFinder,
    Install,
    PluginTree,
    ProvidingFinder,
    StoredCache,
    Venv,
    cache_beside,
    cache_per_user,
    disk_modules,
    identity,
    open_to_everyone,
    plugin_source,
    read_cache,
    run_python,
    snapshot,
    strays,
    user_cache,
    write,
)

TAG = sys.implementation.cache_tag
NOBODY = 65534
IPLUGIN_NAMES = ["compat_plugin.IPlugin", "twisted.plugin.IPlugin"]
OFFLINE = ("--no-deps", "--no-index", "--no-build-isolation")

_serial = itertools.count()


# -- plugin packages ---------------------------------------------------------------------------


def counted(tag: str, interface: str = "ITestPlugin") -> str:
    """A plugin module that notes its import in ``{pkg}.counter.imports``."""
    return plugin_source(tag, interface, counted=True)


def conditional(dependency: str, tag: str = "cond") -> str:
    """A counted plugin module whose one plugin exists only where ``dependency`` imports."""
    return (
        f'"""Offers {tag} where {dependency} imports."""\n'
        "from zope.interface import implementer\n"
        "from compat_plugin import IPlugin\n"
        "from {pkg} import counter\n"
        "from {pkg}.ifaces import ITestPlugin\n"
        'counter.imports.append(__name__.rpartition(".")[2])\n'
        "try:\n"
        f"    import {dependency}\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    @implementer(IPlugin, ITestPlugin)\n"
        "    class Conditional:\n"
        f"        tag = {tag!r}\n"
        "\n"
        "    plugin = Conditional()\n"
    )


@pytest.fixture
def ptree(tree: PluginTree) -> PluginTree:
    """A tree with a counter, whose plugin ``a`` provides ITestPlugin and ``b`` ITestPlugin2."""
    tree.write("counter.py", "imports = []\n")
    tree.plugin("a", counted("a", "ITestPlugin"))
    tree.plugin("b", counted("b", "ITestPlugin2"))
    return tree


def tags(tree: PluginTree, interface: str) -> list[str]:
    """The tags of what getPlugins yields for ``interface`` (a name in the tree's ifaces)."""
    found = getPlugins(getattr(tree.ifaces(), interface), tree.package())
    return [plugin.tag for plugin in found]


def loaded(package: str) -> set[str]:
    """Short names of the plugin modules of ``package`` currently imported."""
    prefix = f"{package}."
    return {name[len(prefix):] for name in sys.modules if name.startswith(prefix)}


def imports(tree: PluginTree) -> list[str]:
    """The plugin modules imported since the tree's counter module was (re)imported."""
    counter = importlib.import_module(f"{tree.name}.counter")
    found: list[str] = counter.imports
    return list(found)


def beside(tree: PluginTree) -> Path:
    return cache_beside(tree.plugins_dir)


def stored(tree: PluginTree) -> StoredCache:
    """The tree's cache beside its plugins, checked to be exactly the documented format."""
    return read_cache(beside(tree), tree.plugins_dir, tree.plugins_name)


def fresh(tree: PluginTree) -> StoredCache:
    """That cache, checked to describe exactly the modules now on disk."""
    document = stored(tree)
    assert document.stamps == disk_modules(tree.plugins_dir)
    return document


def directory_caches(root: Path) -> list[Path]:
    """The plugin-directory caches in the per-user cache ``root`` (its ``entry-points/``
    indexes aside)."""
    return sorted(root.glob("*.json"))


def noisy(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def compact(value: object) -> str:
    """``value`` as a detail line: compact, ASCII-only JSON."""
    return json.dumps(value, separators=(",", ":"))


def columns(stamps: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The header's ``modules`` for ``{name: [filename, mtime_ns, size]}``, in that order."""
    return {
        "names": list(stamps),
        "files": [stamp[0] for stamp in stamps.values()],
        "mtimes": [stamp[1] for stamp in stamps.values()],
        "sizes": [stamp[2] for stamp in stamps.values()],
    }


def cache_bytes(header: object, details: Sequence[str | bytes], *, seal: bool = True) -> bytes:
    """A cache file laid out as documented: ``header`` as a line of compact JSON, then the
    detail lines (bytes as they are, text in UTF-8), each ended by a newline.

    A header without ``checksum`` gets, with ``seal``, the one the documented rule gives (the
    CRC-32 of the header's text, a newline and these lines), as its last member; one that has
    it keeps it, so a file changed after the fact carries the old one.
    """
    block = b"".join(
        (line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in details
    )
    if seal and isinstance(header, dict) and "checksum" not in header:
        return sealed_file(header, block)
    return json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n" + block


def sealed_file(header: dict[str, Any], details: bytes) -> bytes:
    """A cache file of ``header``, its checksum made as documented (replacing any it has),
    and the ``details`` that follow it."""
    fields = {key: value for key, value in header.items() if key != "checksum"}
    text = json.dumps(fields, separators=(",", ":")).encode("ascii")
    checksum = zlib.crc32(text + b"\n" + details)
    fields["checksum"] = checksum
    return json.dumps(fields, separators=(",", ":")).encode("ascii") + b"\n" + details


def forged(good: StoredCache, *, stamps: dict[str, list[Any]] | None = None,
           details: dict[str, list[Any]] | None = None,
           missing: dict[str, list[str]] | None = None) -> bytes:
    """A consistent cache file (its checksum that of its own lines) for ``good``'s directory,
    with the modules' stamps, details and missing imports replaced where given."""
    stamps = good.stamps if stamps is None else stamps
    details = good.details if details is None else details
    header = {key: value for key, value in good.header.items()
              if key not in ("modules", "missing", "checksum")}
    header["modules"] = columns(stamps)
    header["missing"] = good.missing if missing is None else missing
    return cache_bytes(header, [compact(details[name]) for name in stamps])


# -- child interpreters ------------------------------------------------------------------------

_CHILD = """
import importlib, json, logging, os, sys
# The working directory is not part of any scenario here.
sys.path[:] = [entry for entry in sys.path if entry != ""]
import compat_plugin
from compat_plugin import getPlugins

assert compat_plugin.__file__.startswith(@LIBRARY@), compat_plugin.__file__

if @DROP@ is not None and os.geteuid() == 0:
    # Everything the run needs from the interpreter's own directories (which the unprivileged
    # user may not be able to read) is imported first, by one discovery over a package of no
    # directories, which reads the installed metadata of every sys.path entry and, with
    # writing off, writes nothing; only then are privileges dropped.
    import types
    from compat_plugin import discover
    from compat_plugin._resolver import forget_state

    writes = os.environ.get("COMPAT_PLUGIN_NO_CACHE_WRITE")
    os.environ["COMPAT_PLUGIN_NO_CACHE_WRITE"] = "1"
    unused = types.ModuleType("compat_plugin_unused_group")
    unused.__path__ = []
    discover(unused)
    if writes is None:
        del os.environ["COMPAT_PLUGIN_NO_CACHE_WRITE"]
    else:
        os.environ["COMPAT_PLUGIN_NO_CACHE_WRITE"] = writes
    forget_state()
    os.setgroups([])
    os.setgid(@DROP@)
    os.setuid(@DROP@)

LOGS = []


class _Keep(logging.Handler):
    def emit(self, record):
        LOGS.append([record.levelname, record.getMessage()])


_logger = logging.getLogger("compat_plugin")
_logger.addHandler(_Keep())
_logger.setLevel(logging.DEBUG)

package = importlib.import_module(@PLUGINS@)
ifaces = importlib.import_module(@IFACES@)
counter = importlib.import_module(@COUNTER@) if @COUNTER@ else None


def tags(interface):
    found = getPlugins(getattr(ifaces, interface), package)
    return [getattr(plugin, @ATTRIBUTE@) for plugin in found]


def loaded():
    prefix = package.__name__ + "."
    return sorted(name[len(prefix):] for name in sys.modules if name.startswith(prefix))


out = {"uid": os.geteuid(), "gid": os.getegid(), "groups": os.getgroups()}
"""

_CHILD_FOOTER = """
out["logs"] = LOGS
out.setdefault("loaded", loaded())
out["imports"] = list(counter.imports) if counter else None
print(json.dumps(out))
"""

LIBRARY = os.path.dirname(os.path.dirname(os.path.abspath(_directory_cache.__file__)))


def run_child(
    body: str,
    *,
    plugins: str,
    ifaces: str,
    path: Sequence[Path],
    counter: str | None = None,
    attribute: str = "tag",
    env: dict[str, str] | None = None,
    drop_to: int | None = None,
    python: Path | None = None,
) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter (``python``, else this one) with ``path`` in front
    of ``sys.path``, and return the ``out`` dict it fills in.

    The body sees ``package`` and ``ifaces`` (the modules named ``plugins`` and ``ifaces``),
    ``counter``, ``tags(interface_name)`` (each plugin's ``attribute``), ``loaded()`` and
    ``out``; ``out["logs"]`` gets every record of the ``compat_plugin`` logger,
    ``out["loaded"]`` (unless the body set it) the plugin modules imported by the end.
    With ``drop_to``, a child started as root becomes that user (uid, gid, no supplementary
    groups) before it imports the plugin package.
    """
    values = {"@DROP@": drop_to, "@PLUGINS@": plugins, "@IFACES@": ifaces,
              "@COUNTER@": counter, "@ATTRIBUTE@": attribute,
              "@LIBRARY@": os.path.dirname(_directory_cache.__file__)}
    code = _CHILD
    for placeholder, value in values.items():
        code = code.replace(placeholder, repr(value))
    code += textwrap.dedent(body) + _CHILD_FOOTER
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    environment.update(env or {})
    environment["PYTHONPATH"] = os.pathsep.join([*map(str, path), LIBRARY])
    result = subprocess.run(
        [str(python or sys.executable), "-c", code], env=environment, capture_output=True,
        text=True, timeout=300,
    )
    assert result.returncode == 0, f"child failed:\n{result.stdout}\n{result.stderr}"
    document: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return document


def run_tree(tree: PluginTree, body: str, **options: Any) -> dict[str, Any]:
    """``run_child`` over the tree's plugin package, with its root first on ``sys.path``."""
    path = [tree.root, *options.pop("path", ())]
    options.setdefault("counter", f"{tree.name}.counter")
    return run_child(body, plugins=tree.plugins_name, ifaces=f"{tree.name}.ifaces", path=path,
                     **options)


def levels(out: dict[str, Any]) -> set[str]:
    return {level for level, _ in out["logs"]}


def problems(out: dict[str, Any]) -> list[list[str]]:
    return [log for log in out["logs"] if log[0] not in ("DEBUG", "INFO")]


def unwritable_notes(out: dict[str, Any]) -> list[list[str]]:
    return [log for log in out["logs"] if "not writable" in log[1]]


# == The format =================================================================================


def test_cache_is_json_lines_beside_the_plugins(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]

    assert ptree.cache_files() == [beside(ptree)]
    document = fresh(ptree)
    header = document.header
    assert header["schema"] == _directory_file.SCHEMA == DIRECTORY_SCHEMA == 6
    assert header["interpreter"] == TAG
    # Modules in name order, each with its file and stamp; line n describes module n.
    assert header["modules"]["names"] == ["a", "b"]
    assert document.stamps["a"][0] == "a.py"
    assert header["missing"] == {}
    description, plugins, unexported = document.details["a"]
    assert description == "Plugin module a."
    assert unexported == []
    [[attribute, plugin_doc, provided, interfaces]] = plugins
    assert (attribute, plugin_doc) == ("plugin", None)
    assert provided == ["compat_plugin.IPlugin", f"{ptree.name}.ifaces.ITestPlugin"]
    assert f"{ptree.name}.ifaces.ITestPlugin" in interfaces
    assert f"{ptree.name}.ifaces.ITestPlugin2" not in interfaces
    assert set(IPLUGIN_NAMES) <= set(interfaces)

    everything = [*ptree.root.rglob("*"), *user_cache().rglob("*")]
    assert not [path for path in everything if path.name == "dropin.cache"]
    assert directory_caches(user_cache()) == []


def test_a_module_without_plugins_records_the_classes_it_meant_to_export(
    ptree: PluginTree,
) -> None:
    ptree.plugin("maker", (
        "from zope.interface import implementer\n"
        "from compat_plugin import IPlugin\n"
        "from {pkg}.ifaces import ITestPlugin\n"
        "@implementer(IPlugin, ITestPlugin)\n"
        "class Maker:\n"
        "    pass\n"
    ))
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert fresh(ptree).details["maker"] == [None, [], ["Maker"]]


def test_the_format_is_documented_in_the_module_docstring(ptree: PluginTree) -> None:
    """The docstring names every field a written file has, says what an entry records, and
    when it is read again."""
    doc = _directory_file.__doc__ or ""
    assert tags(ptree, "ITestPlugin") == ["a"]
    header = stored(ptree).header
    for key in [*header, *COLUMNS]:
        assert f'"{key}"' in doc, key
    assert f'"schema": {DIRECTORY_SCHEMA}' in doc
    assert '"environment"' not in doc
    flat = " ".join(doc.split())
    # What an entry records: the module's file and stamp, its plugins, its failed imports.
    for words in ("``st_mtime_ns``", "``sizes[n]``", "[classes implementing IPlugin",
                  "could find (an optional dependency)"):
        assert words in flat, words
    # When it is read again.
    for words in ("with the recorded stamp", "its time cut to whole seconds",
                  "none of its missing names has become importable",
                  "then the module is scanned again", "not other distributions being installed"):
        assert words in flat, words


def test_a_schema_3_cache_is_ignored_and_rewritten(ptree: PluginTree) -> None:
    """What releases writing schema 3 left: an ``environment`` fingerprint, details without
    unexported classes.  Its stamps match, its details lie; none of it is used."""
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    other = f"{ptree.name}.ifaces.ITestPlugin"
    old_header = {
        "schema": 3, "interpreter": TAG, "directory": os.path.realpath(ptree.plugins_dir),
        "package": ptree.plugins_name, "environment": "0123abcd89ef4567-3",
        "modules": columns(good.stamps),
    }
    old_lines = [compact(["Module a.", []]),
                 compact(["Module b.", [["plugin", None, [other], [other, *IPLUGIN_NAMES]]]])]
    beside(ptree).write_bytes(cache_bytes(old_header, old_lines))
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert sorted(imports(ptree)) == ["a", "b"]
    assert stored(ptree) == good


# == Damaged caches =============================================================================

Damage = Callable[[StoredCache, bytes], bytes]


def layout(good: StoredCache) -> tuple[dict[str, Any], list[str]]:
    """The header (with its checksum) and the detail lines of ``good``, as written."""
    return dict(good.header), [compact(good.details[name]) for name in good.stamps]


def _asked(details: list[Any]) -> str:
    """The name of ITestPlugin as recorded in the details of ``a``."""
    [name] = [name for name in details[1][0][2] if name.endswith(".ifaces.ITestPlugin")]
    assert isinstance(name, str)
    return name


def _header(**changes: object) -> Damage:
    """The valid file with header fields replaced (or removed, for ``...``)."""

    def damage(good: StoredCache, raw: bytes) -> bytes:
        header, lines = layout(good)
        if "checksum" not in changes:  # sealed again: only the shapes can tell
            del header["checksum"]
        for key, value in changes.items():
            if value is ...:
                del header[key]
            else:
                header[key] = value
        return cache_bytes(header, lines, seal="checksum" not in changes)

    return damage


def _column(key: str, change: Callable[[list[Any]], object]) -> Damage:
    """The valid file with one column of the header's ``modules`` replaced or added (or
    removed, where ``change`` returns ``...``)."""

    def damage(good: StoredCache, raw: bytes) -> bytes:
        header, lines = layout(good)
        del header["checksum"]  # sealed again: only the shapes can tell
        header["modules"] = copy.deepcopy(header["modules"])
        value = change(header["modules"].get(key))
        if value is ...:
            del header["modules"][key]
        else:
            header["modules"][key] = value
        return cache_bytes(header, lines)

    return damage


def _module(change: Callable[[list[Any]], list[Any]]) -> Damage:
    """A consistent file whose ``a`` (which provides ITestPlugin) claims no plugins, with
    ``[name, filename, mtime_ns, size]`` of ``a`` replaced in the header's columns: if the
    entry were trusted, ``a`` would go missing from the results."""

    def damage(good: StoredCache, raw: bytes) -> bytes:
        details = {**good.details, "a": ["Plugin module a.", [], []]}
        header = json.loads(forged(good, details=details).split(b"\n")[0])
        del header["checksum"]  # sealed again: only the entry's own check can tell
        lines = [compact(details[name]) for name in good.stamps]
        table = header["modules"]
        position = table["names"].index("a")
        values = change([table[key][position] for key in COLUMNS])
        for key, value in zip(COLUMNS, values):
            table[key][position] = value
        return cache_bytes(header, lines)

    return damage


def _missing(value: object, hide: bool = False) -> Damage:
    """The valid file with ``missing`` replaced; with ``hide``, consistently, and ``a``
    claiming no plugins (so ``a`` goes missing from the results unless it is scanned)."""

    def damage(good: StoredCache, raw: bytes) -> bytes:
        if hide:
            details = {**good.details, "a": ["Plugin module a.", [], []]}
            header = json.loads(forged(good, details=details).split(b"\n")[0])
            lines = [compact(details[name]) for name in good.stamps]
        else:
            header, lines = layout(good)
        del header["checksum"]  # sealed again: only the shapes can tell
        if value is ...:
            del header["missing"]
        else:
            header["missing"] = value
        return cache_bytes(header, lines)

    return damage


def _detail_line(change: Callable[[list[Any]], str | bytes]) -> Damage:
    """The valid file with the detail line of ``a`` replaced by ``change(details)``."""

    def damage(good: StoredCache, raw: bytes) -> bytes:
        header, lines = layout(good)
        position = header["modules"]["names"].index("a")
        changed: list[str | bytes] = list(lines)
        changed[position] = change(good.details["a"])
        return cache_bytes(header, changed)

    return damage


def _details(change: Callable[[list[Any]], object]) -> Damage:
    """The valid file with the details of ``a`` replaced by ``change(details)`` as JSON."""
    return _detail_line(lambda details: compact(change(details)))


def _file_lines(change: Callable[[list[bytes]], list[bytes]]) -> Damage:
    """The valid file, split at its newlines (the last piece being empty), changed and joined."""
    return lambda good, raw: b"\n".join(change(raw.split(b"\n")))


def _header_line(change: Callable[[bytes], bytes]) -> Damage:
    """The valid file with the bytes of its header line replaced by ``change(line)``."""
    return _file_lines(lambda lines: [change(lines[0]), *lines[1:]])


def _raw(data: bytes) -> Damage:
    return lambda good, raw: data


def _deep_modules(good: StoredCache, raw: bytes) -> bytes:
    header, lines = layout(good)
    text = json.dumps({**header, "modules": "@"})
    text = text.replace('"@"', '{"names": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return "".join(f"{line}\n" for line in [text, *lines]).encode("ascii")


def _schema_1_file(good: StoredCache, raw: bytes) -> bytes:
    """What schema 1 made: one JSON object, each module's stamp and details in one list."""
    old = {
        **{k: v for k, v in good.header.items() if k not in ("modules", "missing", "checksum")},
        "schema": 1,
        "modules": {name: [*good.stamps[name], *good.details[name][:2]] for name in good.stamps},
    }
    return json.dumps(old, separators=(",", ":"), sort_keys=True).encode("ascii")


def _schema_2_file(schema: int) -> Damage:
    """What schema 2 made: the stamps as ``{name: [filename, mtime_ns, size]}``, then detail
    lines of two fields (marked with ``schema``)."""

    def damage(good: StoredCache, raw: bytes) -> bytes:
        header, _ = layout(good)
        del header["checksum"], header["missing"]
        lines = [compact(good.details[name][:2]) for name in good.stamps]
        return cache_bytes({**header, "schema": schema, "modules": good.stamps}, lines)

    return damage


def _schema_3_file(good: StoredCache, raw: bytes) -> bytes:
    """What schema 3 made: the columns, an ``environment``, detail lines of two fields."""
    header, _ = layout(good)
    del header["checksum"], header["missing"]
    header.update(schema=3, environment="0123abcd89ef4567-3")
    return cache_bytes(header, [compact(good.details[name][:2]) for name in good.stamps])


def _foreign_module(good: StoredCache, raw: bytes) -> bytes:
    """A header in UTF-8 (not ASCII) naming a module that is not in the directory."""
    stamps = {"\u00e9": ["\u00e9.py", 1, 1], **good.stamps}
    details = {"\u00e9": [None, [], []], **good.details}
    header = json.loads(forged(good, stamps=stamps, details=details).split(b"\n")[0])
    lines = [compact(details[name]) for name in stamps]
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
    pytest.param(lambda good, raw: raw[: len(raw) // 2], id="truncated-half"),
    pytest.param(lambda good, raw: raw[:-1], id="missing-trailing-newline"),
    pytest.param(lambda good, raw: raw + b"\n", id="extra-trailing-newline"),
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
    # Earlier layouts.
    pytest.param(_schema_1_file, id="schema-1-file"),
    pytest.param(lambda good, raw: _schema_1_file(good, raw) + b"\n", id="schema-1-line"),
    pytest.param(_schema_2_file(2), id="schema-2-file"),
    pytest.param(_schema_2_file(DIRECTORY_SCHEMA), id="schema-2-layout-marked-current"),
    pytest.param(_schema_3_file, id="schema-3-file"),
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
    pytest.param(_header(schema=DIRECTORY_SCHEMA - 1), id="schema-previous"),
    pytest.param(_header(schema=DIRECTORY_SCHEMA + 1), id="schema-future"),
    pytest.param(_header(schema=str(DIRECTORY_SCHEMA)), id="schema-string"),
    pytest.param(_header(schema=float(DIRECTORY_SCHEMA)), id="schema-float"),
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
    pytest.param(_header(package=...), id="package-missing"),
    pytest.param(_header(checksum=...), id="checksum-missing"),
    pytest.param(_header(checksum=True), id="checksum-true"),
    pytest.param(_header(checksum="0"), id="checksum-string"),
    pytest.param(_header(modules=...), id="modules-missing"),
    pytest.param(_header(modules={}), id="modules-empty"),
    pytest.param(_header(modules=[]), id="modules-list"),
    pytest.param(_header(modules="a"), id="modules-string"),
    pytest.param(_header(modules=None), id="modules-null"),
    pytest.param(_header(modules={"a": {"b": {"c": [1, [2, {"d": None}]]}}}),
                 id="modules-garbage"),
    # The imports each module's scan missed.
    pytest.param(_missing(..., hide=True), id="missing-absent"),
    pytest.param(_missing([], hide=True), id="missing-list"),
    pytest.param(_missing("json", hide=True), id="missing-string"),
    pytest.param(_missing(None, hide=True), id="missing-null"),
    pytest.param(_missing({"a": "json"}, hide=True), id="missing-value-string"),
    pytest.param(_missing({"a": [1]}, hide=True), id="missing-value-ints"),
    pytest.param(_missing({"a": [None]}, hide=True), id="missing-value-null"),
    pytest.param(_missing({"a": ["json"]}, hide=True), id="missing-name-without-importer"),
    pytest.param(_missing({"a": [["json"]]}, hide=True), id="missing-pair-short"),
    pytest.param(_missing({"a": [["json", None, None]]}, hide=True), id="missing-pair-long"),
    pytest.param(_missing({"a": [["json", 1]]}, hide=True), id="missing-importer-int"),
    pytest.param(_missing({"a": [[None, "sys"]]}, hide=True), id="missing-name-null"),
    # A consistent file whose ``a`` claims nothing but missed an import that is there now --
    # with no importer, or with one imported here (sys) but the name imported too.
    pytest.param(_missing({"a": [["json", None]]}, hide=True), id="missing-now-importable"),
    pytest.param(_missing({"a": [["compat_plugin_test_absent", None], ["email.mime", None]]},
                          hide=True), id="missing-one-now-importable"),
    pytest.param(_missing({"a": [["json", "sys"]]}, hide=True),
                 id="missing-now-imported-beside-its-importer"),
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
    pytest.param(_column("extra", lambda column: 0), id="column-extra-number"),
    pytest.param(_column("extra", lambda column: ["x", "y"]), id="column-extra-list"),
    # The name, file and stamp of one module.
    pytest.param(_module(lambda m: [7, *m[1:]]), id="name-int"),
    pytest.param(_module(lambda m: [None, *m[1:]]), id="name-null"),
    pytest.param(_module(lambda m: ["b", *m[1:]]), id="name-of-another"),
    pytest.param(_module(lambda m: ["ghost", *m[1:]]), id="name-of-none"),
    pytest.param(_module(lambda m: [m[0], 7, m[2], m[3]]), id="filename-int"),
    pytest.param(_module(lambda m: [m[0], None, m[2], m[3]]), id="filename-null"),
    pytest.param(_module(lambda m: [m[0], [m[1]], m[2], m[3]]), id="filename-list"),
    pytest.param(_module(lambda m: [m[0], "b.py", m[2], m[3]]), id="filename-other"),
    pytest.param(_module(lambda m: [m[0], "a.pyc", m[2], m[3]]), id="filename-bytecode"),
    pytest.param(_module(lambda m: [m[0], m[1], str(m[2]), m[3]]), id="mtime-string"),
    pytest.param(_module(lambda m: [m[0], m[1], None, m[3]]), id="mtime-null"),
    pytest.param(_module(lambda m: [m[0], m[1], float(m[2]), m[3]]), id="mtime-float"),
    pytest.param(_module(lambda m: [m[0], m[1], True, m[3]]), id="mtime-true"),
    pytest.param(_module(lambda m: [m[0], m[1], [m[2]], m[3]]), id="mtime-list"),
    pytest.param(_module(lambda m: [m[0], m[1], m[2] + 1, m[3]]), id="mtime-other"),
    pytest.param(_module(lambda m: [m[0], m[1], m[2] - 1, m[3]]), id="mtime-older"),
    pytest.param(_module(lambda m: [*m[:3], float(m[3])]), id="size-float"),
    pytest.param(_module(lambda m: [*m[:3], str(m[3])]), id="size-string"),
    pytest.param(_module(lambda m: [*m[:3], True]), id="size-true"),
    pytest.param(_module(lambda m: [*m[:3], False]), id="size-false"),
    pytest.param(_module(lambda m: [*m[:3], -m[3]]), id="size-negative"),
    pytest.param(_module(lambda m: [*m[:3], m[3] + 1]), id="size-other"),
    # The number and ends of the detail lines.
    pytest.param(_file_lines(lambda lines: [*lines[:-2], b""]), id="detail-line-missing"),
    pytest.param(_file_lines(lambda lines: [lines[0], b""]), id="detail-lines-missing"),
    pytest.param(_file_lines(lambda lines: [lines[0]]), id="header-line-alone"),
    pytest.param(
        _file_lines(lambda lines: [*lines[:-1], b'["x",[],[]]', b""]), id="detail-line-extra"
    ),
    pytest.param(_file_lines(lambda lines: [lines[0], b"", *lines[1:]]), id="blank-line-inserted"),
    pytest.param(
        _file_lines(lambda lines: [lines[0], lines[1] + lines[2], b""]), id="detail-lines-joined"
    ),
    pytest.param(
        _file_lines(lambda lines: [lines[0], lines[2], lines[1], b""]), id="detail-lines-swapped"
    ),
    # The details of one module, no longer naming what it provides.
    pytest.param(_details(lambda d: None), id="details-null"),
    pytest.param(_details(lambda d: {"docstring": d[0], "plugins": []}), id="details-object"),
    pytest.param(_details(lambda d: d[0]), id="details-string"),
    pytest.param(_details(lambda d: 5), id="details-number"),
    pytest.param(_details(lambda d: []), id="details-empty-list"),
    pytest.param(_details(lambda d: [d[0], []]), id="details-schema-3"),
    pytest.param(_details(lambda d: [d[0], [], [], None]), id="details-extra-field"),
    pytest.param(_details(lambda d: [5, [], []]), id="docstring-int"),
    pytest.param(_details(lambda d: [True, [], []]), id="docstring-true"),
    pytest.param(_details(lambda d: [[d[0]], [], []]), id="docstring-list"),
    pytest.param(_details(lambda d: [d[0], {}, []]), id="plugins-object"),
    pytest.param(_details(lambda d: [d[0], "Plugin", []]), id="plugins-string"),
    pytest.param(_details(lambda d: [d[0], None, []]), id="plugins-null"),
    pytest.param(_details(lambda d: [d[0], [None], []]), id="plugin-null"),
    pytest.param(_details(lambda d: [d[0], [], None]), id="unexported-null"),
    pytest.param(_details(lambda d: [d[0], [], [1]]), id="unexported-ints"),
    pytest.param(_details(lambda d: [d[0], _nested(60), []]), id="details-nested"),
    pytest.param(_detail_line(lambda d: ""), id="detail-empty"),
    pytest.param(_detail_line(lambda d: "not json"), id="detail-not-json"),
    pytest.param(_detail_line(lambda d: "NaN"), id="detail-nan"),
    pytest.param(_detail_line(lambda d: "1" * 5000), id="detail-huge-integer"),
    pytest.param(_detail_line(lambda d: "[" * 100_000), id="detail-deep-list"),
    pytest.param(_detail_line(lambda d: "[" * 100_000 + "]" * 100_000), id="detail-deep-closed"),
    # The details of one module, still naming what it provides.
    pytest.param(_details(lambda d: {"docstring": d[0], "plugins": d[1]}), id="named-object"),
    pytest.param(_details(lambda d: [d[1]]), id="named-missing-fields"),
    pytest.param(_details(lambda d: d[:2]), id="named-schema-3"),
    pytest.param(_details(lambda d: [*d, None]), id="named-extra-field"),
    pytest.param(_details(lambda d: [d[1], d[0], d[2]]), id="named-swapped-fields"),
    pytest.param(_details(lambda d: [5, d[1], d[2]]), id="named-docstring-int"),
    pytest.param(_details(lambda d: [float("nan"), d[1], d[2]]), id="named-docstring-nan"),
    pytest.param(_details(lambda d: [d[0], {"plugins": d[1]}, d[2]]), id="named-plugins-object"),
    pytest.param(_details(lambda d: [d[0], _asked(d), d[2]]), id="named-plugins-string"),
    pytest.param(_details(lambda d: [d[0], d[1][0], d[2]]), id="named-plugins-flat"),
    pytest.param(_details(lambda d: [d[0], [None, *d[1]], d[2]]), id="named-plugin-null"),
    pytest.param(_details(lambda d: [d[0], [*d[1], _nested(60)], d[2]]), id="named-nested"),
    pytest.param(_details(lambda d: [d[0], d[1], [_asked(d), 1]]), id="named-unexported-int"),
    pytest.param(_details(lambda d: [d[0], [dict(zip("adpi", d[1][0]))], d[2]]),
                 id="plugin-object"),
    pytest.param(_details(lambda d: [d[0], [d[1][0][:3]], d[2]]), id="plugin-missing-field"),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0], "x"]], d[2]]), id="plugin-extra-field"),
    pytest.param(_details(lambda d: [d[0], [[1, *d[1][0][1:]]], d[2]]),
                 id="plugin-attribute-int"),
    pytest.param(_details(lambda d: [d[0], [[None, *d[1][0][1:]]], d[2]]),
                 id="plugin-attribute-null"),
    pytest.param(_details(lambda d: [d[0], [[d[1][0][0], 3, *d[1][0][2:]]], d[2]]),
                 id="plugin-doc-int"),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0][:2], [1, 2], d[1][0][3]]], d[2]]),
                 id="provided-ints"),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0][:2], _asked(d), d[1][0][3]]], d[2]]),
                 id="provided-string"),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0][:3], "compat_plugin.IPlugin"]], d[2]]),
                 id="interfaces-string"),
    pytest.param(_details(lambda d: [d[0], [[*d[1][0][:3], [True]]], d[2]]),
                 id="interfaces-bools"),
    pytest.param(_detail_line(lambda d: compact(d)[:-1]), id="named-unclosed"),
    pytest.param(_detail_line(lambda d: compact(d) + "x"), id="named-trailing-garbage"),
    pytest.param(_detail_line(lambda d: compact(d) + compact(d)), id="named-twice"),
    pytest.param(
        _detail_line(lambda d: f"[{'1' * 5000},{compact(d[1])},[]]"), id="named-huge-integer"
    ),
    pytest.param(
        _detail_line(lambda d: "[" * 100_000 + json.dumps(_asked(d)) + "]" * 100_000),
        id="named-deep-list",
    ),
    pytest.param(
        _detail_line(lambda d: '{"a":' * 100_000 + json.dumps(_asked(d))), id="named-deep-object"
    ),
    pytest.param(
        _detail_line(lambda d: compact(d).replace("Plugin module a.", "Plugin module a.\x00")),
        id="named-nul",
    ),
    # Bytes that are not ASCII in a detail line.
    pytest.param(
        _detail_line(lambda d: compact(d).replace("module a.", "module \u00e0.")),
        id="detail-non-ascii",
    ),
    pytest.param(
        _detail_line(lambda d: compact(d).encode().replace(b"module a.", b"module a.\xff")),
        id="detail-undecodable",
    ),
    pytest.param(
        _detail_line(lambda d: compact(d).encode().replace(b"module a.", b"module \xc3.")),
        id="detail-truncated-utf8",
    ),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_cache_is_ignored_and_rewritten(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture, damage: Damage
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    path = beside(ptree)
    raw = path.read_bytes()
    good = fresh(ptree)

    damaged = damage(good, raw)
    assert damaged != raw
    path.write_bytes(damaged)
    ptree.purge()
    caplog.clear()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert noisy(caplog) == []
    assert stored(ptree) == good
    assert directory_caches(user_cache()) == []


# A child that reads no more than it may: without the check, a FIFO read waits forever and
# ``/dev/zero`` fills the memory -- a time limit and a memory limit make either a failure.
_BOUNDED = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_cache_that_is_no_regular_file_is_passed_over_and_replaced(
    ptree: PluginTree, kind: str
) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    path = beside(ptree)
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    code = _BOUNDED + f"""
import logging
logging.basicConfig(level=logging.WARNING)
import {ptree.plugins_name} as package
from {ptree.name}.ifaces import ITestPlugin
from compat_plugin import getPlugins
print([plugin.tag for plugin in getPlugins(ITestPlugin, package)])
"""
    done = run_python(code, path=[ptree.root], timeout=60)
    assert (done.stdout, done.stderr) == ("['a']\n", "")
    assert stat.S_ISREG(path.lstat().st_mode)
    assert stored(ptree) == good


def test_each_optimization_level_keeps_its_own_cache(tree: PluginTree) -> None:
    """As bytecode: ``-O`` leaves out what ``if __debug__:`` guards, ``-OO`` docstrings too --
    a cache one level wrote would hide a plugin from another, or its descriptions."""
    tree.plugin("levels", """
        "The module's docstring."
        from zope.interface import implementer
        from compat_plugin import IPlugin
        from {pkg}.ifaces import ITestPlugin

        @implementer(IPlugin, ITestPlugin)
        class Plugin:
            "A plugin."

        always = Plugin()
        if __debug__:
            debugging = Plugin()
    """)
    code = f"""
        import json, logging, sys
        logging.basicConfig(level=logging.WARNING)
        import {tree.plugins_name} as package
        from {tree.name}.ifaces import ITestPlugin
        from compat_plugin import getCache, getPlugins
        plugins = list(getPlugins(ITestPlugin, package))
        module = sys.modules[package.__name__ + ".levels"]
        dropin = getCache(package)["levels"]
        print(json.dumps([sorted(name for name, value in vars(module).items()
                                 if value in plugins),
                          dropin.description, [p.description for p in dropin.plugins]]))
    """
    expected = {
        "": [["always", "debugging"], "The module's docstring.", ["A plugin.", "A plugin."]],
        "1": [["always"], "The module's docstring.", ["A plugin."]],
        "2": [["always"], None, [None]],
    }
    for level in ("", "1", "2", "", "2", "1", ""):
        done = run_python(code, path=[tree.root], env={"PYTHONOPTIMIZE": level} if level else {})
        assert (level, json.loads(done.stdout)) == (level, expected[level])
        assert done.stderr == ""
    assert sorted(p.name for p in (tree.plugins_dir / "__pycache__").glob("compat_plugin.*")) == [
        f"compat_plugin.{TAG}.json", f"compat_plugin.{TAG}.opt-1.json",
        f"compat_plugin.{TAG}.opt-2.json"]


def test_a_pycache_prefix_keeps_every_cache_out_of_the_tree(
    tree: PluginTree, tmp_path: Path, wheels: dict[str, Path]
) -> None:
    """``PYTHONPYCACHEPREFIX`` moves bytecode out of the source tree (kept clean, or mounted
    read-only); the caches go where the bytecode goes, and a warm call still uses them: no
    ``__pycache__`` appears in the plugin directory nor in a ``sys.path`` entry holding a
    distribution, and ``cache clear`` finds what it removes there."""
    tree.plugin("wanted", plugin_source("wanted"))
    tree.plugin("other", plugin_source("other", "ITestPlugin2"))
    extra = install_wheels(tmp_path / "extra", wheels["optdep-1.0"])
    prefix = tmp_path / "prefix"
    env = {"PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": ""}
    body = 'out["calls"] = [tags("ITestPlugin")]'
    cold = run_tree(tree, body, path=[extra], env=env, counter=None)
    warm = run_tree(tree, body, path=[extra], env=env, counter=None)
    assert cold["calls"] == warm["calls"] == [["wanted"]]
    assert (cold["loaded"], warm["loaded"]) == (["other", "wanted"], ["wanted"])
    # (pip wrote the bytecode of the modules it installed; nothing else may add one)
    assert sorted(tree.root.rglob("__pycache__")) == [] and not (extra / "__pycache__").exists()

    def mirrored(directory: Path) -> Path:
        return prefix / directory.resolve().relative_to(directory.resolve().anchor)

    directory_cache = mirrored(tree.plugins_dir) / f"compat_plugin.{TAG}.json"
    index = (mirrored(extra) /
             f"compat_plugin.entry-points.{tree.plugins_name}.{TAG}.json")
    assert read_cache(directory_cache, tree.plugins_dir, tree.plugins_name).stamps.keys() == {
        "wanted", "other"}
    assert json.loads(index.read_text())["group"] == tree.plugins_name
    environment = {**os.environ, **env,
                   "PYTHONPATH": os.pathsep.join([str(tree.root), str(extra), LIBRARY])}
    cleared = subprocess.run(
        [sys.executable, "-m", "compat_plugin", "cache", "clear", tree.plugins_name],
        env=environment, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert not directory_cache.exists() and not index.exists()

def test_boolean_mtime_is_not_an_integer(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    """``True == 1``: an entry stamped ``true`` must not match a file whose mtime is 1 ns."""
    caplog.set_level(logging.DEBUG)
    os.utime(ptree.plugins_dir / "a.py", ns=(1, 1))
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    assert good.stamps["a"][1] == 1

    stamps = {**good.stamps, "a": ["a.py", True, good.stamps["a"][2]]}
    beside(ptree).write_bytes(
        forged(good, stamps=stamps, details={**good.details, "a": ["Module a.", [], []]}))
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    assert stored(ptree) == good


def test_boolean_size_is_not_an_integer(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry sized ``true`` must not match a one-byte module and lend it a plugin."""
    caplog.set_level(logging.DEBUG)
    ptree.plugin("z", "\n")
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    filename, mtime_ns, size = good.stamps["z"]
    assert (size, good.details["z"]) == (1, [None, [], []])

    iface = f"{ptree.name}.ifaces.ITestPlugin"
    stamps = {**good.stamps, "z": [filename, mtime_ns, True]}
    details = {**good.details, "z": [None, [["Fake", None, [iface], [iface, *IPLUGIN_NAMES]]], []]}
    beside(ptree).write_bytes(forged(good, stamps=stamps, details=details))
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    assert stored(ptree) == good


# == The stored entries as properties ==========================================================

PACKAGE = "some.plugins"
DIRECTORY = "/some/plugins"
EXPECTED = {"schema": DIRECTORY_SCHEMA, "interpreter": TAG, "directory": DIRECTORY,
            "package": PACKAGE}
ABSENT = "compat_plugin_test_absent_"  # no module name starting so is ever importable


def _read(path: Path) -> _directory_file.StoredEntries:
    return read_entries(str(path), DIRECTORY, PACKAGE)


def listing_of(*modules: tuple[str, str, int, int]) -> Listing:
    listing = Listing(DIRECTORY)
    for module in modules:
        listing.add(*module)
    return listing


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
_valid_details = st.tuples(st.none() | _text, _plugins, st.lists(_text, max_size=2)).map(list)
_valid_stamps = st.tuples(
    _text,
    st.integers(min_value=-(2**63), max_value=2**64),
    st.integers(min_value=0, max_value=2**63),
).map(list)
# Misses as stored: ``[name, importer or null]``, no name ever importable.
_absent_names = st.lists(st.tuples(st.text(max_size=6).map(lambda t: ABSENT + t),
                                   st.none() | st.text(max_size=6)).map(list),
                         min_size=1, max_size=2)
_wrong: st.SearchStrategy[object] = (
    st.sampled_from([True, False, None, 0, 1, 1.0, "", "x", [], {}, [1], ["x", 2]]) | _json
)


@st.composite
def _spoiled_stamps(draw: st.DrawFn) -> list[Any]:
    """A valid ``[filename, mtime_ns, size]`` with one field of the wrong type."""
    stamp: list[Any] = draw(_valid_stamps)
    stamp[draw(st.integers(0, 2))] = draw(_wrong)
    return stamp


_stampish = _valid_stamps | _spoiled_stamps()
_ascii_line = st.text(st.characters(max_codepoint=127, exclude_characters="\n"), max_size=40)
_ascii_detail_lines = st.one_of(
    _valid_details.map(compact),
    _json.map(compact),
    _valid_details.map(compact).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
    _ascii_line,
)
_detail_lines = _ascii_detail_lines | st.text(
    st.characters(codec="utf-8", exclude_characters="\n"), max_size=20
)


def _exactly_ours(header: dict[str, Any]) -> bool:
    """Whether ``header`` names exactly DIRECTORY/PACKAGE under this schema and interpreter,
    types included."""
    return all(type(header.get(key)) is type(value) and header.get(key) == value
               for key, value in EXPECTED.items())


def _expected_entries(raw: bytes) -> dict[str, Entry] | None:
    """What the documented layout says ``raw`` holds, or None if it is not such a file: a
    header for DIRECTORY/PACKAGE, four columns of one length n (names distinct strings, files
    strings, mtimes and sizes integers proper), ``missing`` naming lists of strings, and the
    checksum, last, of the header's text and the rest, followed by n ASCII lines each ended
    by a newline."""
    first, _, rest = raw.partition(b"\n")
    try:
        header = json.loads(first)
    except (ValueError, RecursionError):
        return None
    if type(header) is not dict or not _exactly_ours(header):
        return None
    table, missing, checksum = (header.get(key) for key in ("modules", "missing", "checksum"))
    own, seal, tail = first.rpartition(b',"checksum":')
    if (type(checksum) is not int or not seal or tail != b"%d}" % checksum
            or checksum != zlib.crc32(own + b"}\n" + rest) or not rest.isascii()):
        return None
    if type(table) is not dict or not all(type(table.get(key)) is list for key in COLUMNS):
        return None
    if type(missing) is not dict or not all(
        type(value) is list and all(
            type(miss) is list and len(miss) == 2 and type(miss[0]) is str
            and (miss[1] is None or type(miss[1]) is str) for miss in value)
        for value in missing.values()
    ):
        return None
    names, files, mtimes, sizes = (table[key] for key in COLUMNS)
    count = rest.count(b"\n")
    if count and not rest.endswith(b"\n"):
        return None
    if not all(len(column) == count for column in (names, files, mtimes, sizes)):
        return None
    if not (all(type(v) is str for v in [*names, *files])
            and all(type(v) is int for v in [*mtimes, *sizes])):
        return None
    if len(set(names)) != count:
        return None
    lines = rest.decode("ascii").split("\n")
    return {
        name: Entry(filename, Stamp(mtime_ns, size), line,
                    tuple(tuple(miss) for miss in missing.get(name, ())))
        for name, filename, mtime_ns, size, line in zip(names, files, mtimes, sizes, lines)
    }


def _check_read(raw: bytes, path: Path, wanted: str) -> None:
    """``read_entries`` of ``raw`` (written to ``path``) holds exactly what the layout says,
    of the right types, and sifts a listing of each module as documented."""
    path.write_bytes(raw)
    found = _read(path)
    expected = _expected_entries(raw) or {}
    entries = found.as_dict()
    assert entries == expected
    for name, entry in entries.items():
        assert type(name) is str and type(entry) is Entry
        assert type(entry.filename) is str and type(entry.details) is str
        assert type(entry.stamp.mtime_ns) is int and type(entry.stamp.size) is int
        assert type(entry.missing) is tuple
    assert set(found.names()) == set(expected)
    assert len(found) == len(expected)
    for name, entry in expected.items():
        assert found.get(name) == entry
        module = (name, entry.filename, *entry.stamp)
        line = entry.details
        # Every missing name here starts with ABSENT: none is importable.
        assert found.sift(listing_of(module), None) == ([(0, line)], 1)
        assert found.sift(listing_of(module), (wanted,)) == (
            [(0, line)] if wanted in line else [], 1)
        for changed in ((name, entry.filename, entry.stamp.mtime_ns + 1, entry.stamp.size),
                        (name, entry.filename, entry.stamp.mtime_ns, entry.stamp.size + 1),
                        (name, entry.filename + "c", *entry.stamp)):
            assert found.sift(listing_of(changed), (wanted,)) == ([(0, None)], 0)
    assert found.get(ABSENT) is None


@st.composite
def _cache_files(draw: st.DrawFn) -> bytes:
    """A cache file for DIRECTORY/PACKAGE, often spoiled (each kind of damage in about one file
    in four): in its header fields, its columns, its missing imports, its detail lines, their
    number or the end of the last one."""

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
    missing: object = {name: draw(_absent_names) for name in stamps if draw(st.booleans())}
    if sometimes():
        missing = draw(_json | st.dictionaries(_text, _json, max_size=2))
    header["missing"] = missing
    near = st.sampled_from([True, 1, 3, 4, 4.0, "4", TAG, DIRECTORY + "/", PACKAGE])
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
    st.builds(Stamp, st.integers(min_value=-(2**63), max_value=2**64),
              st.integers(min_value=0, max_value=2**63)),
    _valid_details.map(compact) | _json.map(compact) | _ascii_line,
    st.just(()) | _absent_names.map(lambda misses: tuple(map(tuple, misses))),
)


@st.composite
def _mutated_files(draw: st.DrawFn) -> bytes:
    """A valid file with a few bytes replaced, inserted or deleted."""
    entries = draw(st.dictionaries(_text, _entries, min_size=1, max_size=4))
    data = bytearray(encode(DIRECTORY, PACKAGE, entries))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from(["replace", "insert", "delete"]))
        if what == "delete":
            del data[where: where + draw(st.integers(1, 8))]
        else:
            piece = draw(st.binary(min_size=1, max_size=3) | st.sampled_from([b"\n", b"1", b"]"]))
            data[where: where + (len(piece) if what == "replace" else 0)] = piece
    return bytes(data)


_wanted = st.one_of(_text.map(compact), st.sampled_from(['""', '"x"', "[", "null"]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=150)
@given(data=st.binary(max_size=512) | _mutated_files(), wanted=_wanted)
def test_read_entries_survives_any_bytes(tmp_path: Path, data: bytes, wanted: str) -> None:
    _check_read(data, tmp_path / "cache.json", wanted)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None, max_examples=250)
@given(raw=_cache_files(),
       cut=st.sampled_from([None, None, None]) | st.integers(min_value=0, max_value=400),
       wanted=_wanted)
def test_read_entries_accepts_exactly_the_documented_layout(
    tmp_path: Path, raw: bytes, cut: int | None, wanted: str
) -> None:
    _check_read(raw if cut is None else raw[:cut], tmp_path / "cache.json", wanted)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(entries=st.dictionaries(_text, _entries, max_size=6))
def test_encode_then_read_entries_round_trips(tmp_path: Path, entries: dict[str, Entry]) -> None:
    raw = encode(DIRECTORY, PACKAGE, entries)
    first, _, rest = raw.partition(b"\n")
    header = json.loads(first)
    assert set(header) == {*EXPECTED, "modules", "missing", "checksum"}
    assert _exactly_ours(header)
    names = sorted(entries)
    assert header["modules"] == columns(
        {name: [entries[name].filename, *entries[name].stamp] for name in names})
    assert header["missing"] == {name: [list(miss) for miss in entries[name].missing]
                                 for name in names if entries[name].missing}
    assert rest.decode("ascii").split("\n") == [*(entries[name].details for name in names), ""]

    path = tmp_path / "cache.json"
    path.write_bytes(raw)
    assert _read(path).as_dict() == entries
    assert read_entries(str(path), DIRECTORY, "other.plugins").as_dict() == {}
    assert read_entries(str(path), "/other/plugins", PACKAGE).as_dict() == {}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(details=st.lists(_valid_details, min_size=1, max_size=4), asked=_text)
def test_details_passed_over_never_record_the_asked_interface(
    tmp_path: Path, details: list[list[Any]], asked: str
) -> None:
    """Stored details are passed over for a query only if they do not record the asked
    interface; those that do are handed out whole."""
    entries = {f"m{n}": Entry(f"m{n}.py", Stamp(n, n), compact(item))
               for n, item in enumerate(details)}
    path = tmp_path / "cache.json"
    path.write_bytes(encode(DIRECTORY, PACKAGE, entries))
    found = _read(path)
    listing = listing_of(*((name, e.filename, *e.stamp) for name, e in entries.items()))
    for n, item in enumerate(details):
        recorded = {interface for plugin in item[1] for interface in [*plugin[2], *plugin[3]]}
        handed, current = found.sift(listing, (compact(asked),))
        assert current == len(entries)
        assert all(line == entries[f"m{at}"].details for at, line in handed)
        if asked in recorded:
            assert (n, entries[f"m{n}"].details) in handed
        for interface in recorded:
            assert (n, entries[f"m{n}"].details) in found.sift(listing, (compact(interface),))[0]


def test_sift_of_a_listing_in_the_files_own_order_agrees_with_the_loop(tmp_path: Path) -> None:
    """A file written in the listing's order is compared column against column; the result
    is the one module-by-module comparison gives, a missing import now found included."""
    entries = {
        "b": Entry("b.py", Stamp(2, 20), '[null,[["p",null,["x.I"],["x.I"]]],[]]'),
        "a": Entry("a.py", Stamp(1, 10), "[null,[],[]]"),
        "c": Entry("c.py", Stamp(3, 30), '[null,[["p",null,["x.I"],["x.I"]]],[]]',
                   (("json", None),)),
        "d": Entry("d.py", Stamp(4, 40), '[null,[["p",null,["x.I"],["x.I"]]],[]]',
                   ((f"{ABSENT}d", None),)),
    }
    order = ["b", "a", "c", "d"]
    raw = encode(DIRECTORY, PACKAGE, entries, order)
    header_text, _, details = raw.partition(b"\n")
    header = json.loads(header_text)
    assert header["modules"]["names"] == order
    # A hostile file may name, as missing imports, modules it does not hold.
    header["missing"]["nowhere"] = [["json", None]]
    path = tmp_path / "cache.json"
    path.write_bytes(sealed_file(header, details))
    found = _read(path)
    listed = [(name, entries[name].filename, *entries[name].stamp) for name in order]

    def by_name(listing: Listing, wanted: tuple[str, ...] | None
                ) -> tuple[set[tuple[str, str | None]], int]:
        sifted, current = found.sift(listing, wanted)
        return {(listing.names[at], line) for at, line in sifted}, current

    for wanted in (('"x.I"',), None, ('"y.J"',), ('"y.J"', '"x.I"')):
        as_written = by_name(listing_of(*listed), wanted)
        other_order = by_name(listing_of(*reversed(listed)), wanted)
        assert as_written == other_order
    # c's missing import (json) is there now: c is scanned again, whatever was asked.
    assert by_name(listing_of(*listed), ('"x.I"',)) == (
        {("b", entries["b"].details), ("c", None), ("d", entries["d"].details)}, 3)
    assert by_name(listing_of(*listed), ('"y.J"',)) == ({("c", None)}, 3)
    assert by_name(listing_of(*listed), ('"y.J"', '"x.I"')) == by_name(listing_of(*listed),
                                                                     ('"x.I"',))


def test_sift_compares_each_listed_module_with_its_entry(tmp_path: Path) -> None:
    entries = {
        "a": Entry("a.py", Stamp(1, 10), '[null,[["p",null,["x.I"],["x.I"]]],[]]'),
        "b": Entry("b.py", Stamp(2, 20), "[null,[],[]]"),
        "c": Entry("c.py", Stamp(3, 30), '[null,[["p",null,["x.I"],["x.I"]]],[]]',
                   (("json", None),)),
        "d": Entry("d.py", Stamp(4, 40), "[null,[],[]]",
                   ((f"{ABSENT}d", None), (f"{ABSENT}e", "sys"))),
        "gone": Entry("gone.py", Stamp(5, 50), "[null,[],[]]"),
    }
    path = tmp_path / "cache.json"
    path.write_bytes(encode(DIRECTORY, PACKAGE, entries))
    found = _read(path)
    listing = listing_of(
        ("new", "new.py", 9, 9), ("d", "d.py", 4, 40), ("c", "c.py", 3, 30),
        ("b", "b/__init__.py", 2, 20), ("a", "a.py", 1, 10),
    )
    # Positions are the listing's; c missed an import that is there now (json).
    assert found.sift(listing, ('"x.I"',)) == ([(0, None), (2, None), (3, None),
                                             (4, entries["a"].details)], 2)
    assert found.sift(listing, None) == ([(0, None), (1, "[null,[],[]]"), (2, None), (3, None),
                                          (4, entries["a"].details)], 2)
    # Asked for what no entry mentions: current modules are passed over without a look.
    assert found.sift(listing, ('"y.J"',)) == ([(0, None), (2, None), (3, None)], 2)
    # Asked for several (an interface and those extending it): a mention of any one counts.
    assert found.sift(listing, ('"y.J"', '"x.I"')) == found.sift(listing, ('"x.I"',))


def test_sift_takes_modules_whose_times_were_cut_to_whole_seconds_as_current(
    tmp_path: Path,
) -> None:
    """Listed after an archive kept only whole seconds of their times (an image layer), the
    modules are current in the file's own loop -- each still needing its own size and its
    own second."""
    second = 10**9
    entries = {name: Entry(f"{name}.py", Stamp(n * second + 250_000_000, 10 * n),
                           '[null,[["p",null,["x.I"],["x.I"]]],[]]' if name == "a"
                           else "[null,[],[]]")
               for n, name in enumerate("abcd", start=1)}
    path = tmp_path / "cache.json"
    path.write_bytes(encode(DIRECTORY, PACKAGE, entries))
    os.utime(path, ns=(4 * second + 1, 4 * second + 1))  # written after a, b, c's seconds
    found = _read(path)
    listing = listing_of(("a", "a.py", 1 * second, 10), ("b", "b.py", 2 * second, 20),
                         ("c", "c.py", 3 * second, 31), ("d", "d.py", 4 * second, 40))
    # c changed size; d's second was not over when the file was written: both scanned again.
    assert found.sift(listing, ('"x.I"',)) == ([(0, entries["a"].details), (2, None), (3, None)],
                                            2)


# == Entries that do not describe the files on disk =============================================


def test_entry_for_missing_module_is_never_imported_and_pruned(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    stamps = {**good.stamps, "ghost": ["ghost.py", *good.stamps["a"][1:]]}
    details = {**good.details, "ghost": copy.deepcopy(good.details["a"])}
    details["ghost"][1][0][0] = "Ghost"
    beside(ptree).write_bytes(forged(good, stamps=stamps, details=details))
    assert not (ptree.plugins_dir / "ghost.py").exists()
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a"]
    assert "ghost" not in loaded(ptree.plugins_name)
    assert imports(ptree) == ["a"]
    assert noisy(caplog) == []
    assert set(fresh(ptree).stamps) == {"a", "b"}


def test_entry_with_other_stamp_is_rescanned(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    filename, mtime_ns, size = good.stamps["a"]
    for stale in ([filename, mtime_ns + 1, size], [filename, mtime_ns, size + 1],
                  ["b.py", mtime_ns, size]):
        details = {**good.details, "a": [None, [], []]}
        beside(ptree).write_bytes(forged(good, stamps={**good.stamps, "a": stale},
                                         details=details))
        ptree.purge()

        assert tags(ptree, "ITestPlugin") == ["a"]
        assert imports(ptree) == ["a"]
        assert noisy(caplog) == []
        assert stored(ptree) == good


@pytest.mark.parametrize("lie", ["extra-interface", "missing-attribute", "not-a-plugin"])
def test_entry_claiming_what_the_module_does_not_provide(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture, lie: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if lie == "not-a-plugin":  # an object providing the asked interface, but no marker
        ptree.plugin("a", counted("a", "ITestPlugin") + textwrap.dedent("""
            from {pkg}.ifaces import ITestPlugin2
            @implementer(ITestPlugin2)
            class Bare:
                tag = "bare"
            bare = Bare()
        """))
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = fresh(ptree)
    other = f"{ptree.name}.ifaces.ITestPlugin2"
    details = copy.deepcopy(good.details)
    [plugin] = details["a"][1]
    if lie == "extra-interface":
        plugin[2].append(other)
        plugin[3].append(other)
    else:
        attribute = "Missing" if lie == "missing-attribute" else "bare"
        details["a"][1].append([attribute, None, [other], [other, *IPLUGIN_NAMES]])
    beside(ptree).write_bytes(forged(good, details=details))
    ptree.purge()
    caplog.clear()

    assert tags(ptree, "ITestPlugin2") == ["b"]
    ((level, message),) = [(r.levelname, r.getMessage()) for r in caplog.records
                           if r.levelno >= logging.WARNING]
    assert level == "WARNING"
    assert message.startswith(f"ignoring cached plugin from directory {ptree.plugins_dir}: ")
    assert f"{ptree.plugins_name}.a:" in message
    assert "a" not in stored(ptree).stamps

    caplog.clear()
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []

    ptree.purge()
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert noisy(caplog) == []
    assert stored(ptree) == good


# == Freshness is the stamp, not the age ========================================================

OLD = 315_532_800 * 10**9  # 1980-01-01


def test_edit_dated_in_the_past_is_noticed(ptree: PluginTree) -> None:
    module = ptree.plugin("c", counted("c1", "ITestPlugin"))
    assert tags(ptree, "ITestPlugin") == ["a", "c1"]

    size = module.stat().st_size
    ptree.plugin("c", counted("c2", "ITestPlugin"))
    os.utime(module, ns=(OLD, OLD))
    assert module.stat().st_size == size
    assert module.stat().st_mtime_ns < beside(ptree).stat().st_mtime_ns
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a", "c2"]
    fresh(ptree)

    ptree.plugin("c", counted("c3", "ITestPlugin2"))
    os.utime(module, ns=(OLD - 10**9, OLD - 10**9))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert tags(ptree, "ITestPlugin2") == ["b", "c3"]


def test_a_cut_time_holds_only_for_a_cache_written_after_its_second(ptree: PluginTree) -> None:
    """Times cut to whole seconds by an archive: a module edited later in the second of its
    recorded time, its size kept, cannot be told from the one recorded by its cut time -- so a
    cache written within that second does not answer for it (it is scanned again); one
    written after that second answers for the cut file without importing it.  (What the
    import then finds is Python's business: its bytecode check sees the second and size.)"""
    second = 10**9
    when = 1_700_000_000 * second
    cache = beside(ptree)
    module = ptree.plugin("c", counted("c1", "ITestPlugin2"))
    os.utime(module, ns=(when + 300_000_000,) * 2)
    assert tags(ptree, "ITestPlugin2") == ["b", "c1"]
    os.utime(cache, ns=(when + 600_000_000,) * 2)  # written within the module's second
    size = module.stat().st_size
    ptree.plugin("c", counted("c2", "ITestPlugin2"))  # edited later in it, its size kept
    assert module.stat().st_size == size
    for path in (module, cache):  # the archive's cut
        os.utime(path, ns=(when, when))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert "c" in loaded(ptree.plugins_name)  # its entry could not vouch for the cut file

    os.utime(module, ns=(when + 300_000_000,) * 2)
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]  # scanned, and recorded, again
    assert read_cache(cache, ptree.plugins_dir, ptree.plugins_name).stamps["c"][1] == (
        when + 300_000_000)
    for path, cut in ((module, when), (cache, when + second)):  # written after its second
        os.utime(path, ns=(cut, cut))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert "c" not in loaded(ptree.plugins_name)  # its entry, for the cut time, says enough


def _cut(*paths: Path) -> None:
    """What an archive keeping whole seconds does to the times of ``paths``."""
    for path in paths:
        cut = path.stat().st_mtime_ns // 10**9 * 10**9
        os.utime(path, ns=(cut, cut))


def test_a_cache_rewritten_keeps_its_cut_entries_current(ptree: PluginTree) -> None:
    """After a cut, a call that scans a new module rewrites the cache: the entries it carries
    over take their files' times as they are, so a later call of the same process, asking
    for something else, scans nothing it did not have to."""
    second = 10**9
    when = 1_700_000_000 * second
    other = ptree.plugin("x", counted("x", "INobody"))
    for module in ("a", "b", "x"):
        os.utime(ptree.plugins_dir / f"{module}.py", ns=(when + 300_000_000,) * 2)
    assert tags(ptree, "ITestPlugin") == ["a"]
    os.utime(beside(ptree), ns=(when + 2 * second,) * 2)
    _cut(*(ptree.plugins_dir / f"{module}.py" for module in ("a", "b", "x")), beside(ptree))
    ptree.plugin("c", counted("c", "ITestPlugin"))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a", "c"]
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert loaded(ptree.plugins_name) == {"a", "b", "c"}
    assert stored(ptree).stamps["x"][1] == other.stat().st_mtime_ns == when


def test_an_entry_not_looked_at_is_not_copied_into_a_later_file(ptree: PluginTree) -> None:
    """A module edited, its size kept, in the second its cache was written in, then left out
    of a call (disabled) that rewrites the cache a second later: its entry, never checked
    against the file, is not copied into the new file -- whose later time would let the cut
    time vouch for it."""
    second = 10**9
    when = 1_700_000_000 * second
    module = ptree.plugin("c", counted("c1", "ITestPlugin2"))
    os.utime(module, ns=(when + 300_000_000,) * 2)
    assert tags(ptree, "ITestPlugin2") == ["b", "c1"]
    os.utime(beside(ptree), ns=(when + 600_000_000,) * 2)
    ptree.plugin("c", counted("c2", "ITestPlugin2"))  # edited in that second, size kept
    os.utime(module, ns=(when + 800_000_000,) * 2)
    ptree.plugin("d", counted("d", "ITestPlugin"))
    ptree.purge()
    found = getPlugins(ptree.ifaces().ITestPlugin, ptree.package(), disable=["c"])
    assert [plugin.tag for plugin in found] == ["a", "d"]
    assert "c" not in stored(ptree).stamps
    _cut(module)
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a", "d"]
    assert "c" in loaded(ptree.plugins_name)


def test_edits_within_one_clock_tick_are_noticed(ptree: PluginTree) -> None:
    when = 1_700_000_000_123_456_789
    module = ptree.plugin("c", counted("c1", "ITestPlugin"))
    os.utime(module, ns=(when, when))
    assert tags(ptree, "ITestPlugin") == ["a", "c1"]

    sizes = {module.stat().st_size}
    for version in ("c22", "c333", "c4444"):
        ptree.plugin("c", counted(version, "ITestPlugin"))
        os.utime(module, ns=(when, when))
        assert module.stat().st_size not in sizes
        sizes.add(module.stat().st_size)
        ptree.purge()
        assert tags(ptree, "ITestPlugin") == ["a", version]
        assert fresh(ptree).stamps["c"][1] == when


def test_edit_while_the_old_module_is_imported_is_not_recorded_as_the_new(
    ptree: PluginTree,
) -> None:
    """A process that still has the old code imported cannot describe the edited file."""
    ptree.plugin("c", counted("c", "ITestPlugin"))
    assert tags(ptree, "ITestPlugin") == ["a", "c"]

    ptree.plugin("c", counted("c-edited", "ITestPlugin2"))
    _asked_while_the_old_is_imported(ptree, "c-edited")


def _asked_while_the_old_is_imported(ptree: PluginTree, tag: str) -> None:
    """Ask for ITestPlugin2 while the old ``c`` (providing ITestPlugin) is still imported and
    its file now provides ITestPlugin2 with ``tag``: a new process must find the file's."""
    list(getPlugins(ptree.ifaces().ITestPlugin2, ptree.package()))
    ptree.purge()
    assert tags(ptree, "ITestPlugin2") == ["b", tag]
    assert tags(ptree, "ITestPlugin") == ["a"]


def test_a_copy_keeping_an_older_time_is_not_recorded_from_the_old_module(
    ptree: PluginTree,
) -> None:
    """A long-running process whose module was replaced by a copy that keeps its source's
    (older) time, as ``cp -p``, ``rsync -a`` and ``tar x`` make: what it still has imported is
    not the file, and the next process must not be told it is."""
    module = ptree.plugin("c", counted("c", "ITestPlugin"))
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(module, ns=(hour_ago, hour_ago))
    assert tags(ptree, "ITestPlugin") == ["a", "c"]  # scanned, and trusted: an older file

    release = ptree.root / "release.py"
    release.write_text(counted("c-released", "ITestPlugin2").replace("{pkg}", ptree.name))
    os.utime(release, ns=(hour_ago + 10**9, hour_ago + 10**9))
    shutil.copy2(release, module)
    _asked_while_the_old_is_imported(ptree, "c-released")


def test_a_module_added_without_the_directory_s_time_changing_is_found(
    ptree: PluginTree,
) -> None:
    """On a file system keeping whole seconds, a module added within the second of the last
    listing leaves the directory's time as it was, and the import system answers from the
    listing it remembers: the listed module is looked for again."""
    package, interface = ptree.package(), ptree.ifaces().ITestPlugin
    assert [p.tag for p in getPlugins(interface, package)] == ["a"]
    # The import system lists the directory as it is now, and remembers it by its time.
    assert importlib.util.find_spec(f"{package.__name__}.absent") is None
    directory = ptree.plugins_dir.stat()
    ptree.plugin("late", counted("late", "ITestPlugin"))
    os.utime(ptree.plugins_dir, ns=(directory.st_atime_ns, directory.st_mtime_ns))
    assert [p.tag for p in getPlugins(interface, package)] == ["a", "late"]


def test_a_module_raising_module_not_found_for_itself_runs_once(ptree: PluginTree) -> None:
    """Found, it raises ``ModuleNotFoundError`` naming itself (a module for another platform):
    not looked for again, its body not run twice."""
    ptree.plugin("elsewhere", counted("elsewhere", "ITestPlugin") + (
        "raise ModuleNotFoundError('not on this platform', name=__name__)\n"))
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree).count("elsewhere") == 1


def test_a_module_imported_again_is_scanned_again(ptree: PluginTree) -> None:
    """What a process kept of a module that predated its file stands for that module object
    only: taken out of ``sys.modules`` (a server's reload of its code), it is scanned anew."""
    ptree.plugin("c", counted("c", "ITestPlugin"))
    assert tags(ptree, "ITestPlugin") == ["a", "c"]
    ptree.plugin("c", counted("c-edited", "ITestPlugin").replace("plugin = ", "edited = "))
    assert tags(ptree, "ITestPlugin") == ["a", "c"]  # the module still imported
    del sys.modules[f"{ptree.plugins_name}.c"]
    assert tags(ptree, "ITestPlugin") == ["a", "c-edited"]
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a", "c-edited"]


def test_a_reloaded_module_is_not_recorded_as_its_file(ptree: PluginTree) -> None:
    """Reloaded from an edit that is then rolled back, times kept (``cp -p``): the file is as
    it was when scanned, the module in memory is not -- and must not be written as the file."""
    module = ptree.plugin("c", counted("c", "ITestPlugin"))
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(module, ns=(hour_ago, hour_ago))
    backup = ptree.root / "c-backup.py"
    shutil.copy2(module, backup)
    assert tags(ptree, "ITestPlugin") == ["a", "c"]
    ptree.plugin("c", counted("c-next", "ITestPlugin2"))
    importlib.reload(sys.modules[f"{ptree.plugins_name}.c"])
    assert tags(ptree, "ITestPlugin2") == ["b", "c-next"]
    shutil.copy2(backup, module)
    assert Stamp.of(str(module)) == Stamp.of(str(backup))
    assert tags(ptree, "ITestPlugin2") == ["b", "c-next"]  # what the process has
    ptree.purge()

    assert tags(ptree, "ITestPlugin") == ["a", "c"]
    assert tags(ptree, "ITestPlugin2") == ["b"]


# == What a scan depended on: imports that failed ===============================================


def optional_dependency() -> str:
    return f"compat_plugin_test_optdep_{os.getpid()}_{next(_serial)}"


def provide(directory: Path, name: str) -> Path:
    """A ``sys.path`` entry holding the module ``name``."""
    directory.mkdir()
    (directory / f"{name}.py").write_text("")
    return directory


def test_threads_scanning_at_once_note_each_module_s_own_misses(ptree: PluginTree) -> None:
    """The first calls of a threaded server, made at once: each module's entry holds the one
    import it missed, by itself -- not the other threads' misses, which would have every warm
    call of every later process ask the finders about them."""
    dependencies = {f"cond{i:02d}": optional_dependency() for i in range(40)}
    for module, dependency in dependencies.items():
        ptree.plugin(module, conditional(dependency, module))
    start = threading.Barrier(4)
    found: list[list[str]] = []

    def first_call() -> None:
        start.wait()
        found.append(tags(ptree, "ITestPlugin"))

    workers = [threading.Thread(target=first_call) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert found == [["a"]] * 4
    assert fresh(ptree).missing == {
        module: [[dependency, f"{ptree.plugins_name}.{module}"]]
        for module, dependency in dependencies.items()}


def test_a_plugin_module_calling_getplugins_while_scanned_is_not_kept_waiting(
    ptree: PluginTree,
) -> None:
    """A plugin module whose import asks for plugins itself: the nested scan, in the same
    thread, does not wait for the scan that imports it."""
    ptree.plugin("asking", counted("asking", "ITestPlugin") + (
        "from compat_plugin import getPlugins\n"
        "import {pkg}.plugins, {pkg}.ifaces\n"
        "OTHERS = sorted(p.tag for p in getPlugins({pkg}.ifaces.ITestPlugin2, {pkg}.plugins))\n"))
    started = time.monotonic()
    assert tags(ptree, "ITestPlugin") == ["a", "asking"]
    assert time.monotonic() - started < _scan._WAIT_SECONDS
    assert sys.modules[f"{ptree.plugins_name}.asking"].OTHERS == ["b"]


def test_a_thread_a_plugin_module_waits_for_waits_once_at_most(
    ptree: PluginTree, plugin_package: Callable[..., PluginPackage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plugin module whose import starts a thread that asks for another package's plugins,
    and waits for it: the thread's scans wait for the scan importing that module once, not
    once each."""
    monkeypatch.setattr(_scan, "_WAIT_SECONDS", 0.5)
    made = plugin_package()
    other = PluginTree(made.root, made.name)
    for index in range(6):
        other.plugin(f"m{index}", plugin_source(f"m{index}"))
    ptree.plugin("spawning", counted("spawning", "ITestPlugin") + (
        "import threading\n"
        "from compat_plugin import getPlugins\n"
        f"import {other.plugins_name}, {other.name}.ifaces\n"
        "FOUND = []\n"
        f"def ask(): FOUND.extend(getPlugins({other.name}.ifaces.ITestPlugin, "
        f"{other.plugins_name}))\n"
        "worker = threading.Thread(target=ask)\n"
        "worker.start()\n"
        "worker.join()\n"))
    started = time.monotonic()
    assert tags(ptree, "ITestPlugin") == ["a", "spawning"]
    assert time.monotonic() - started < 2 * _scan._WAIT_SECONDS
    assert len(sys.modules[f"{ptree.plugins_name}.spawning"].FOUND) == 6


def test_an_entry_with_a_missing_import_holds_while_it_stays_missing(ptree: PluginTree) -> None:
    dependency = optional_dependency()
    ptree.plugin("cond", conditional(dependency))
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert fresh(ptree).missing == {"cond": [[dependency, f"{ptree.plugins_name}.cond"]]}
    before = identity(beside(ptree))
    for _ in range(2):
        ptree.purge()
        assert tags(ptree, "ITestPlugin") == ["a"]
        assert tags(ptree, "ITestPlugin2") == ["b"]
        assert sorted(imports(ptree)) == ["a", "b"]
        assert identity(beside(ptree)) == before


def _through_a_helper(ptree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[str, str, Path]:
    """A plugin module ``cond`` whose plugin exists where a helper module outside the plugin
    package found ``dependency`` when it was first imported; scanned once, the dependency
    missing.  Returns the helper's name, the dependency's, and where it can be provided."""
    dependency = optional_dependency()
    helper = f"{dependency}_helper"
    library = tmp_path / "library"
    library.mkdir()
    (library / f"{helper}.py").write_text(
        f"try:\n    import {dependency}\nexcept ImportError:\n    FOUND = False\n"
        "else:\n    FOUND = True\n")
    monkeypatch.syspath_prepend(str(library))
    ptree.plugin("cond", counted("cond")
                 + f"import {helper}\nif not {helper}.FOUND:\n    del plugin\n")
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert fresh(ptree).missing == {"cond": [[dependency, helper]]}
    return helper, dependency, tmp_path / "later"


def test_a_miss_whose_importer_is_imported_already_is_settled(
    ptree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the helper that missed an import is imported in the process, and the name is not,
    the dependency's appearing cannot change the module's plugins there: importing the module
    does not run the helper again.  The entry is used, and no finder is asked for the name."""
    helper, dependency, later = _through_a_helper(ptree, tmp_path, monkeypatch)
    before = identity(beside(ptree))
    sys.path.append(str(provide(later, dependency)))
    importlib.invalidate_caches()
    assert helper in sys.modules and dependency not in sys.modules
    asked = AskedFinder()
    sys.meta_path.insert(0, asked)
    try:
        for _ in range(2):
            ptree.purge()
            assert tags(ptree, "ITestPlugin") == ["a"]
            assert imports(ptree) == ["a"]
    finally:
        sys.meta_path.remove(asked)
    assert dependency not in asked.names
    assert identity(beside(ptree)) == before
    # Where the helper is not imported yet, the dependency is there for it: scanned again.
    del sys.modules[helper]
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a", "cond"]
    assert fresh(ptree).missing == {}


def test_a_miss_whose_name_is_imported_beside_its_importer_counts(
    ptree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper is imported, but so is the name it missed (imported since, by someone else):
    the process no longer tells what the helper found, and the module is scanned again."""
    helper, dependency, later = _through_a_helper(ptree, tmp_path, monkeypatch)
    sys.path.append(str(provide(later, dependency)))
    importlib.invalidate_caches()
    importlib.import_module(dependency)
    assert helper in sys.modules
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]  # the helper, imported before, found nothing
    assert sorted(imports(ptree)) == ["a", "cond"]


def test_twisted_probes_seen_by_a_first_scan_are_settled_where_twisted_is_imported(
    ptree: PluginTree,
) -> None:
    """A process that imports Twisted while scanning (``cache regenerate``, as an
    administrator does) sees Twisted probe for other platforms' modules; those misses are
    Twisted's.  A process that has imported Twisted before its call asks no finder about
    them, and still answers from the cache."""
    ptree.plugin("legacy", plugin_source("legacy", counted=True).replace(
        "from compat_plugin import IPlugin", "from twisted.plugin import IPlugin"))
    cold = run_tree(ptree, 'assert "twisted" not in sys.modules\n'
                           'out["calls"] = tags("ITestPlugin")')
    assert sorted(cold["calls"]) == ["a", "legacy"]
    misses = fresh(ptree).missing.get("legacy", [])
    twisteds = [name for name, importer in misses if (importer or "").startswith("twisted.")]
    assert twisteds, misses
    asking = (
        "import twisted.plugin\n"
        "class Asked:\n"
        "    names = []\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        self.names.append(name)\n"
        "sys.meta_path.insert(0, Asked())\n"
        'out["calls"] = tags("ITestPlugin2")\n'
        'out["asked"] = Asked.names\n'
    )
    warm = run_tree(ptree, asking)
    assert warm["calls"] == ["b"]
    assert warm["imports"] == ["b"]
    assert not set(twisteds) & set(warm["asked"]), warm["asked"]


def test_a_sys_path_entry_appended_at_run_time_makes_the_entry_rescan(
    ptree: PluginTree, tmp_path: Path
) -> None:
    dependency = optional_dependency()
    ptree.plugin("cond", conditional(dependency))
    assert tags(ptree, "ITestPlugin") == ["a"]
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a"]

    sys.path.append(str(provide(tmp_path / "later", dependency)))
    assert tags(ptree, "ITestPlugin") == ["a", "cond"]
    assert imports(ptree) == ["a", "cond"]
    document = fresh(ptree)
    assert document.missing == {}
    assert document.provided("cond") == {"plugin": ["IPlugin", "ITestPlugin"]}


def test_a_new_finder_providing_the_missing_import_makes_the_entry_rescan(
    ptree: PluginTree,
) -> None:
    dependency = optional_dependency()
    ptree.plugin("cond", conditional(dependency))
    assert tags(ptree, "ITestPlugin") == ["a"]
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]

    sys.meta_path.append(ProvidingFinder(dependency))
    assert tags(ptree, "ITestPlugin") == ["a", "cond"]
    assert fresh(ptree).missing == {}


@pytest.mark.parametrize("part", ["name", "module"])
def test_a_byte_changed_in_what_a_scan_missed_is_caught(ptree: PluginTree, part: str) -> None:
    """Still JSON of the right shape, but naming another import, or another module: trusted,
    it would keep the entry current once the real one is installed."""
    dependency = optional_dependency()
    ptree.plugin("cond", conditional(dependency))
    assert tags(ptree, "ITestPlugin") == ["a"]
    good = beside(ptree).read_bytes()
    old = f'"{dependency}"' if part == "name" else '"cond":'
    assert good.count(old.encode()) == 1
    beside(ptree).write_bytes(good.replace(old.encode(), old.replace("d", "e", 1).encode()))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert beside(ptree).read_bytes() == good  # ignored and rewritten

    ptree.purge()
    sys.meta_path.append(ProvidingFinder(dependency))
    assert tags(ptree, "ITestPlugin") == ["a", "cond"]


def test_a_blocked_import_stays_missing(
    ptree: PluginTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dependency = optional_dependency()
    ptree.plugin("cond", conditional(dependency))
    assert tags(ptree, "ITestPlugin") == ["a"]
    ptree.purge()
    sys.path.append(str(provide(tmp_path / "later", dependency)))
    monkeypatch.setitem(sys.modules, dependency, None)
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a"]


def test_a_module_imported_before_its_scan_is_not_recorded_as_needing_nothing(
    ptree: PluginTree, tmp_path: Path
) -> None:
    """The application imported the module itself, so no scan saw what its import missed:
    what this process saw of it must not keep a later process from scanning it when the
    dependency is there."""
    dependency = optional_dependency()
    ptree.plugin("cond", conditional(dependency))
    importlib.import_module(f"{ptree.plugins_name}.cond")
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert stored(ptree).missing.get("cond") in (None, [[dependency, f"{ptree.plugins_name}.cond"]])

    ptree.purge()
    sys.path.append(str(provide(tmp_path / "installed", dependency)))
    assert tags(ptree, "ITestPlugin") == ["a", "cond"]


# == Writing ====================================================================================


def test_no_temporary_files_left_after_many_writes(ptree: PluginTree) -> None:
    for index in range(12):
        ptree.plugin(f"m{index:02d}", counted(f"m{index:02d}", "ITestPlugin2"))
        ptree.purge()
        assert tags(ptree, "ITestPlugin") == ["a"]
    assert strays(ptree.plugins_dir, user_cache()) == []
    assert [p.name for p in beside(ptree).parent.glob("*.json")] == [CACHE_NAME]
    assert len(fresh(ptree).stamps) == 14


@pytest.mark.parametrize(("umask", "mode"), [(0o027, 0o640), (0o022, 0o644), (0o002, 0o664)])
def test_cache_file_mode_follows_umask(ptree: PluginTree, umask: int, mode: int) -> None:
    out = run_tree(ptree, f'os.umask({umask:#o})\nout["calls"] = [tags("ITestPlugin")]')
    assert out["calls"] == [["a"]]
    assert stat.S_IMODE(beside(ptree).stat().st_mode) == mode


def test_cache_is_written_only_when_something_changed(ptree: PluginTree) -> None:
    body = 'out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin2")]'
    cold = run_tree(ptree, body)
    assert cold["calls"] == [["a"], ["b"]]
    before = identity(beside(ptree))

    for _ in range(2):
        warm = run_tree(ptree, 'out["calls"] = [tags("ITestPlugin")]')
        assert warm["calls"] == [["a"]]
        assert warm["imports"] == ["a"]
        assert identity(beside(ptree)) == before

    ptree.plugin("c", counted("c", "ITestPlugin"))
    grown = run_tree(ptree, body)
    assert grown["calls"] == [["a", "c"], ["b"]]
    assert grown["imports"] == ["c", "a", "b"]
    assert identity(beside(ptree)) != before
    assert set(fresh(ptree).stamps) == {"a", "b", "c"}
    assert directory_caches(user_cache()) == []


def test_removing_a_module_rewrites_the_cache(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]
    (ptree.plugins_dir / "b.py").unlink()
    ptree.purge()
    assert tags(ptree, "ITestPlugin2") == []
    assert set(fresh(ptree).stamps) == {"a"}


# -- COMPAT_PLUGIN_NO_CACHE_WRITE --------------------------------------------------------------


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
    assert directory_caches(user_cache()) == []
    assert not list(ptree.root.rglob("*.json"))


def test_no_cache_write_zero_means_writing(
    ptree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPAT_PLUGIN_NO_CACHE_WRITE", "0")
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert ptree.cache_files() == [beside(ptree)]


def test_without_no_cache_write_repeat_calls_do_not_rescan(ptree: PluginTree) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]
    del sys.modules[f"{ptree.plugins_name}.b"]
    for _ in range(3):
        assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a", "b"]


# == Where it lives: beside the plugins, else per user ==========================================


def block(tree: PluginTree) -> Path:
    """Make the cache beside the plugins unwritable, even for root: ``__pycache__`` is a file."""
    blocker = tree.plugins_dir / "__pycache__"
    blocker.write_text("not a directory\n")
    return blocker


def test_the_per_user_cache_serves_then_is_adopted_beside(
    ptree: PluginTree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    blocker = block(ptree)
    assert tags(ptree, "ITestPlugin") == ["a"]
    per_user = cache_per_user(ptree.plugins_dir)
    assert directory_caches(user_cache()) == [per_user]
    assert set(read_cache(per_user, ptree.plugins_dir, ptree.plugins_name).stamps) == {"a", "b"}
    assert [r.levelname for r in caplog.records if "not writable" in r.getMessage()] == ["INFO"]
    written = identity(per_user)

    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a"]

    # The place beside the plugins can be written again: nothing changed, nothing is written,
    # and the per-user entries still serve.
    blocker.unlink()
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a"]
    assert not beside(ptree).exists()

    # Once something changes, everything known goes beside the plugins; b is not scanned.
    ptree.plugin("c", counted("c", "ITestPlugin"))
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a", "c"]
    assert sorted(imports(ptree)) == ["a", "c"]
    assert set(fresh(ptree).stamps) == {"a", "b", "c"}
    assert identity(per_user) == written

    ptree.purge()
    assert tags(ptree, "ITestPlugin2") == ["b"]
    assert imports(ptree) == ["b"]
    assert noisy(caplog) == []


SEEN = """
import gc
import weakref


class Node:
    pass


# A cycle a plugin module's import leaves as garbage is collected while the pass goes on:
# young collections, which the import's own allocations set off, still run.
reclaimed = []
node = Node()
node.itself = node
weakref.finalize(node, reclaimed.append, True)
del node
kept = [[] for _ in range(50_000)]  # young objects, alive: enough to set collections off
COLLECTING = gc.isenabled() and reclaimed == [True], gc.get_threshold()
"""


def test_a_pass_holds_full_collections_and_gives_them_back(ptree: PluginTree) -> None:
    ptree.plugin("seen", SEEN)
    ptree.plugin("broken", "raise RuntimeError('broken at import')\n")
    before = gc.get_threshold()
    assert tags(ptree, "ITestPlugin") == ["a"]
    enabled, during = importlib.import_module(f"{ptree.plugins_name}.seen").COLLECTING
    assert enabled and during[:2] == before[:2] and during[2] > 10**6
    assert gc.get_threshold() == before  # after a failed import too
    ptree.purge()
    gc.set_threshold(300, 3, 4)
    try:
        assert tags(ptree, "ITestPlugin") == ["a"]
        assert gc.get_threshold() == (300, 3, 4)  # the caller's choice stands
    finally:
        gc.set_threshold(*before)


def test_a_cache_serves_its_directory_by_any_path_and_no_copy_of_it(
    ptree: PluginTree, tmp_path: Path
) -> None:
    assert tags(ptree, "ITestPlugin") == ["a"]
    real = os.path.realpath(ptree.plugins_dir)
    assert ptree.cache_document()["directory"] == real
    link = tmp_path / "link"
    link.symlink_to(ptree.plugins_dir, target_is_directory=True)
    for reached in (real, str(link)):
        assert sorted(read_entries(str(beside(ptree)), reached, ptree.plugins_name).names()) \
            == ["a", "b"], reached
    # A copy keeps the stamps (copy2) and the cache file, which names the original.
    copy_dir = tmp_path / "copy"
    shutil.copytree(ptree.plugins_dir, copy_dir)
    copied = cache_beside(copy_dir)
    assert len(read_entries(str(copied), str(copy_dir), ptree.plugins_name)) == 0
    assert len(read_entries(str(copied), real, ptree.plugins_name)) == 2


def test_a_directory_replaced_by_a_link_to_its_copy_is_read_by_its_old_name(
    ptree: PluginTree, tmp_path: Path
) -> None:
    """The documented trade-off of not resolving a path the header names: the copy's cache
    (naming the old directory) is used through the link, entry by entry against the copy's
    own stamps -- which ``copytree`` kept, so nothing needs importing and nothing is wrong."""
    assert tags(ptree, "ITestPlugin") == ["a"]
    copy_dir = tmp_path / "copy"
    shutil.copytree(ptree.plugins_dir, copy_dir)
    ptree.plugins_dir.rename(tmp_path / "moved-aside")
    ptree.plugins_dir.symlink_to(copy_dir, target_is_directory=True)
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a"]
    assert imports(ptree) == ["a"]  # loaded, not scanned: b was not imported
    ptree.plugin("a", counted("a2"))  # written through the link: a change is still seen
    ptree.purge()
    assert tags(ptree, "ITestPlugin") == ["a2"]


def test_the_per_user_file_is_named_by_the_directory_s_real_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    path = _directory_file.per_user_path("link")
    assert path == str(cache_per_user(tmp_path / "real"))
    assert path == _directory_file.per_user_path(str(tmp_path / "real"))
    digest, interpreter, suffix = os.path.basename(path).split(".", 2)
    assert len(digest) == 16 and set(digest) <= set("0123456789abcdef")
    assert f"{interpreter}.{suffix}" == f"{TAG}.json"
    assert _directory_file.beside_path("link") == os.path.join("link", "__pycache__",
                                                                CACHE_NAME)


# -- unprivileged users, read-only directories ---------------------------------------------------


def remove_tree(base: Path) -> None:
    for dirpath, dirnames, _ in os.walk(base):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    shutil.rmtree(base)


def owned_dir(path: Path, uid: int) -> Path:
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


@dataclass
class Sandbox:
    """A plugin tree every user can read, in a read-only plugin directory, below ``/tmp``
    (pytest's own temporary directories are private to the user running the tests).

    Children run as ``nobody`` when the tests run as root, else as the current user (for whom
    the 0555 plugin directory is just as unwritable).
    """

    base: Path
    tree: PluginTree
    user_cache: Path
    home: Path
    uid: int

    def run(self, body: str, env: dict[str, str] | None = None,
            path: Sequence[Path] = ()) -> dict[str, Any]:
        environment = {"COMPAT_PLUGIN_CACHE_DIR": str(self.user_cache), "HOME": str(self.home)}
        environment.update(env or {})
        out = run_tree(self.tree, body, path=[*path], env=environment,
                       drop_to=self.uid if os.geteuid() == 0 else None)
        assert out["uid"] == self.uid
        return out

    def per_user(self) -> Path:
        return cache_per_user(self.tree.plugins_dir, self.user_cache)

    def add_plugin(self, name: str, source: str) -> None:
        self.tree.plugins_dir.chmod(0o755)
        self.tree.plugin(name, source).chmod(0o644)
        self.tree.plugins_dir.chmod(0o555)

    def owned_dir(self, name: str) -> Path:
        """A directory below ``base`` that the children's user owns."""
        return owned_dir(self.base / name, self.uid)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    base = Path(tempfile.mkdtemp(prefix="compat-plugin-", dir="/tmp"))
    try:
        tree = PluginTree(base, f"cpu{os.getpid()}_{next(_serial)}")
        tree.write("counter.py", "imports = []\n")
        tree.plugin("a", counted("a", "ITestPlugin"))
        tree.plugin("b", counted("b", "ITestPlugin2"))
        open_to_everyone(base)
        tree.plugins_dir.chmod(0o555)
        uid = NOBODY if os.geteuid() == 0 else os.geteuid()
        user, home = owned_dir(base / "usercache", uid), owned_dir(base / "home", uid)
        yield Sandbox(base, tree, user, home, uid)
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
        """
    )
    assert first["calls"] == [["a"], ["a"], ["b"], ["a"]]
    assert not (tree.plugins_dir / "__pycache__").exists()
    per_user = sandbox.per_user()
    assert directory_caches(sandbox.user_cache) == [per_user]
    document = read_cache(per_user, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)
    notes = [log for log in unwritable_notes(first) if str(tree.plugins_dir) in log[1]]
    assert [level for level, _ in notes] == ["INFO"]
    assert levels(first) <= {"DEBUG", "INFO"}

    before = snapshot(sandbox.user_cache)
    second = sandbox.run('out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin")]')
    assert second["calls"] == [["a"], ["a"]]
    assert second["loaded"] == ["a"]
    assert second["imports"] == ["a"]
    assert levels(second) <= {"DEBUG", "INFO"}
    assert snapshot(sandbox.user_cache) == before
    assert not (tree.plugins_dir / "__pycache__").exists()

    sandbox.add_plugin("c", counted("c", "ITestPlugin"))
    third = sandbox.run('out["calls"] = [tags("ITestPlugin")]')
    assert third["calls"] == [["a", "c"]]
    assert third["loaded"] == ["a", "c"]
    assert levels(third) <= {"DEBUG", "INFO"}
    document = read_cache(per_user, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)
    assert directory_caches(sandbox.user_cache) == [per_user]


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
    assert list(sandbox.user_cache.rglob("*")) == []
    assert not (sandbox.tree.plugins_dir / "__pycache__").exists()


def test_no_cache_write_unprivileged_writes_nothing(sandbox: Sandbox) -> None:
    before = snapshot(sandbox.base)
    out = sandbox.run(
        'out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin2")]',
        env={"COMPAT_PLUGIN_NO_CACHE_WRITE": "1"},
    )
    assert out["calls"] == [["a"], ["b"]]
    assert snapshot(sandbox.base) == before
    assert list(sandbox.user_cache.rglob("*")) == []
    assert list(sandbox.home.rglob("*")) == []
    assert unwritable_notes(out) == []


@pytest.mark.parametrize("where", ["xdg", "home", "empty-xdg"])
def test_user_cache_location(sandbox: Sandbox, where: str) -> None:
    xdg = sandbox.owned_dir("xdg")
    env = {"COMPAT_PLUGIN_CACHE_DIR": ""}
    if where == "xdg":
        env["XDG_CACHE_HOME"] = str(xdg)
        root = xdg / "compat_plugin"
    else:
        env["XDG_CACHE_HOME"] = ""
        root = sandbox.home / ".cache" / "compat_plugin"
    if where == "home":
        env["XDG_CACHE_HOME"] = ""
    expected = cache_per_user(sandbox.tree.plugins_dir, root)

    out = sandbox.run('out["calls"] = [tags("ITestPlugin")]', env=env)
    assert out["calls"] == [["a"]]
    written = sorted(sandbox.base.rglob("*.json"))
    assert [path for path in written if path.parent.name != "entry-points"] == [expected]
    assert {path.parent.parent for path in written if path.parent.name == "entry-points"} <= {
        root
    }
    document = read_cache(expected, sandbox.tree.plugins_dir, sandbox.tree.plugins_name)
    assert document.stamps == disk_modules(sandbox.tree.plugins_dir)

    warm = sandbox.run('out["calls"] = [tags("ITestPlugin")]', env=env)
    assert warm["calls"] == [["a"]]
    assert warm["imports"] == ["a"]


# -- zip archives -----------------------------------------------------------------------------


def archive_members(package: str, plugins: dict[str, str]) -> dict[str, str]:
    """The files of ``package`` (interfaces, counter, plugin modules) by archive path."""
    members = {
        f"{package}/__init__.py": "",
        f"{package}/ifaces.py": INTERFACES,
        f"{package}/counter.py": "imports = []\n",
        f"{package}/plugins/__init__.py": PLUGINS_INIT,
        **{f"{package}/plugins/{name}.py": source for name, source in plugins.items()},
    }
    return {name: textwrap.dedent(text).replace("{pkg}", package)
            for name, text in members.items()}


def build_zip(archive: Path, package: str, plugins: dict[str, str]) -> None:
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in archive_members(package, plugins).items():
            zf.writestr(name, text)


# What a zipapp of ``archive_members`` runs: the tags of the plugins providing ITestPlugin.
ZIPAPP_MAIN = """
import importlib, json
from compat_plugin import getPlugins
package, ifaces = (importlib.import_module(f"{pkg}.{name}") for name in ("plugins", "ifaces"))
print(json.dumps([plugin.tag for plugin in getPlugins(ifaces.ITestPlugin, package)]))
"""


def build_zipapp(app: Path, package: str, plugins: dict[str, str]) -> None:
    """Make ``app`` with ``python -m zipapp`` from ``archive_members`` and a ``__main__``."""
    with tempfile.TemporaryDirectory() as temporary:
        source = Path(temporary)
        members = {**archive_members(package, plugins),
                   "__main__.py": ZIPAPP_MAIN.replace("{pkg}", package)}
        for name, text in members.items():
            write(source / name, text)
        subprocess.run([sys.executable, "-m", "zipapp", str(source), "-o", str(app)],
                       check=True)


def test_plugins_inside_a_zip_archive_are_cached_per_user(tmp_path: Path) -> None:
    package = f"cpz{os.getpid()}_{next(_serial)}"
    archive = tmp_path / "plugins.zip"
    build_zip(archive, package, {"a": counted("a"), "b": counted("b", "ITestPlugin2")})
    content, when = archive.read_bytes(), archive.stat().st_mtime_ns
    directory = f"{archive}/{package}/plugins"
    body = 'out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin")]'
    options: dict[str, Any] = {"plugins": f"{package}.plugins", "ifaces": f"{package}.ifaces",
                               "counter": f"{package}.counter", "path": [archive]}

    cold = run_child(body, **options)
    assert cold["calls"] == [["a"], ["a"]]
    assert cold["loaded"] == ["a", "b"]
    assert levels(cold) <= {"DEBUG", "INFO"}
    assert archive.read_bytes() == content
    assert archive.stat().st_mtime_ns == when
    assert [path.name for path in tmp_path.iterdir()] == ["plugins.zip"]
    per_user = cache_per_user(directory)
    assert directory_caches(user_cache()) == [per_user]
    document = read_cache(per_user, directory, f"{package}.plugins")
    with zipfile.ZipFile(archive) as zf:
        sizes = {name: zf.getinfo(f"{package}/plugins/{name}.py").file_size for name in "ab"}
    assert document.stamps == {name: [f"{name}.py", when, size] for name, size in sizes.items()}

    before = snapshot(user_cache())
    warm = run_child(body, **options)
    assert warm["calls"] == [["a"], ["a"]]
    assert warm["loaded"] == ["a"]
    assert warm["imports"] == ["a"]
    assert levels(warm) <= {"DEBUG", "INFO"}
    assert snapshot(user_cache()) == before
    assert archive.read_bytes() == content


def test_a_zipped_module_imported_by_its_sibling_is_cached_too(tmp_path: Path) -> None:
    """Inside an archive, a module first imported by another's scan, then scanned itself: its
    stamp then and now are the archive's, and its entry is written."""
    package = f"cpz{os.getpid()}_{next(_serial)}"
    archive = tmp_path / "plugins.zip"
    build_zip(archive, package, {"a": counted("a") + "from {pkg}.plugins import b\n",
                                 "b": counted("b", "ITestPlugin2")})
    options: dict[str, Any] = {"plugins": f"{package}.plugins", "ifaces": f"{package}.ifaces",
                               "counter": f"{package}.counter", "path": [archive]}
    assert run_child('out["calls"] = tags("ITestPlugin")', **options)["calls"] == ["a"]
    directory = f"{archive}/{package}/plugins"
    document = read_cache(cache_per_user(directory), directory, f"{package}.plugins")
    assert sorted(document.stamps) == ["a", "b"]


def test_a_zipapp_regenerated_into_a_shared_cache_is_warm_for_every_user() -> None:
    """Nothing can be written inside a zipapp: its installer regenerates its caches into a
    cache directory that every run names (``COMPAT_PLUGIN_CACHE_DIR``).  A user who can write
    nothing then imports only the matching modules; once the archive is replaced, its modules
    are scanned again (the new plugin is found) until the next regeneration."""
    base = Path(tempfile.mkdtemp(prefix="compat-plugin-", dir="/tmp"))
    try:
        package = f"cpza{os.getpid()}_{next(_serial)}"
        app, shared, home = base / "app.pyz", base / "shared-cache", base / "home"
        plugins = {"a": counted("a"), "b": counted("b", "ITestPlugin2")}
        build_zipapp(app, package, plugins)
        installer = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        installer["COMPAT_PLUGIN_CACHE_DIR"] = str(shared)

        def regenerate() -> None:
            done = subprocess.run(
                [sys.executable, "-m", "compat_plugin", "cache", "regenerate",
                 f"{package}.plugins"], env={**installer, "PYTHONPATH": f"{app}{os.pathsep}"
                                                           f"{LIBRARY}"},
                capture_output=True, text=True, timeout=300, cwd=base)
            assert done.returncode == 0, done.stderr

        regenerate()
        assert len(directory_caches(shared)) == 1
        # The archive runs as a zipapp, and finds its plugins from the shared cache.
        ran = subprocess.run([sys.executable, str(app)], env={
            **installer, "PYTHONPATH": LIBRARY}, capture_output=True, text=True, check=True)
        assert json.loads(ran.stdout) == ["a"]
        home.mkdir()
        open_to_everyone(base)
        before = snapshot(base)

        uid = NOBODY if os.geteuid() == 0 else os.geteuid()
        options: dict[str, Any] = {
            "plugins": f"{package}.plugins", "ifaces": f"{package}.ifaces",
            "counter": f"{package}.counter", "path": [app],
            "env": {"COMPAT_PLUGIN_CACHE_DIR": str(shared), "HOME": str(home),
                    "XDG_CACHE_HOME": ""},
            "drop_to": uid if os.geteuid() == 0 else None}
        body = 'out["calls"] = [tags("ITestPlugin")]'
        if os.geteuid() == 0:  # nobody can write the shared cache, nor anything else
            warm = run_child(body, **options)
            assert warm["uid"] == NOBODY
            assert (warm["calls"], warm["loaded"], warm["imports"]) == ([["a"]], ["a"], ["a"])
            assert levels(warm) <= {"DEBUG", "INFO"}
            assert snapshot(base) == before

        build_zipapp(app, package, {**plugins, "c": counted("c")})  # a new release
        replaced = run_child(body, **options)
        assert replaced["calls"] == [["a", "c"]]
        assert replaced["loaded"] == ["a", "b", "c"]
        regenerate()
        again = run_child(body, **options)
        assert (again["calls"], again["loaded"]) == ([["a", "c"]], ["a", "c"])
    finally:
        remove_tree(base)


# == Caches and installed distributions =========================================================

HOSTAPP_DROPIN = '''
from zope.interface import implementer
from compat_plugin import IPlugin
from hostapp.ifaces import {interface}


@implementer(IPlugin, {interface})
class Thing:
    name = {name!r}


thing = Thing()
'''


def hostapp_dropins(root: Path, things: dict[str, str]) -> Path:
    """``root/hostapp/plugins`` holding one module per ``{name: interface}`` (more, if it
    is the installed host's)."""
    directory = root / "hostapp" / "plugins"
    directory.mkdir(parents=True, exist_ok=True)
    for name, interface in things.items():
        (directory / f"{name}.py").write_text(HOSTAPP_DROPIN.format(interface=interface,
                                                                    name=name))
    return directory


def test_an_unrelated_distribution_installed_next_to_the_host_leaves_every_cache_warm(
    install: Install, tmp_path: Path
) -> None:
    site = install("site", "hostapp-2.0")
    extra = tmp_path / "extra"
    dropins = hostapp_dropins(extra, {"marble": "IMaterial", "gadget": "IOther",
                                      "slate": "IMaterial", "widget": "IOther"})
    builtin = site / "hostapp" / "plugins"
    body = 'out["calls"] = [tags("IMaterial")]'
    options: dict[str, Any] = {"plugins": "hostapp.plugins", "ifaces": "hostapp.ifaces",
                               "attribute": "name", "path": [site, extra]}

    cold = run_child(body, **options)
    assert cold["calls"] == [["granite", "marble", "slate"]]
    caches = [cache_beside(builtin), cache_beside(dropins)]
    before = {cache: identity(cache) for cache in caches}

    install("site", "optdep-1.0")
    assert (site / "optdep" / "__init__.py").exists()
    warm = run_child(body, **options)
    assert warm["calls"] == cold["calls"]
    assert problems(warm) == []
    assert warm["loaded"] == ["builtin", "marble", "slate"]
    assert {cache: identity(cache) for cache in caches} == before
    for cache, directory in zip(caches, (builtin, dropins)):
        assert read_cache(cache, directory, "hostapp.plugins").stamps == disk_modules(directory)


def test_a_conditional_plugin_follows_its_optional_dependency(
    ptree: PluginTree, tmp_path: Path, wheels: dict[str, Path]
) -> None:
    """The optional dependency is installed and uninstalled by pip into a virtual environment
    whose site-packages is another sys.path entry than the plugin package's."""
    ptree.plugin("porcelain", conditional("optdep", "porcelain"))
    venv = Venv(tmp_path / "venv")
    twice = 'out["calls"] = [tags("ITestPlugin"), tags("ITestPlugin")]'

    def child() -> dict[str, Any]:
        return run_tree(ptree, twice, python=venv.python)

    cold = child()
    assert cold["calls"] == [["a"], ["a"]]
    assert fresh(ptree).missing == {"porcelain": [["optdep", f"{ptree.plugins_name}.porcelain"]]}
    before = identity(beside(ptree))
    warm = child()
    assert warm["calls"] == [["a"], ["a"]]
    assert warm["imports"] == ["a"]  # porcelain offers nothing for ITestPlugin: not imported
    assert identity(beside(ptree)) == before

    venv.pip("install", *OFFLINE, str(wheels["optdep-1.0"]))
    appeared = child()
    assert appeared["calls"] == [["a", "porcelain"]] * 2
    assert problems(appeared) == []
    document = fresh(ptree)
    assert document.missing == {}
    assert document.provided("porcelain") == {"plugin": ["IPlugin", "ITestPlugin"]}
    settled = child()
    assert settled["calls"] == [["a", "porcelain"]] * 2
    assert sorted(settled["imports"]) == ["a", "porcelain"]

    # Uninstalled: the record says porcelain offers a plugin; loading it says otherwise.
    venv.pip("uninstall", "--yes", "optdep")
    gone = child()
    assert gone["calls"] == [["a"], ["a"]]
    ((level, message),) = problems(gone)
    assert level == "WARNING"
    assert message.startswith("ignoring cached plugin from directory ")
    assert f"{ptree.plugins_name}.porcelain:plugin" in message
    quiet = child()
    assert quiet["calls"] == [["a"], ["a"]]
    assert problems(quiet) == []
    assert fresh(ptree).missing == {"porcelain": [["optdep", f"{ptree.plugins_name}.porcelain"]]}

    venv.pip("install", *OFFLINE, str(wheels["optdep-1.0"]))
    back = child()
    assert back["calls"] == [["a", "porcelain"]] * 2
    assert problems(back) == []


MODULES = 200


def test_a_site_wide_cache_serves_an_unprivileged_user_with_other_distributions(
    wheels: dict[str, Path],
) -> None:
    """An administrator regenerates the cache of a 200-module plugin directory; a user who
    can write neither there nor in any cache directory, and who has another distribution on
    ``PYTHONPATH``, imports only the modules whose plugins match, and writes nothing."""
    base = Path(tempfile.mkdtemp(prefix="compat-plugin-", dir="/tmp"))
    try:
        tree = PluginTree(base / "site", f"cpsw{os.getpid()}_{next(_serial)}")
        matching = []
        for index in range(MODULES):
            name = f"m{index:03d}"
            interface = "ITestPlugin" if index % 10 == 0 else "ITestPlugin2"
            tree.plugin(name, plugin_source(name, interface))
            if interface == "ITestPlugin":
                matching.append(name)
        extra = base / "extra"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *OFFLINE, "--target", str(extra), str(wheels["optdep-1.0"])],
            check=True, capture_output=True,
        )
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        environment["PYTHONPATH"] = os.pathsep.join([str(tree.root), LIBRARY])
        environment["COMPAT_PLUGIN_CACHE_DIR"] = str(base / "administrator-cache")
        regenerated = subprocess.run(
            [sys.executable, "-m", "compat_plugin", "cache", "regenerate", tree.plugins_name],
            env=environment, capture_output=True, text=True, timeout=300, cwd=base,
        )
        assert regenerated.returncode == 0, regenerated.stderr
        assert set(read_cache(beside(tree), tree.plugins_dir, tree.plugins_name).stamps) == {
            f"m{index:03d}" for index in range(MODULES)
        }
        user_cache_dir, home = base / "usercache", base / "home"
        user_cache_dir.mkdir()
        home.mkdir()
        open_to_everyone(base)
        for directory in (tree.plugins_dir, beside(tree).parent, user_cache_dir, home):
            directory.chmod(0o555)
        before = snapshot(base)

        uid = NOBODY if os.geteuid() == 0 else os.geteuid()
        out = run_tree(
            tree, 'out["calls"] = [tags("ITestPlugin")]', counter=None, path=[extra],
            env={"COMPAT_PLUGIN_CACHE_DIR": str(user_cache_dir), "HOME": str(home),
                 "XDG_CACHE_HOME": ""},
            drop_to=uid if os.geteuid() == 0 else None,
        )
        assert out["uid"] == uid
        assert out["calls"] == [matching]
        assert out["loaded"] == matching
        assert levels(out) <= {"DEBUG", "INFO"}
        assert snapshot(base) == before
    finally:
        remove_tree(base)


# -- a container image ---------------------------------------------------------------------------


def layer_tar(layer: Path, archive: Path) -> None:
    """The directory ``layer`` as an image layer: a tar whose times keep whole seconds only,
    as Docker's and containerd's layer writers write them."""

    def cut(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.pax_headers = int(info.mtime), {}
        return info

    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(layer.iterdir()):
            tar.add(child, arcname=child.name, filter=cut)


def pull(archive: Path, layer: Path) -> Path:
    """Extract the layer ``archive`` into the directory ``layer``, as a pull does."""
    layer.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(layer, filter="data")
        else:  # pragma: no cover - Pythons without extraction filters
            tar.extractall(layer)
    return layer


def mount_overlay(target: Path, lower: Sequence[Path], upper: Path | None = None) -> bool:
    """Mount an overlay of ``lower`` (the first on top) at ``target``, writable into ``upper``
    if given, else read-only; False if this machine cannot."""
    options = "lowerdir=" + ":".join(map(str, lower))
    if upper is not None:
        work = upper.with_name(f"{upper.name}-work")
        work.mkdir()
        options += f",upperdir={upper},workdir={work}"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)],
                             capture_output=True, check=False)
    return mounted.returncode == 0


@pytest.mark.parametrize("layout", ["app-and-site-on-ext4", "one-site-on-tmpfs"])
def test_caches_regenerated_while_an_image_is_built_serve_its_containers(
    wheels: dict[str, Path], layout: str
) -> None:
    """An image in two layers.  First hostapp with plugin modules added to hostapp.plugins,
    in an application directory (or in the site directory), and a site directory, where pip
    installs acme-materials (entry points in hostapp.plugins, requiring hostapp) and leaves the
    bytecode of a top-level module in the entry's ``__pycache__``; then ``compat-plugin cache
    regenerate`` runs on an overlay of that layer, as a build step runs.  The layers are
    exported with whole-second times, as image builders export them, then pulled (extracted)
    and mounted read-only where the build ran.  A container's process, run as nobody with no
    writable cache, finds what a process reading no cache finds, imports only the matching
    modules and reads no installed metadata (nor judges the requirement again): the build's
    caches serve it.  On tmpfs, unlike ext4, a directory copied up changes size."""
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay and dropping privileges need root")
    outer = Path(tempfile.mkdtemp(prefix="compat-plugin-", dir="/tmp"))
    base = outer / "fs"
    base.mkdir()
    on_tmpfs = layout == "one-site-on-tmpfs"
    if on_tmpfs and subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(base)],
                                   capture_output=True, check=False).returncode != 0:
        remove_tree(outer)
        pytest.skip("this machine cannot mount a tmpfs")
    root = base / "root"  # the image's file system, at build time and in containers
    site = root / "lib" / "site"  # below the root, as in any image
    app = site if on_tmpfs else root / "app"
    root.mkdir()
    first = base / "built" / "1"
    install_wheels(first / app.relative_to(root), wheels["hostapp-2.0"])
    hostapp_dropins(first / app.relative_to(root), {"marble": "IMaterial", "gadget": "IOther",
                                                    "slate": "IMaterial", "widget": "IOther"})
    install_wheels(first / "lib" / "site", wheels["acme_materials-1.0"])
    top_level = write(first / "lib" / "site" / "toplevel.py", "")
    py_compile.compile(str(top_level), importlib.util.cache_from_source(str(top_level)))
    second = base / "built" / "2"
    second.mkdir()
    try:
        if not mount_overlay(root, [first], second):
            pytest.skip("this machine cannot mount an overlay file system")
        try:
            environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            environment["PYTHONPATH"] = os.pathsep.join([*dict.fromkeys([str(app), str(site)]),
                                                         LIBRARY])
            environment["COMPAT_PLUGIN_CACHE_DIR"] = str(base / "builder-cache")
            environment["PYTHONDONTWRITEBYTECODE"] = "1"  # as images often set: not bytecode
            regenerated = subprocess.run(
                [sys.executable, "-m", "compat_plugin", "cache", "regenerate",
                 "hostapp.plugins"],
                env=environment, capture_output=True, text=True, timeout=300, cwd=base)
            assert regenerated.returncode == 0, regenerated.stderr
        finally:
            subprocess.run(["umount", str(root)], check=True)
        pulled = []
        for number, built in ((1, first), (2, second)):
            layer_tar(built, base / f"layer-{number}.tar")
            pulled.append(pull(base / f"layer-{number}.tar", base / "pulled" / str(number)))
        marble = app.relative_to(root) / "hostapp" / "plugins" / "marble.py"
        if (first / marble).stat().st_mtime_ns % 10**9 == 0:
            pytest.skip("this file system keeps whole seconds only: nothing is cut")
        assert (pulled[0] / marble).stat().st_mtime_ns % 10**9 == 0
        home = base / "home"
        home.mkdir()
        open_to_everyone(outer)
        assert mount_overlay(root, [pulled[1], pulled[0]])
        try:
            body = """
                out["calls"] = [tags("IMaterial")]
                out["loaded"] = sorted(name for name in sys.modules
                                       if name.startswith(("hostapp.plugins.", "acme")))
                from compat_plugin._inventory import cache_states
                out["stale"] = [[state.kind, state.why] for state in cache_states(package)
                                if state.written and not state.current]
                out["modules"] = sorted(sys.modules)
                """
            options: dict[str, Any] = {
                "plugins": "hostapp.plugins", "ifaces": "hostapp.ifaces", "attribute": "name",
                "path": list(dict.fromkeys([app, site])), "drop_to": NOBODY,
                "env": {"COMPAT_PLUGIN_CACHE_DIR": str(home / "cache"), "HOME": str(home),
                        "XDG_CACHE_HOME": ""}}
            warm = run_child(body, **options)
            options["env"]["COMPAT_PLUGIN_NO_CACHE_READ"] = "1"
            uncached = run_child(body, **options)
        finally:
            subprocess.run(["umount", str(root)], check=True)
        assert warm["uid"] == NOBODY
        assert warm["calls"] == uncached["calls"]
        assert "hostapp.plugins.gadget" in uncached["loaded"]
        assert warm["loaded"] == [
            "acme_materials", "acme_materials.metals", "acme_materials.woods",
            "hostapp.plugins.builtin", "hostapp.plugins.marble", "hostapp.plugins.slate"]
        assert [message for _, message in warm["logs"]
                if message.startswith("reading installed metadata")] == []
        # Nothing was scanned again, so nothing was to be written; every cache is current.
        assert problems(warm) == unwritable_notes(warm) == []
        assert warm["stale"] == []
        assert "packaging.requirements" not in warm["modules"]
    finally:
        if on_tmpfs:
            subprocess.run(["umount", str(base)], check=False)
        remove_tree(outer)


def test_a_file_whose_lines_are_not_its_modules_holds_nothing_once_split(tmp_path: Path) -> None:
    """Lines are counted only when one is first needed; a file with one line too few (its
    checksum right) then holds nothing, and every module is scanned again."""
    entries = {name: Entry(f"{name}.py", Stamp(n, n), '[null,[["p",null,["x.I"],["x.I"]]],[]]')
               for n, name in enumerate(["a", "b"])}
    header_text, _, details = encode(DIRECTORY, PACKAGE, entries, ["a", "b"]).partition(b"\n")
    header = json.loads(header_text)
    shorter = details.split(b"\n", 1)[1]
    path = tmp_path / "cache.json"
    path.write_bytes(sealed_file(header, shorter))
    found = _read(path)
    listing = listing_of(("a", "a.py", 0, 0), ("b", "b.py", 1, 1))
    # Nothing mentions what is asked: nothing needs a line, and the text is what was written.
    assert found.sift(listing, ('"y.J"',)) == ([], 2)
    assert found.sift(listing, ('"x.I"',)) == ([(0, None), (1, None)], 0)
    assert found.get("a") is None and found.as_dict() == {} and len(found) == 0

