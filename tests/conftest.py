"""Fixtures that build real plugin packages on disk, build and pip-install real
distributions, and run real interpreters."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest

from compat_plugin.testing import PluginPackage, build_wheels, install_wheels, pip, run_python

__all__ = ["INTERFACES", "PLUGINS_INIT", "Install", "PluginTree", "pip", "run_python"]

PROJECTS = Path(__file__).parent / "projects"
# Built by hand, because setuptools refuses to write a malformed entry point.  (Its value,
# ``acme_malformed:model:extra``, is one pip still installs whichever metadata backend it
# uses.)
HAND_BUILT = ("acme_malformed",)

INTERFACES = """
from zope.interface import Interface, Attribute

class ITestPlugin(Interface):
    "A test interface."

class ITestPlugin2(Interface):
    "Another, unrelated, test interface."

class IDerived(ITestPlugin):
    "Extends ITestPlugin."

class INobody(Interface):
    "Provided by no plugin."
"""

PLUGINS_INIT = """
from compat_plugin import pluginPackagePaths
__path__.extend(pluginPackagePaths(__name__))
"""


class PluginTree(PluginPackage):
    """A package ``<name>`` with ``<name>.ifaces`` (``INTERFACES``) and a plugin package
    ``<name>.plugins``: a ``compat_plugin.testing.PluginPackage`` on its own ``sys.path``
    entry, its modules dropped from ``sys.modules`` after the test."""

    def __init__(self, root: Path, name: str) -> None:
        super().__init__(root, name)
        self.top = root / name
        self.plugins_dir = self.directory
        self.write("ifaces.py", INTERFACES)

    def plugin(self, name: str, text: str) -> Path:
        """Write ``plugins/<name>.py``; ``{pkg}`` in ``text`` is the tree's package name."""
        return self.module(name, text)

    def ifaces(self) -> ModuleType:
        return importlib.import_module(f"{self.name}.ifaces")

    def purge(self) -> None:
        """Forget the tree's imported modules and the resolver's memory, as a new process would."""
        self.forget()
        importlib.invalidate_caches()

    def cache_files(self) -> list[Path]:
        return sorted(self.plugins_dir.glob("__pycache__/compat_plugin.*.json"))

    def cache_document(self) -> dict[str, object]:
        """The header (first line) of the directory's one cache file."""
        (path,) = self.cache_files()
        document: dict[str, object] = json.loads(path.read_text().split("\n", 1)[0])
        return document


@pytest.fixture(autouse=True, scope="session")
def _no_real_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Children started by wider-scoped fixtures, before any test's own cache is set, write
    to a per-user cache of the session's, never to the real one of the user running it."""
    previous = os.environ.get("COMPAT_PLUGIN_CACHE_DIR")
    os.environ["COMPAT_PLUGIN_CACHE_DIR"] = str(tmp_path_factory.mktemp("session-usercache"))
    yield
    if previous is None:
        del os.environ["COMPAT_PLUGIN_CACHE_DIR"]
    else:
        os.environ["COMPAT_PLUGIN_CACHE_DIR"] = previous


@pytest.fixture
def tree(plugin_package: Callable[..., PluginPackage]) -> PluginTree:
    """A PluginTree on a temporary sys.path entry (compat_plugin.testing restores sys.path,
    sys.modules and the caches afterwards)."""
    made = plugin_package()
    return PluginTree(made.root, made.name)


def plugin_source(tag: str, interface: str = "ITestPlugin", *, counted: bool = False) -> str:
    """A plugin module for a PluginTree: its one plugin, ``plugin``, has ``tag`` and provides
    ``interface`` (a name in the tree's ifaces).  ``{pkg}`` is left for ``PluginTree.write``
    (or ``.format(pkg=...)``) to fill in.  With ``counted``, importing the module appends its
    short name to ``{pkg}.counter.imports`` (the tree must have that module)."""
    count = (
        "from {pkg} import counter\n"
        'counter.imports.append(__name__.rpartition(".")[2])\n'
        if counted else ""
    )
    return (
        f'"""Plugin module {tag}."""\n'
        "from zope.interface import implementer\n"
        "from compat_plugin import IPlugin\n"
        f"from {{pkg}}.ifaces import {interface}\n"
        f"{count}"
        "\n"
        "\n"
        f"@implementer(IPlugin, {interface})\n"
        "class Plugin:\n"
        f"    tag = {tag!r}\n"
        "\n"
        "\n"
        "plugin = Plugin()\n"
    )


# -- Directory caches as the documentation describes them, read without the library --------

