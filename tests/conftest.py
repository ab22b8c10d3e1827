"""Fixtures that build real plugin packages on disk, build and pip-install real
distributions, and run real interpreters."""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from site import getsitepackages
from types import ModuleType
from typing import Any, Protocol

import importlib_metadata
import pytest
from hypothesis import strategies as st
from packaging.requirements import Requirement

import compat_plugin
from compat_plugin.testing import PluginPackage, build_wheels, install_wheels, pip, run_python

__all__ = [
    "BROKEN_LINE", "INTERFACES", "PACKAGE", "PLUGINS_INIT", "Install", "PluginTree", "Venv",
    "World", "install_wheels", "pip", "run_python", "write",
]

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


@pytest.fixture(scope="session")
def fresh_twisted_cache() -> None:
    """Twisted's own ``dropin.cache`` made to describe ``twisted.plugins`` as installed now, for
    the tests that take Twisted's answers as the truth.

    Twisted never notices an optional dependency installed after it wrote that cache --
    ``cred_sshkeys`` offers its checker only where bcrypt imports -- so a stale one makes
    Twisted, not compat_plugin, answer wrongly.  It is removed; Twisted writes it again.
    """
    spec = importlib.util.find_spec("twisted")  # found, not imported
    assert spec is not None and spec.submodule_search_locations
    for location in spec.submodule_search_locations:
        Path(location, "plugins", "dropin.cache").unlink(missing_ok=True)


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
DIRECTORY_SCHEMA = 6
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


def open_to_everyone(base: Path) -> None:
    """Directories 0755 and files 0644 below (and including) ``base``: what a test running as
    root lays out for a child that gives up root to read."""
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


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
    missing: dict[str, list[list[Any]]]

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
    column entry and one compact detail line per module, and, last, the checksum: the CRC-32
    of the header's own text before it, closed, then a newline and the detail lines."""
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
    own, seal, tail = header_line.rpartition(',"checksum":')
    assert seal and tail == f"{header['checksum']}}}", header_line
    assert header["checksum"] == zlib.crc32(f"{own}}}\n{rest}".encode("ascii"))
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
    for misses in missing.values():
        assert type(misses) is list and misses, missing
        for miss in misses:
            assert type(miss) is list and len(miss) == 2, missing
            assert type(miss[0]) is str and (miss[1] is None or type(miss[1]) is str), missing
    return StoredCache(header, stamps, details, missing)


__all__ += [
    "CACHE_NAME", "COLUMNS", "DIRECTORY_SCHEMA", "StoredCache", "cache_beside",
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


# -- One installed world for the command line's tests -------------------------------------------

PACKAGE = "hostapp.plugins"

# Installed together, as one environment would hold them; acme-dropin puts slate.py into
# hostapp/plugins, the way Twisted plugin distributions do.
SITE = (
    "hostapp-2.0", "acme_dropin-1.0", "acme_dupe-1.0", "acme_ghost-1.0", "acme_materials-1.0",
    "acme_notplugin-1.0", "acme_oldhost-1.0", "acme_secret-1.0", "acme_classy-1.0",
    "acme_typo-1.0",
)

BROKEN = '''\
"""A plugin module that fails while it is imported."""

KIND = "clay"
raise RuntimeError("no clay today")
'''
BROKEN_LINE = BROKEN.splitlines().index('raise RuntimeError("no clay today")') + 1

NEEDY = '''\
"""A plugin module needing a distribution that is not installed."""

import no_such_dependency_of_needy
'''

# Raises inside a function it calls: the plugin's own line is the call, not the raise.
DEEP = '''\
"""A plugin module whose helper fails."""

import json


def load():
    return json.loads("{not json")


TABLE = load()
'''

CLASSY = '''\
"""Declares a plugin class and forgets to make an instance."""

from zope.interface import implementer

from compat_plugin import IPlugin
from hostapp.ifaces import IMaterial


@implementer(IPlugin, IMaterial)
class Marble:
    name = "marble"
'''

# Dropins of the world's extra directory, which comes after the site on the path.
EXTRA_DROPINS = {
    "builtin": '"""A second builtin: the one hostapp ships comes first."""\n',
    "broken": BROKEN,
    "classy": CLASSY,
    "deep": DEEP,
    "needy": NEEDY,
    "notes": '"""Notes kept beside the plugins."""\n\nSEASONS = 4\n',
}

# Packages that cannot be imported, in the extra directory.
BOOM = {
    "boom/__init__.py": "",
    "boom/plugins/__init__.py": 'raise RuntimeError("the plugin package is broken")\n',
    "boom/needy/__init__.py": "import no_such_dependency_of_needy\n",
    "boom/wordy/__init__.py": 'raise RuntimeError("the first line\\nand the second")\n',
    "boom/leaving/__init__.py": 'import sys\n\nsys.exit("leaving now")\n',
}

@dataclass(frozen=True)
class World:
    site: Path
    later: Path
    extra: Path

    @property
    def path(self) -> list[Path]:
        return [self.site, self.later, self.extra]

    @property
    def plugins(self) -> Path:
        """hostapp's own plugin directory, where acme-dropin installed slate.py too."""
        return self.site / "hostapp" / "plugins"

    @property
    def dropins(self) -> Path:
        return self.extra / "hostapp" / "plugins"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> World:
    root = tmp_path_factory.mktemp("world")
    made = World(root / "site", root / "later", root / "extra")
    install_wheels(made.site, *(wheels[name] for name in SITE))
    install_wheels(made.later, wheels["acme_materials-2.0"])
    for name, source in EXTRA_DROPINS.items():
        write(made.dropins / f"{name}.py", source)
    for relative, source in BOOM.items():
        write(made.extra / relative, source)
    return made


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- Stored documents ----------------------------------------------------------------------------

# Any JSON value, as json.loads gives them (floats other than NaN, so == works).
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=15,
)


