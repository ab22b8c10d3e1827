"""Faults from outside the library, each staged with real files and real processes.

Many interpreters started at once on one cold plugin directory; plugin directories reached
through symbolic links, under names with spaces and non-ASCII characters, restored from tar
archives, holding ten thousand modules; module files dated in the future or the past; plugin
modules that do not compile, do not import, exit, import each other or change ``sys.path``.
(Faults of installed metadata and of entry-point indexes are staged in test_entrypoints.py and
test_metadata.py.)  What is asked of the library every time: the plugins that can be found are
found, in the documented order; the culprit is named on the ``compat_plugin`` logger; later
calls agree; and what is left on disk is whole and describes the files as they are.

Faults that other test modules already stage are not repeated here; docs/FAULTS.md lists every
fault with the tests that cover it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compat_plugin import getPlugins
from compat_plugin.testing import run_python

from .conftest import (
    CACHE_NAME,
    Install,
    PluginTree,
    cache_beside,
    cache_per_user,
    disk_modules,
    identity,
    plugin_source,
    read_cache,
    snapshot,
    strays,
    user_cache,
)

TAG = sys.implementation.cache_tag
SECOND_NS = 10**9
DAY_NS = 86_400 * SECOND_NS
YEAR_NS = 365 * DAY_NS
Y1990_NS = 631_152_000 * SECOND_NS  # 1990-01-01T00:00:00Z
Y2001_NS = 978_307_200 * SECOND_NS  # 2001-01-01T00:00:00Z
PROBLEMS = ("WARNING", "ERROR", "CRITICAL")

_serial = itertools.count()


# -- plugin modules ------------------------------------------------------------------------------


def same_size(*sources: str) -> list[str]:
    """``sources`` padded with a trailing comment to one length in bytes."""
    width = max(len(source.encode("utf-8")) for source in sources)
    return [source + "#" * (width - len(source.encode("utf-8"))) for source in sources]


def many_modules(tree: PluginTree, count: int, every: int = 10) -> list[str]:
    """``count`` modules ``m000``...; every ``every``-th provides ITestPlugin, the others
    ITestPlugin2.  Returns the ITestPlugin tags in the order getPlugins yields them."""
    width = len(str(count - 1))
    matching = []
    for index in range(count):
        name = f"m{index:0{width}d}"
        interface = "ITestPlugin" if index % every == 0 else "ITestPlugin2"
        tree.plugin(name, plugin_source(name, interface))
        if interface == "ITestPlugin":
            matching.append(name)
    return matching


def block_primary(tree: PluginTree) -> None:
    """Make the cache beside the plugins unwritable, even for root: ``__pycache__`` is a file."""
    (tree.plugins_dir / "__pycache__").write_text("not a directory\n")


# -- child interpreters --------------------------------------------------------------------------

CHILD = """
import importlib
import json
import logging
import sys

# The working directory is not part of any scenario here.
sys.path[:] = [entry for entry in sys.path if entry != ""]
LOGS = []


class Keep(logging.Handler):
    def emit(self, record):
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        LOGS.append({"level": record.levelname, "message": record.getMessage(), "error": error})


logger = logging.getLogger("compat_plugin")
logger.addHandler(Keep())
logger.setLevel(logging.DEBUG)

from compat_plugin import getPlugins

package = importlib.import_module(PACKAGE)
ifaces = importlib.import_module(IFACES)
before = set(sys.modules)
calls = [
    [getattr(plugin, ATTRIBUTE) for plugin in getPlugins(getattr(ifaces, name), package)]
    for name in ASKED
]
imported = sorted(set(sys.modules) - before)
print(json.dumps({"calls": calls, "imported": imported, "logs": LOGS}))
"""


@dataclass
class Child:
    """What one interpreter found: the tags of each call, the modules imported by the calls,
    and every record of the ``compat_plugin`` logger."""

    calls: list[list[str]]
    imported: list[str]
    logs: list[dict[str, Any]]

    def problems(self) -> list[dict[str, Any]]:
        return [log for log in self.logs if log["level"] in PROBLEMS]

    def modules_of(self, package: str) -> set[str]:
        """Short names of the modules of ``package`` the calls imported."""
        prefix = f"{package}."
        return {name[len(prefix) :] for name in self.imported if name.startswith(prefix)}


def start_child(
    package: str,
    ifaces: str,
    asked: Sequence[str],
    *,
    path: Sequence[Path],
    env: dict[str, str] | None = None,
    attribute: str = "tag",
) -> subprocess.Popen[str]:
    """Start an interpreter that runs getPlugins over ``package`` for each interface named in
    ``asked`` (names in the module ``ifaces``), reporting each plugin's ``attribute``, with
    ``path`` in front of ``sys.path``."""
    code = (
        f"PACKAGE = {package!r}\n"
        f"IFACES = {ifaces!r}\n"
        f"ASKED = {list(asked)!r}\n"
        f"ATTRIBUTE = {attribute!r}\n"
    ) + textwrap.dedent(CHILD)
    environment = {k: v for k, v in os.environ.items() if k != "COMPAT_PLUGIN_DISABLE"}
    environment.update(env or {})
    entries = [*map(str, path), *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(entries)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start(
    tree: PluginTree,
    *asked: str,
    path: Sequence[Path] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """A child over the tree's plugin package, with the tree's root and ``path`` in front of
    ``sys.path``; ``asked`` names interfaces of the tree's ``ifaces``."""
    return start_child(
        tree.plugins_name, f"{tree.name}.ifaces", asked, path=[tree.root, *path], env=env
    )