CACHE_NAME = f"compat_plugin.{sys.implementation.cache_tag}.json"
DIRECTORY_SCHEMA = 4
COLUMNS = ("names", "files", "mtimes", "sizes")
HEADER_KEYS = {"schema", "interpreter", "directory", "package", "modules", "missing", "checksum"}


def user_cache() -> Path:
    """This test's per-user cache (compat_plugin.testing gives each test its own)."""
    return Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"])


def crc_adler(text: str) -> str:
    """CRC-32 then Adler-32 of ``text``'s UTF-8 bytes (lone surrogates kept), as 16 hex
    digits: the documented digest per-user file names are made of."""
    data = text.encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def cache_beside(directory: Path) -> Path:
    """Where a plugin directory's cache lives when the directory can be written."""
    return directory / "__pycache__" / CACHE_NAME


def cache_per_user(directory: Path | str, root: Path | None = None) -> Path:
    """Where it lives otherwise: in the per-user cache ``root`` (this test's by default),
    named after the directory's real path."""
    name = f"{crc_adler(os.path.realpath(directory))}.{sys.implementation.cache_tag}.json"
    return (root or user_cache()) / name


def identity(path: Path) -> tuple[int, int, int]:
    """What changes when a file is rewritten, atomically or not."""
    info = path.stat()
    return info.st_ino, info.st_mtime_ns, info.st_size


def snapshot(root: Path) -> dict[Path, tuple[int, int, int]]:
    """Every file below ``root`` with its identity."""
    return {path: identity(path) for path in root.rglob("*") if path.is_file()}


def strays(*roots: Path) -> list[Path]:
    """Temporary files (dot-names) left anywhere below ``roots``."""
    return [
        path
        for root in roots
        if root.is_dir()
        for path in root.rglob("*")
        if path.name.startswith(".")
    ]


def disk_modules(directory: Path) -> dict[str, list[Any]]:
    """``{module: [filename, mtime_ns, size]}`` for the ``.py`` modules of ``directory``
    (symbolic links followed, as ``import`` follows them)."""
    found: dict[str, list[Any]] = {}
    for path in directory.iterdir():
        if path.suffix == ".py" and path.stem != "__init__" and path.exists():
            info = path.stat()
            found[path.stem] = [path.name, info.st_mtime_ns, info.st_size]
    return found


def well_formed_details(value: object) -> bool:
    """A module's stored details as documented: ``[docstring or null, [[attribute, docstring
    or null, [declared names], [all names]], ...], [unexported class names]]``."""

    def text(item: object) -> bool:
        return item is None or type(item) is str

    def names(item: object) -> bool:
        return type(item) is list and all(type(name) is str for name in item)

    def plugin(item: object) -> bool:
        return (type(item) is list and len(item) == 4 and type(item[0]) is str
                and text(item[1]) and names(item[2]) and names(item[3]))

    return (type(value) is list and len(value) == 3 and text(value[0])
            and type(value[1]) is list and all(plugin(item) for item in value[1])
            and names(value[2]))


@dataclass
class StoredCache:
    """A directory cache file as read by :func:`read_cache`: its header, each module's
    ``[filename, mtime_ns, size]``, its details, and the imports its scan missed."""

    header: dict[str, Any]
    stamps: dict[str, list[Any]]
    details: dict[str, list[Any]]
    missing: dict[str, list[str]]

    def provided(self, module: str) -> dict[str, list[str]]:
        """The short names of the interfaces each recorded plugin of ``module`` declares."""
        return {
            attribute: [name.rpartition(".")[2] for name in declared]
            for attribute, _, declared, _ in self.details[module][1]
        }