# -- Virtual environments ------------------------------------------------------------------------


class Venv:
    """A virtual environment without pip of its own (this process's pip installs into it).

    With ``outer`` (the default) its site-packages also reads this process's, after its own,
    so that compat_plugin, zope.interface, Twisted, pip and setuptools import there.
    """

    def __init__(self, root: Path, *, outer: bool = True) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.root = root
        self.python = root / "bin" / "python"
        purelib = self.check_output("import sysconfig; print(sysconfig.get_path('purelib'))")
        self.purelib = Path(purelib)
        if outer:
            sites = "".join(f"; site.addsitedir({d!r})" for d in getsitepackages())
            (self.purelib / "outer-environment.pth").write_text(f"import site{sites}\n")

    def environment(self, variables: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment less what would change where the venv's interpreter
        imports from or whether compat_plugin's start-up hook runs, plus ``variables``."""
        dropped = ("PYTHONPATH", "PYTHONHOME", "COMPAT_PLUGIN_TWISTED")
        environment = {k: v for k, v in os.environ.items() if k not in dropped}
        environment.update(variables or {})
        return environment

    def execute(
        self, *args: str | Path, cwd: Path | None = None, variables: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (the venv's ``python``, a script in its ``bin``...) in
        :meth:`environment`, by default in the venv's directory (``python -c`` imports from
        the current one first); its output is captured, its status not checked."""
        return subprocess.run(
            [str(arg) for arg in args], env=self.environment(variables), cwd=cwd or self.root,
            capture_output=True, text=True, timeout=300,
        )

    def check_output(self, code: str) -> str:
        result = self.execute(self.python, "-c", code)
        if result.returncode != 0:
            raise AssertionError(f"child failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout.strip()

    def pip(self, *args: str) -> None:
        """This process's pip, run in the venv's interpreter and environment."""
        pip("--python", str(self.python), *args, env=self.environment())


def runtime_only(target: Path) -> Path:
    """A ``sys.path`` entry holding, through symbolic links, compat_plugin and the
    distributions it needs at run time (with their metadata), and nothing else."""
    target.mkdir()
    (target / "compat_plugin").symlink_to(Path(compat_plugin.__file__).parent)
    hook = importlib.util.find_spec("_compat_plugin_twisted_hook")  # the start-up hook's
    assert hook is not None and hook.origin is not None
    (target / os.path.basename(hook.origin)).symlink_to(hook.origin)
    wanted, seen = [str(r) for r in importlib_metadata.requires("compat-plugin") or ()], set()
    while wanted:
        requirement = Requirement(wanted.pop())
        if requirement.name in seen or not (requirement.marker is None
                                            or requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(requirement.name)
        distribution = importlib_metadata.distribution(requirement.name)
        wanted += distribution.requires or ()
        for top in {file.parts[0] for file in distribution.files or ()} - {"..", "__pycache__"}:
            if not (target / top).exists():
                (target / top).symlink_to(str(distribution.locate_file(top)))
    return target


class ProvidingFinder(importlib.abc.MetaPathFinder):
    """A real ``sys.meta_path`` finder that provides ``name`` as an empty module, and nothing
    else."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_loader(fullname, _EmptyLoader())


class AskedFinder(importlib.abc.MetaPathFinder):
    """A real ``sys.meta_path`` finder that finds nothing and notes every name it is asked
    for: placed first, it sees every question put to the finders."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        self.names.append(fullname)


class _EmptyLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        pass