def finish(process: subprocess.Popen[str]) -> Child:
    """Wait for ``process``: it must succeed and write nothing on stderr."""
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"child failed ({process.returncode}):\n{out}\n{err}"
    assert err == "", err
    return Child(**json.loads(out.strip().splitlines()[-1]))


def run(
    tree: PluginTree,
    *asked: str,
    path: Sequence[Path] = (),
    env: dict[str, str] | None = None,
) -> Child:
    return finish(start(tree, *asked, path=path, env=env))


# -- what is on disk -----------------------------------------------------------------------------


def index_files() -> list[Path]:
    return sorted((user_cache() / "entry-points").glob("*.json"))


# -- installed distributions ---------------------------------------------------------------------


def distribution(
    site: Path,
    name: str,
    group: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    *,
    version: str = "1.0",
    metadata: bytes | None = None,
) -> Path:
    """Install by hand, into ``site``, what a wheel of ``name`` would put there: its modules
    (relative path -> source) and a ``*.dist-info`` with METADATA, entry points in ``group``,
    top_level.txt and RECORD.  ``metadata`` replaces the METADATA file's bytes."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    if metadata is None:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    (info / "METADATA").write_bytes(metadata)
    lines = [f"[{group}]", *(f"{key} = {value}" for key, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tops = sorted({relative.split("/")[0].removesuffix(".py") for relative in modules})
    (info / "top_level.txt").write_text("".join(f"{top}\n" for top in tops), encoding="utf-8")
    # Installed before the process that reads them started, as installed files are (a module
    # already imported whose file is newer than the process is not trusted to be current).
    installed = time.time_ns() - 3600 * SECOND_NS
    for relative, source in modules.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        os.utime(path, ns=(installed, installed))
    record = [f"{relative},," for relative in modules]
    record += [f"{info.name}/{item},," for item in ("METADATA", "entry_points.txt", "RECORD")]
    (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    return info


def forget_modules(root: Path) -> None:
    """Drop from ``sys.modules`` every module loaded from below ``root``."""
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(root) + os.sep):
            del sys.modules[name]


def fresh(tree: PluginTree) -> None:
    """Forget what this process imported and remembers, as a new process would."""
    forget_modules(tree.root)
    tree.purge()


def tags(tree: PluginTree, interface: str = "ITestPlugin") -> list[str]:
    return [plugin.tag for plugin in getPlugins(getattr(tree.ifaces(), interface), tree.package())]


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "compat_plugin" and record.levelno >= logging.WARNING
    ]


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in problems(caplog)]


# == Concurrency ================================================================================

PROCESSES = 16
MODULES = 200

MATERIAL = '''
from zope.interface import implementer

from compat_plugin import IPlugin
from hostapp.ifaces import {interface}


@implementer(IPlugin, {interface})
class Thing:
    name = {name!r}


thing = Thing()
'''


def hostapp_dropins(root: Path, count: int, every: int = 10) -> list[str]:
    """``count`` modules in ``root/hostapp/plugins`` (a plugin directory of hostapp once
    ``root`` is on sys.path); every ``every``-th provides IMaterial, the others IOther.
    Returns the IMaterial names in the order getPlugins yields them."""
    directory = root / "hostapp" / "plugins"
    directory.mkdir(parents=True)
    matching = []
    for index in range(count):
        name = f"m{index:03d}"
        interface = "IMaterial" if index % every == 0 else "IOther"
        (directory / f"{name}.py").write_text(MATERIAL.format(interface=interface, name=name))
        if interface == "IMaterial":
            matching.append(name)
    return matching


def hostapp_child(path: Sequence[Path], *asked: str) -> subprocess.Popen[str]:
    return start_child("hostapp.plugins", "hostapp.ifaces", asked, path=path, attribute="name")


@pytest.mark.parametrize("where", ["plugin-directory", "user-cache"])
def test_processes_started_at_once_on_a_cold_directory(
    install: Install, tmp_path: Path, where: str
) -> None:
    """Sixteen interpreters at once: a cold plugin directory of 200 modules, a cold
    entry-point index for pip-installed distributions, one per-user cache."""
    site = install("site", "hostapp-2.0", "acme_materials-1.0", "acme_tools-1.0")
    extra = tmp_path / "extra"
    dropins = hostapp_dropins(extra, MODULES)
    plugins = extra / "hostapp" / "plugins"
    expected = ["granite", *dropins, "iron", "copper", "oak"]
    if where == "user-cache":
        (plugins / "__pycache__").write_text("not a directory\n")
    cache = cache_beside(plugins) if where == "plugin-directory" else cache_per_user(plugins)

    processes = [hostapp_child([site, extra], "IMaterial") for _ in range(PROCESSES)]
    children = [finish(process) for process in processes]

    for child in children:
        assert child.calls == [expected]
        assert child.problems() == []
    document = read_cache(cache, plugins, "hostapp.plugins")
    assert document.stamps == disk_modules(plugins)
    for name in document.stamps:
        interface = "IMaterial" if name in dropins else "IOther"
        assert document.provided(name) == {"thing": ["IPlugin", interface]}, name
    # The site's entry-point index lives beside the distributions it describes.
    index = site / "__pycache__" / f"compat_plugin.entry-points.hostapp.plugins.{TAG}.json"
    recorded = json.loads(index.read_bytes())
    declared = [entry[0] for dist in recorded["distributions"] for entry in dist[6]]
    assert sorted(declared) == ["gizmos", "metals", "oak"]
    assert len(recorded["scans"]) == 3
    assert strays(plugins / "__pycache__", site, user_cache()) == []
    if where == "user-cache":
        assert (plugins / "__pycache__").is_file()

    before = {**snapshot(user_cache()), cache: identity(cache)}
    warm = finish(hostapp_child([site, extra], "IMaterial"))
    assert warm.calls == [expected]
    assert warm.problems() == []
    assert warm.modules_of("hostapp.plugins") == {"builtin", *dropins}
    assert {name for name in warm.imported if name.startswith("acme_")} == {
        "acme_materials", "acme_materials.metals", "acme_materials.woods"
    }
    assert {**snapshot(user_cache()), cache: identity(cache)} == before


def test_module_rewritten_while_processes_scan_it(tree: PluginTree) -> None:
    """Processes racing an editor may see either version, but what they leave behind never
    describes a version of the file that is not the one on disk."""
    expected = many_modules(tree, 100)
    racer = tree.plugins_dir / "racer.py"
    staging = tree.plugins_dir / "racer.py.tmp"  # not a module name: neither we nor import list it

    def rewrite(tag: str, interface: str) -> None:
        staging.write_text(plugin_source(tag, interface).format(pkg=tree.name))
        os.replace(staging, racer)

    rewrite("r", "ITestPlugin")
    processes = [start(tree, "ITestPlugin") for _ in range(PROCESSES)]
    # Every version has its own size, so no two versions share a stamp (nor a .pyc).
    rewrites = 0
    while rewrites < 2000 and any(process.poll() is None for process in processes):
        rewrites += 1
        rewrite("r" + "x" * rewrites, "ITestPlugin" if rewrites % 2 else "ITestPlugin2")
        time.sleep(0.002)
    assert rewrites > 0
    for child in map(finish, processes):
        (found,) = child.calls
        assert found[: len(expected)] == expected
        assert all(tag.startswith("r") for tag in found[len(expected) :])
        assert all("racer" in log["message"] for log in child.problems()), child.problems()

    settled = "settled" + "x" * rewrites  # longer than any version before
    rewrite(settled, "ITestPlugin2")
    after = run(tree, "ITestPlugin", "ITestPlugin2")
    assert after.calls[0] == expected
    assert after.calls[1][-1] == settled
    assert after.problems() == []
    document = read_cache(cache_beside(tree.plugins_dir), tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)
    assert document.provided("racer") == {"plugin": ["IPlugin", "ITestPlugin2"]}
    assert strays(tree.plugins_dir / "__pycache__", user_cache()) == []


# == Filesystem =================================================================================

# -- symbolic links ------------------------------------------------------------------------------


def linked_layout(tree: PluginTree, tmp_path: Path) -> tuple[Path, Path, Path]:
    """Plugin modules in ``real/<pkg>/plugins``; ``linked/<pkg>/plugins`` is a symbolic link
    to that directory.  Returns the two sys.path roots and the real plugin directory."""
    real_root, link_root = tmp_path / "real", tmp_path / "linked"
    real = real_root / tree.name / "plugins"
    real.mkdir(parents=True)
    (link_root / tree.name).mkdir(parents=True)
    (link_root / tree.name / "plugins").symlink_to(real, target_is_directory=True)
    for tag, interface in (("a", "ITestPlugin"), ("b", "ITestPlugin2"), ("c", "ITestPlugin")):
        (real / f"{tag}.py").write_text(plugin_source(tag, interface).format(pkg=tree.name))
    return real_root, link_root, real


def test_plugin_directory_reached_through_a_symbolic_link(
    tree: PluginTree, tmp_path: Path
) -> None:
    real_root, link_root, real = linked_layout(tree, tmp_path)
    linked = link_root / tree.name / "plugins"

    cold = run(tree, "ITestPlugin", "ITestPlugin2", path=[link_root])
    assert cold.calls == [["a", "c"], ["b"]]
    assert cold.problems() == []
    # Written through the link, so beside the real modules, and for the path as it was given.
    cache = cache_beside(real)
    assert read_cache(cache, linked, tree.plugins_name).stamps == disk_modules(real)
    assert not (tree.plugins_dir / "__pycache__" / CACHE_NAME).exists()
    assert list(user_cache().glob("*.json")) == []

    before = identity(cache)
    warm = run(tree, "ITestPlugin", path=[link_root])
    assert warm.calls == [["a", "c"]]
    assert warm.modules_of(tree.plugins_name) == {"a", "c"}
    assert identity(cache) == before

    # The same directory under its real name, then through the link again.
    for root, directory in ((real_root, real), (link_root, linked)):
        child = run(tree, "ITestPlugin", "ITestPlugin2", path=[root])
        assert child.calls == [["a", "c"], ["b"]]
        assert child.problems() == []
        assert read_cache(cache, directory, tree.plugins_name).stamps == disk_modules(real)
    assert strays(real / "__pycache__", user_cache()) == []


def test_two_paths_to_one_plugin_directory_both_stay_warm(
    tree: PluginTree, tmp_path: Path
) -> None:
    real_root, link_root, _ = linked_layout(tree, tmp_path)
    for root in (link_root, real_root):
        assert run(tree, "ITestPlugin", path=[root]).calls == [["a", "c"]]
    for root in (link_root, real_root, link_root):
        child = run(tree, "ITestPlugin", path=[root])
        assert child.calls == [["a", "c"]]
        assert child.modules_of(tree.plugins_name) == {"a", "c"}


def test_plugin_module_that_is_a_symbolic_link(tree: PluginTree, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first, second = elsewhere / "first.py", elsewhere / "second.py"
    first.write_text(plugin_source("linked-1").format(pkg=tree.name))
    second.write_text(plugin_source("linked-2", "ITestPlugin2").format(pkg=tree.name))
    tree.plugin("a", plugin_source("a"))
    tree.plugin("b", plugin_source("b", "ITestPlugin2"))
    link = tree.plugins_dir / "linked.py"
    link.symlink_to(first)
    cache = cache_beside(tree.plugins_dir)

    def check(expected: list[list[str]]) -> Child:
        child = run(tree, "ITestPlugin", "ITestPlugin2")
        assert child.calls == expected
        assert child.problems() == []
        document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
        assert document.stamps == disk_modules(tree.plugins_dir)
        assert document.stamps["linked"][1:] == [first.stat().st_mtime_ns, first.stat().st_size]
        return child

    check([["a", "linked-1"], ["b"]])
    warm = run(tree, "ITestPlugin")
    assert warm.modules_of(tree.plugins_name) == {"a", "linked"}

    # The target is edited: the link's stamp is the target's.
    first.write_text(plugin_source("linked-1b", "ITestPlugin2").format(pkg=tree.name))
    check([["a"], ["b", "linked-1b"]])
    # The link is pointed elsewhere.
    link.unlink()
    link.symlink_to(second)
    child = run(tree, "ITestPlugin", "ITestPlugin2")
    assert child.calls == [["a"], ["b", "linked-2"]]
    assert read_cache(cache, tree.plugins_dir, tree.plugins_name).stamps == disk_modules(
        tree.plugins_dir
    )


def dangling(tree: PluginTree, tmp_path: Path) -> Path:
    tree.plugin("a", plugin_source("a"))
    tree.plugin("z", plugin_source("z"))
    link = tree.plugins_dir / "dangling.py"
    link.symlink_to(tmp_path / "gone.py")
    return link


def test_dangling_module_link_leaves_the_others_alone(tree: PluginTree, tmp_path: Path) -> None:
    link = dangling(tree, tmp_path)
    for _ in ("cold", "warm"):
        child = run(tree, "ITestPlugin", "ITestPlugin")
        assert child.calls == [["a", "z"], ["a", "z"]]
        assert all(str(link) in log["message"] for log in child.problems())
        document = read_cache(cache_beside(tree.plugins_dir), tree.plugins_dir, tree.plugins_name)
        assert set(document.stamps) == {"a", "z"}


def test_dangling_module_link_is_named_in_the_log(tree: PluginTree, tmp_path: Path) -> None:
    link = dangling(tree, tmp_path)
    child = run(tree, "ITestPlugin")
    assert [log for log in child.logs if str(link) in log["message"]]


QUIET = """
import importlib, json, sys
from compat_plugin import getPlugins

