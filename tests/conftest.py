"""Fixtures that build real plugin packages on disk, build and pip-install real
distributions, and run real interpreters."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from site import getsitepackages
from types import ModuleType
from typing import Protocol

import pytest

from compat_plugin.testing import PluginPackage, build_wheels, install_wheels, pip, run_python

__all__ = ["INTERFACES", "PLUGINS_INIT", "Install", "PluginTree", "Venv", "pip", "run_python"]

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


class Venv:
    """A virtual environment without pip whose ``site-packages`` also reads the outer one's,
    so compat_plugin, zope.interface, pip and the build backends import there (editable
    installs need a real environment: their ``.pth`` files are read only in site directories)."""

    def __init__(self, root: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.python = root / "bin" / "python"
        purelib = self.check_output("import sysconfig; print(sysconfig.get_path('purelib'))")
        self.site_packages = Path(purelib)
        outer = "".join(f"; site.addsitedir({d!r})" for d in getsitepackages())
        (self.site_packages / "outer-environment.pth").write_text(f"import site{outer}\n")

    def environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def check_output(self, code: str) -> str:
        """What ``code`` printed in a new interpreter of this environment."""
        result = subprocess.run(
            [str(self.python), "-c", code], env=self.environment(), capture_output=True,
            text=True, timeout=300,
        )
        if result.returncode != 0:
            raise AssertionError(f"child failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout.strip()

    def pip(self, *args: str) -> None:
        pip(*args, python=self.python)
