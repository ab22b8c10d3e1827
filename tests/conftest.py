"""Fixtures that build real plugin packages on disk, build and pip-install real
distributions, and run real interpreters."""

from __future__ import annotations

import base64
import hashlib
import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from site import getsitepackages
from types import ModuleType
from typing import Protocol

import pytest

import compat_plugin
from compat_plugin import _resolver

_serial = itertools.count()

PROJECTS = Path(__file__).parent / "projects"
# Built by hand, because setuptools refuses to write a malformed entry point.  (Its value,
# ``acme_malformed.3d:model``, is one that pip still installs whichever metadata backend it uses.)
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


class PluginTree:
    """A package ``<name>`` with ``<name>.ifaces`` and a plugin package ``<name>.plugins``.

    Files are real; the tree's root is put on ``sys.path`` for the test and every module of the
    tree is removed from ``sys.modules`` afterwards.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.top = root / name
        self.plugins_dir = self.top / "plugins"
        self.write("__init__.py", "")
        self.write("ifaces.py", INTERFACES)
        self.write("plugins/__init__.py", PLUGINS_INIT)

    @property
    def plugins_name(self) -> str:
        return f"{self.name}.plugins"

    def write(self, relative: str, text: str) -> Path:
        path = self.top / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).format(pkg=self.name), encoding="utf-8")
        return path

    def plugin(self, name: str, text: str) -> Path:
        """Write ``plugins/<name>.py``; ``{pkg}`` in ``text`` is the tree's package name."""
        return self.write(f"plugins/{name}.py", text)

    def package(self) -> ModuleType:
        importlib.invalidate_caches()
        return importlib.import_module(self.plugins_name)

    def ifaces(self) -> ModuleType:
        return importlib.import_module(f"{self.name}.ifaces")

    def purge(self) -> None:
        """Forget the tree's imported modules and the resolver's memory, as a new process would."""
        for module in [m for m in sys.modules if m == self.name or m.startswith(self.name + ".")]:
            del sys.modules[module]
        _resolver.forget_state()
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


@pytest.fixture(autouse=True)
def _private_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own per-user cache and a fresh resolver memory."""
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(tmp_path_factory.mktemp("usercache")))
    monkeypatch.delenv("COMPAT_PLUGIN_NO_CACHE_WRITE", raising=False)
    _resolver.forget_state()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginTree]:
    name = f"cpt{os.getpid()}_{next(_serial)}"
    made = PluginTree(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield made
    made.purge()


def run_python(
    code: str,
    *,
    path: list[str] | None = None,
    env: dict[str, str] | None = None,
    user: int | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``path`` in front of ``PYTHONPATH``.

    The child imports the same compat_plugin as this process (the working tree's, or the
    installed one under tox), whatever its ``sys.path`` would otherwise find first.
    """
    environment = dict(os.environ)
    environment.update(env or {})
    library = os.path.dirname(os.path.dirname(os.path.abspath(compat_plugin.__file__)))
    pythonpath = [*(path or []), library, *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        user=user,
        timeout=300,
    )
    if check and result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        raise AssertionError(f"child failed ({result.returncode}):\n{output}")
    return result


# -- Real distributions: the projects under tests/projects, built once, installed by pip ----


def pip(
    *args: str, python: str | Path = sys.executable, env: dict[str, str] | None = None
) -> None:
    """Run pip for real; its output is shown only if it fails."""
    command = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    if result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{result.stdout}\n{result.stderr}")


# -- Wheels, built once ------------------------------------------------------------------------


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
    command = [
        sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet",
        "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(output),
    ]
    builds = [
        subprocess.Popen(
            [*command, *map(str, batch)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for batch in batches
    ]
    for build in builds:
        out, _ = build.communicate(timeout=300)
        assert build.returncode == 0, out
    return {w.name.split("-py3-")[0]: w for w in output.glob("*.whl")}


class Install(Protocol):
    def __call__(self, site_name: str, *dists: str) -> Path: ...


@pytest.fixture
def install(tmp_path: Path, wheels: dict[str, Path]) -> Install:
    """``install(site, "hostapp-2.0", ...)``: pip installs wheels into ``tmp_path/site``."""

    def install(site_name: str, *dists: str) -> Path:
        target = tmp_path / site_name
        pip(
            "install", "--no-build-isolation", "--no-deps", "--no-index",
            "--target", str(target), *(str(wheels[d]) for d in dists),
        )
        return target

    return install


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