plugins, ifaces = (importlib.import_module(f"{PACKAGE}.{name}") for name in ("plugins", "ifaces"))
if HEAR:
    import logging

    said = []

    class Keep(logging.Handler):
        def emit(self, record):
            said.append([record.levelname, record.module, record.funcName, record.getMessage()])

    logging.getLogger("compat_plugin").addHandler(Keep())
    logging.getLogger("compat_plugin").setLevel(logging.DEBUG)
tags = sorted(plugin.tag for plugin in getPlugins(ifaces.ITestPlugin, plugins))
print(json.dumps({"tags": tags, "logging": "logging" in sys.modules,
                  "said": said if HEAR else []}))
"""


def test_what_is_said_below_warning_imports_logging_only_for_who_can_hear_it(
    tree: PluginTree, tmp_path: Path
) -> None:
    """A directory holding a dangling module link is passed over, said at DEBUG level, on every
    listing: a warm process that never imported :mod:`logging` does not import it to say so
    (a cold one has, with packaging, to index the entry points of its ``sys.path``); one that
    listens hears it, from the function that said it."""
    link = dangling(tree, tmp_path)
    heard = json.loads(run_python(f"PACKAGE = {tree.name!r}\nHEAR = True\n{QUIET}",
                                  path=[tree.root]).stdout)
    assert heard["tags"] == ["a", "z"]
    assert [level for level, module, function, message in heard["said"]
            if (module, function) == ("_directories", "list_directory")
            and str(link) in message] == ["DEBUG"]
    quiet = json.loads(run_python(f"PACKAGE = {tree.name!r}\nHEAR = False\n{QUIET}",
                                  path=[tree.root]).stdout)
    assert quiet == {"tags": ["a", "z"], "logging": False, "said": []}


# -- spaces and non-ASCII characters -------------------------------------------------------------

ODD_NAMES = {
    "spaces-and-accents": "plug ins \u00fc",
    "other-scripts": "\u03a9\u03bc\u03ad\u03b3\u03b1 \u63d2\u4ef6 dir",
    "undecodable-bytes": os.fsdecode(b"plug ins \xff\xfe"),
}


@pytest.mark.parametrize("where", ["plugin-directory", "user-cache"])
@pytest.mark.parametrize("label", list(ODD_NAMES))
def test_paths_with_spaces_and_non_ascii_characters(
    tmp_path: Path, label: str, where: str
) -> None:
    base = tmp_path / ODD_NAMES[label]
    user = tmp_path / f"user cache {ODD_NAMES[label]}"
    try:
        base.mkdir()
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this filesystem refuses the name: {exc}")
    tree = PluginTree(base, f"cpf{os.getpid()}_{next(_serial)}")
    tree.plugin("plain", plugin_source("plain"))
    tree.plugin("mod\u00fcl\u00e9", plugin_source("\u00fcn\u00efcode \u63d2\u4ef6"))
    tree.plugin("other", plugin_source("other", "ITestPlugin2"))
    if where == "user-cache":
        block_primary(tree)
    cache = cache_beside(tree.plugins_dir) if where == "plugin-directory" else cache_per_user(
        tree.plugins_dir, user
    )
    env = {"COMPAT_PLUGIN_CACHE_DIR": str(user)}

    cold = run(tree, "ITestPlugin", "ITestPlugin2", env=env)
    # Code-point order: "modülé" < "other" < "plain".
    assert cold.calls == [["\u00fcn\u00efcode \u63d2\u4ef6", "plain"], ["other"]]
    assert cold.problems() == []
    document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)
    docstring = document.details["mod\u00fcl\u00e9"][0]
    assert docstring == "Plugin module \u00fcn\u00efcode \u63d2\u4ef6."

    before = identity(cache)
    warm = run(tree, "ITestPlugin", env=env)
    assert warm.calls == cold.calls[:1]
    assert warm.modules_of(tree.plugins_name) == {"plain", "mod\u00fcl\u00e9"}
    assert identity(cache) == before
    assert strays(tree.plugins_dir / "__pycache__", user) == []


# -- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dated", ["future", "past"])
def test_module_dated_far_away_then_replaced_by_an_older_copy(
    tree: PluginTree, tmp_path: Path, dated: str
) -> None:
    """``cp -p`` (shutil.copy2) of an older file of the same size over a cached module: only
    the modification time tells them apart, and it goes backwards."""
    original = time.time_ns() + YEAR_NS if dated == "future" else Y1990_NS + DAY_NS
    replacement = Y1990_NS
    tree.plugin("a", plugin_source("a"))
    tree.plugin("b", plugin_source("b", "ITestPlugin2"))
    first, second = same_size(plugin_source("c-first"), plugin_source("c-second", "ITestPlugin2"))
    module = tree.plugin("c", first)
    os.utime(module, ns=(original, original))
    cache = cache_beside(tree.plugins_dir)

    cold = run(tree, "ITestPlugin", "ITestPlugin2")
    assert cold.calls == [["a", "c-first"], ["b"]]
    assert read_cache(cache, tree.plugins_dir, tree.plugins_name).stamps["c"][1] == original
    warm = run(tree, "ITestPlugin")
    assert warm.calls == [["a", "c-first"]]
    assert warm.modules_of(tree.plugins_name) == {"a", "c"}

    staged = tmp_path / "staging" / "c.py"
    staged.parent.mkdir()
    staged.write_text(second.format(pkg=tree.name))
    os.utime(staged, ns=(replacement, replacement))
    size = module.stat().st_size
    shutil.copy2(staged, module)
    assert (module.stat().st_mtime_ns, module.stat().st_size) == (replacement, size)

    changed = run(tree, "ITestPlugin", "ITestPlugin2")
    assert changed.calls == [["a"], ["b", "c-second"]]
    assert changed.problems() == []
    document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)
    assert document.provided("c") == {"plugin": ["IPlugin", "ITestPlugin2"]}
    before = identity(cache)
    again = run(tree, "ITestPlugin2")
    assert again.calls == [["b", "c-second"]]
    assert again.modules_of(tree.plugins_name) == {"b", "c"}
    assert identity(cache) == before


# -- a tar round trip ----------------------------------------------------------------------------


def extract(archive: Path, destination: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # pragma: no cover - Pythons without extraction filters
            tar.extractall(destination)


@pytest.mark.parametrize("restore", ["replace", "over", "over-without-caches"])
def test_plugin_directory_restored_from_a_tar_archive(
    tree: PluginTree, tmp_path: Path, restore: str
) -> None:
    """Release 1 is archived (with its caches, or without), release 2 installed, then release 1
    extracted again -- with the old modification times tar keeps."""
    plugins = tree.plugins_dir
    for name, interface in (("a", "ITestPlugin"), ("b", "ITestPlugin2"), ("c", "ITestPlugin")):
        os.utime(tree.plugin(name, plugin_source(f"{name}-1", interface)), ns=(Y2001_NS,) * 2)
    assert run(tree, "ITestPlugin", "ITestPlugin2").calls == [["a-1", "c-1"], ["b-1"]]
    archive = tmp_path / "release-1.tar"
    with tarfile.open(archive, "w") as tar:
        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            return None if restore == "over-without-caches" and "__pycache__" in info.name else info

        tar.add(plugins, arcname="plugins", filter=keep)

    tree.plugin("a", plugin_source("a-2", "ITestPlugin2"))
    (plugins / "c.py").unlink()
    tree.plugin("d", plugin_source("d-2"))
    assert run(tree, "ITestPlugin", "ITestPlugin2").calls == [["d-2"], ["a-2", "b-1"]]

    if restore == "replace":
        shutil.rmtree(plugins)
    extract(archive, plugins.parent)
    assert (plugins / "a.py").stat().st_mtime_ns == Y2001_NS
    matching = ["a-1", "c-1"] if restore == "replace" else ["a-1", "c-1", "d-2"]

    restored = run(tree, "ITestPlugin")
    assert restored.calls == [matching]
    assert restored.problems() == []
    # What had to be read again (a, c) and what matches are the same modules here; b is not.
    assert restored.modules_of(tree.plugins_name) == {tag[0] for tag in matching}
    assert run(tree, "ITestPlugin2").calls == [["b-1"]]
    document = read_cache(cache_beside(plugins), plugins, tree.plugins_name)
    assert document.stamps == disk_modules(plugins)
    assert strays(plugins / "__pycache__", user_cache()) == []


# -- ten thousand modules ------------------------------------------------------------------------


def test_ten_thousand_dropin_modules(tree: PluginTree) -> None:
    matching = []
    for index in range(10_000):
        name = f"m{index:05d}"
        if index % 100 == 0:
            tree.plugin(name, plugin_source(name))
            matching.append(name)
        elif index % 100 == 50:
            tree.plugin(name, plugin_source(name, "ITestPlugin2"))
        else:
            tree.plugin(name, f'"""Not a plugin."""\nvalue = {index}\n')

    cold = run(tree, "ITestPlugin")
    assert cold.calls == [matching]
    assert cold.problems() == []
    assert len(cold.modules_of(tree.plugins_name)) == 10_000
    cache = cache_beside(tree.plugins_dir)
    document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)

    before = identity(cache)
    warm = run(tree, "ITestPlugin", "ITestPlugin2")
    assert warm.calls[0] == matching
    assert len(warm.calls[1]) == 100
    assert warm.modules_of(tree.plugins_name) == {*matching, *warm.calls[1]}
    assert identity(cache) == before


# == Plugins ====================================================================================

CONFORM_RAISES = '''
"""A module with a plugin and an object that breaks when asked whether it is one."""
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin


@implementer(IPlugin, ITestPlugin)
class Plugin:
    tag = "culprit-fine"


class Weird:
    def __conform__(self, interface):
        raise LookupError("conform broken on purpose")


fine = Plugin()
weird = Weird()
'''

FAULTY = {
    "syntax-error": ("def broken(:\n    pass\n", "SyntaxError"),
    "import-error": ("import compat_plugin_no_such_module_anywhere\n", "ModuleNotFoundError"),
    "raises": ("raise RuntimeError('broken on purpose')\n", "RuntimeError"),
    "exits": ("import sys\nsys.exit(3)\n", "SystemExit"),
    "conform-raises": (CONFORM_RAISES, "LookupError"),
}


@pytest.mark.parametrize("fault", list(FAULTY))
def test_faulty_plugin_module(tree: PluginTree, fault: str) -> None:
    source, error = FAULTY[fault]
    tree.plugin("a", plugin_source("a"))
    tree.plugin("b", plugin_source("b", "ITestPlugin2"))
    tree.plugin("culprit", source)
    tree.plugin("z", plugin_source("z"))
    matching = ["a", "culprit-fine", "z"] if fault == "conform-raises" else ["a", "z"]
    culprit = f"{tree.plugins_name}.culprit"
    if fault == "conform-raises":
        culprit += ":weird"
    cache = cache_beside(tree.plugins_dir)

    def check(child: Child) -> None:
        # Named once per process, with its traceback; later calls reuse the outcome.
        (log,) = child.problems()
        assert log["level"] == "WARNING"
        assert culprit in log["message"]
        assert log["error"] == error
        # The culprit is not recorded: each process tries it again, and says so again.
        document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
        on_disk = disk_modules(tree.plugins_dir)
        assert document.stamps == {name: on_disk[name] for name in ("a", "b", "z")}

    cold = run(tree, "ITestPlugin", "ITestPlugin", "ITestPlugin2")
    assert cold.calls == [matching, matching, ["b"]]
    check(cold)
    before = identity(cache)
    warm = run(tree, "ITestPlugin", "ITestPlugin")
    assert warm.calls == [matching, matching]
    check(warm)
    assert warm.modules_of(tree.plugins_name) - {"culprit"} == {"a", "z"}
    assert identity(cache) == before
    assert strays(tree.plugins_dir / "__pycache__", user_cache()) == []


UNBOUND_PROXY = '''
"""A plugin module that imports a proxy bound only inside a request, as web frameworks'
``request`` is: asking it anything raises."""
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin


class _Unbound:
    def __getattribute__(self, name):
        raise RuntimeError("working outside of a request")


@implementer(IPlugin, ITestPlugin)
class Plugin:
    tag = "proxied"


request = _Unbound()
plugin = Plugin()
'''


def test_an_object_that_cannot_say_what_it_provides_leaves_its_module_cached(
    tree: PluginTree
) -> None:
    """Such an object declares nothing: no plugin, no fault, no WARNING -- the module's plugins
    are cached, and a warm process asking for another interface does not import it."""
    tree.plugin("a", plugin_source("a"))
    tree.plugin("b", plugin_source("b", "ITestPlugin2"))
    tree.plugin("proxied", UNBOUND_PROXY)
    cold = run(tree, "ITestPlugin", "ITestPlugin2")
    assert cold.calls == [["a", "proxied"], ["b"]]
    assert cold.problems() == []
    on_disk = disk_modules(tree.plugins_dir)
    document = read_cache(cache_beside(tree.plugins_dir), tree.plugins_dir, tree.plugins_name)
    assert document.stamps == {name: on_disk[name] for name in ("a", "b", "proxied")}
    warm = run(tree, "ITestPlugin2", "ITestPlugin")
    assert warm.calls == [["b"], ["a", "proxied"]]
    assert warm.problems() == []
    assert warm.modules_of(tree.plugins_name) == {"a", "b", "proxied"}
    only_b = run(tree, "ITestPlugin2")
    assert only_b.modules_of(tree.plugins_name) == {"b"}


MUTUAL_FIRST = '''
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin
from . import pong


@implementer(IPlugin, ITestPlugin)
class Plugin:
    tag = "ping"


plugin = Plugin()
'''

MUTUAL_SECOND = '''
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin2


@implementer(IPlugin, ITestPlugin2)
class Plugin:
    tag = "pong"


plugin = Plugin()

from . import ping  # noqa: E402
'''


def test_plugin_modules_importing_each_other(tree: PluginTree) -> None:
    tree.plugin("ping", MUTUAL_FIRST)
    tree.plugin("pong", MUTUAL_SECOND)
    cache = cache_beside(tree.plugins_dir)
    cold = run(tree, "ITestPlugin", "ITestPlugin2", "ITestPlugin")
    assert cold.calls == [["ping"], ["pong"], ["ping"]]
    assert cold.problems() == []
    document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)
    assert document.provided("ping") == {"plugin": ["IPlugin", "ITestPlugin"]}
    assert document.provided("pong") == {"plugin": ["IPlugin", "ITestPlugin2"]}

    before = identity(cache)
    warm = run(tree, "ITestPlugin2", "ITestPlugin")
    assert warm.calls == [["pong"], ["ping"]]
    assert warm.problems() == []
    assert identity(cache) == before


PATH_CHANGER = '''
import sys

from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin

sys.path.append(VENDOR)


@implementer(IPlugin, ITestPlugin)
class Plugin:
    tag = "pathy"


plugin = Plugin()
'''


def path_changer(tree: PluginTree, vendor: Path) -> None:
    tree.plugin("a", plugin_source("a"))
    tree.plugin("b", plugin_source("b", "ITestPlugin2"))
    tree.plugin("pathy", PATH_CHANGER.replace("VENDOR", repr(str(vendor))))


def test_plugin_module_appending_to_sys_path(tree: PluginTree, tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    path_changer(tree, vendor)
    cache = cache_beside(tree.plugins_dir)
    cold = run(tree, "ITestPlugin", "ITestPlugin", "ITestPlugin2")
    assert cold.calls == [["a", "pathy"], ["a", "pathy"], ["b"]]
    assert cold.problems() == []
    document = read_cache(cache, tree.plugins_dir, tree.plugins_name)
    assert document.stamps == disk_modules(tree.plugins_dir)

    before = {**snapshot(user_cache()), cache: identity(cache)}
    warm = run(tree, "ITestPlugin", "ITestPlugin", "ITestPlugin2")
    assert warm.calls == cold.calls
    assert warm.problems() == []
    assert warm.modules_of(tree.plugins_name) == {"a", "b", "pathy"}
    assert {**snapshot(user_cache()), cache: identity(cache)} == before
    # Asked only for ITestPlugin2, nothing of ITestPlugin is imported.
    assert run(tree, "ITestPlugin2").modules_of(tree.plugins_name) == {"b"}


def test_plugin_module_appending_a_site_directory_keeps_the_cache_warm(
    tree: PluginTree, tmp_path: Path
) -> None:
    vendor = tmp_path / "vendor"
    distribution(vendor, "vendored", "unrelated.group", {}, {"vendored.py": "value = 1\n"})
    path_changer(tree, vendor)
    cache = cache_beside(tree.plugins_dir)
    assert run(tree, "ITestPlugin", "ITestPlugin").calls == [["a", "pathy"]] * 2
    before = identity(cache)
    # The directory cache does not depend on the distributions the process ends up seeing:
    # every later process finds it current, and none rewrites it.
    for _ in range(2):
        warm = run(tree, "ITestPlugin", "ITestPlugin")
        assert warm.calls == [["a", "pathy"]] * 2
        assert warm.problems() == []
        assert warm.modules_of(tree.plugins_name) == {"a", "pathy"}
        assert identity(cache) == before