def read_cache(path: Path, directory: Path | str, package: str) -> StoredCache:
    """Parse the directory cache at ``path`` and check that it is exactly the documented
    format, written for ``directory`` (by its real path) and ``package`` by this interpreter:
    ASCII JSON lines, every line ended; a header of exactly the documented keys, with one
    column entry and one compact detail line per module, and the CRC-32 of the detail lines."""
    raw = path.read_bytes()
    text = raw.decode("ascii")
    assert text.endswith("\n"), "the last line is not ended by a newline"
    header_line, _, rest = text.partition("\n")
    lines = rest.split("\n")[:-1]
    header = json.loads(header_line)
    assert type(header) is dict and set(header) == HEADER_KEYS, header
    assert type(header["schema"]) is int and header["schema"] == DIRECTORY_SCHEMA
    assert header["interpreter"] == sys.implementation.cache_tag
    assert header["directory"] == os.path.realpath(directory)
    assert header["package"] == package
    assert header["checksum"] == zlib.crc32(rest.encode("ascii"))
    table = header["modules"]
    assert type(table) is dict and tuple(sorted(table)) == tuple(sorted(COLUMNS)), table
    assert all(type(table[key]) is list and len(table[key]) == len(lines) for key in COLUMNS)
    names = table["names"]
    assert all(type(name) is str for name in names) and len(set(names)) == len(names)
    assert all(type(name) is str for name in table["files"])
    assert all(type(n) is int for key in ("mtimes", "sizes") for n in table[key])
    stamps = {name: [f, m, s] for name, f, m, s in zip(*(table[key] for key in COLUMNS))}
    details: dict[str, list[Any]] = {}
    for name, line in zip(names, lines):
        value = json.loads(line)
        assert well_formed_details(value), (name, line)
        assert line == json.dumps(value, separators=(",", ":")), (name, line)
        details[name] = value
    missing = header["missing"]
    assert type(missing) is dict and set(missing) <= set(names), missing
    for imports in missing.values():
        assert type(imports) is list and imports and all(type(n) is str for n in imports)
    return StoredCache(header, stamps, details, missing)


# -- A virtual environment of its own, for pip to install into and uninstall from ----------


class Venv:
    """A throwaway virtual environment without pip whose ``site-packages`` also reads this
    environment's (a ``.pth`` file), so compat_plugin, zope.interface and pip import there;
    this environment's pip installs into and uninstalls from its own ``site-packages``."""

    def __init__(self, root: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.python = root / "bin" / "python"
        found = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, text=True, check=True, env=self.environment(),
        )
        self.site_packages = Path(found.stdout.strip())
        outer = "".join(f"; site.addsitedir({d!r})" for d in site.getsitepackages())
        (self.site_packages / "outer-environment.pth").write_text(f"import site{outer}\n")

    def environment(self) -> dict[str, str]:
        """This process's environment variables, without those that would choose another
        Python's modules."""
        return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def pip(self, *args: str) -> None:
        pip(*args, python=self.python)


__all__ += [
    "CACHE_NAME", "COLUMNS", "DIRECTORY_SCHEMA", "StoredCache", "Venv", "cache_beside",
    "cache_per_user", "crc_adler", "disk_modules", "identity", "plugin_source", "read_cache",
    "snapshot", "strays", "user_cache", "well_formed_details",
]


# -- Real distributions: the projects under tests/projects, built once, installed by pip ----


def _project_name(project: Path) -> str:
    for line in (project / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "name":
            return value.strip().strip('"')
    raise AssertionError(f"{project} has no name")


def _record_line(root: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(root).as_posix()},sha256={digest},{len(data)}"


def build_by_hand(tree: Path, directory: Path) -> Path:
    """Zip ``tree`` (packages and a ``*.dist-info`` without RECORD) into a wheel."""
    (info,) = tree.glob("*.dist-info")
    files = sorted(p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    record = [_record_line(tree, p) for p in files]
    record.append(f"{info.name}/RECORD,,")
    wheel = directory / f"{info.name[: -len('.dist-info')]}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in files:
            archive.write(path, path.relative_to(tree).as_posix())
        archive.writestr(f"{info.name}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every project's wheel, by ``<name>-<version>`` as in its file name."""
    sources = tmp_path_factory.mktemp("projects")
    output = tmp_path_factory.mktemp("wheels")
    # Built from a copy: setuptools writes build/ and *.egg-info/ into the project.
    shutil.copytree(PROJECTS, sources, dirs_exist_ok=True)
    for name in HAND_BUILT:
        build_by_hand(sources / name, output)
    # Two pip processes at once; two releases of one project must not share one.
    batches: list[list[Path]] = [[], []]
    for project in sorted(p for p in sources.iterdir() if (p / "pyproject.toml").exists()):
        name = _project_name(project)
        free = [b for b in batches if all(_project_name(p) != name for p in b)]
        min(free, key=len).append(project)
    with ThreadPoolExecutor(len(batches)) as pool:
        list(pool.map(lambda batch: build_wheels(batch, output), batches))
    return {w.name.split("-py3-")[0]: w for w in output.glob("*.whl")}


class Install(Protocol):
    def __call__(self, site_name: str, *dists: str) -> Path: ...


@pytest.fixture
def install(tmp_path: Path, wheels: dict[str, Path]) -> Install:
    """``install(site, "hostapp-2.0", ...)``: pip installs wheels into ``tmp_path/site``."""

    def install(site_name: str, *dists: str) -> Path:
        return install_wheels(tmp_path / site_name, *(wheels[name] for name in dists))

    return install
