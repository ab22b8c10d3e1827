"""Real distributions for tests: a setuptools project written on disk, its wheel built and
installed into a site directory, all with pip (offline, without build isolation: setuptools
70.1 or later must be installed where the tests run).  ``compat_plugin.testing`` offers these."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import importlib_metadata
from packaging.utils import canonicalize_name

from ._children import captured


def pip(*args: str, python: str | os.PathLike[str] = sys.executable,
        env: Mapping[str, str] | None = None) -> None:
    """Run pip (of ``python``, in ``env``) for real; its output is shown only if it fails."""
    command = [os.fspath(python), "-m", "pip", "--disable-pip-version-check", "--no-input",
               *args]
    result = captured(command, timeout=300, env=env)
    if result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{result.stdout}\n{result.stderr}")


def build_wheel(name: str, directory: Path, **project: Any) -> Path:
    """Build the wheel of the project :func:`write_project` writes for ``name`` and
    ``project`` (``files``, ``version``, ``entry_points``, ``requires``) into ``directory``,
    with setuptools through ``pip wheel`` (offline, without build isolation); return it."""
    (wheel,) = build_wheels([write_project(name, directory, **project)], directory / "wheels")
    return wheel


def write_project(
    name: str,
    directory: Path,
    *,
    version: str = "1.0",
    files: Mapping[str, str],
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    requires: Sequence[str] = (),
) -> Path:
    """Write into ``directory`` the setuptools project of a distribution ``name`` holding
    ``files`` (relative paths: modules of packages, with or without their ``__init__.py``, or
    top-level modules), declaring ``entry_points`` (by group) and requiring ``requires``;
    return its directory (for :func:`build_wheels`, which builds many at once, or
    :func:`build_wheel`)."""
    project = directory / f"{name}-{version}-project"
    for relative, source in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    (project / "pyproject.toml").write_text(
        _pyproject(name, version, files, entry_points or {}, requires), encoding="utf-8")
    return project


def build_wheels(projects: Sequence[Path], output: Path) -> list[Path]:
    """Build the wheels of the project directories ``projects`` into ``output`` with one
    ``pip wheel`` (offline, without build isolation: the build backend must be installed);
    return the wheels made."""
    output.mkdir(parents=True, exist_ok=True)
    before = set(output.glob("*.whl"))
    try:
        pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
            "--wheel-dir", str(output), *map(str, projects))
    except AssertionError as failed:
        lacking = _lacking_setuptools()
        if lacking:
            raise AssertionError(f"{lacking}\n{failed}") from None
        raise
    return sorted(set(output.glob("*.whl")) - before)


def _lacking_setuptools() -> str:
    """What this environment lacks to build :func:`write_project`'s projects, in a sentence
    saying what to install; empty if nothing.  They need setuptools 70.1 or later (which
    builds wheels itself), or 61 or later (which reads ``[project]``) with ``wheel``."""
    from packaging.version import Version

    def version(name: str) -> Version | None:
        try:
            return Version(importlib_metadata.version(name))
        except importlib_metadata.PackageNotFoundError:
            return None

    setuptools = version("setuptools")
    if setuptools is not None and (setuptools >= Version("70.1") or (
            setuptools >= Version("61") and version("wheel") is not None)):
        return ""
    has = f"setuptools {setuptools}" if setuptools is not None else "no setuptools"
    return (f"building a distribution needs setuptools 70.1 or later where the tests run, "
            f"and {sys.executable} has {has}: python -m pip install 'setuptools>=70.1'")


def _pyproject(name: str, version: str, files: Mapping[str, str],
               entry_points: Mapping[str, Mapping[str, str]], requires: Sequence[str]) -> str:
    # Every directory holding a module is a package of the distribution, with or without an
    # ``__init__.py``: a drop-in distribution ships ``host/plugins/mine.py`` alone.
    packages = sorted({os.path.dirname(path).replace("/", ".") for path in files
                       if "/" in path and path.endswith(".py")})
    modules = sorted(path[:-3] for path in files if "/" not in path and path.endswith(".py"))
    lines = [
        "[build-system]", 'requires = ["setuptools"]', 'build-backend = "setuptools.build_meta"',
        "", "[project]", f"name = {_toml(name)}", f"version = {_toml(version)}",
        f"dependencies = [{', '.join(map(_toml, requires))}]",
    ]
    for group, declared in entry_points.items():
        lines += ["", f"[project.entry-points.{_toml(group)}]"]
        lines += [f"{_toml(entry)} = {_toml(value)}" for entry, value in declared.items()]
    lines += ["", "[tool.setuptools]", f"packages = [{', '.join(map(_toml, packages))}]",
              f"py-modules = [{', '.join(map(_toml, modules))}]"]
    return "\n".join(lines) + "\n"


def _toml(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def install_wheels(target: Path, *wheels: Path) -> Path:
    """Install ``wheels`` with one pip into the directory ``target`` (a site directory, as
    ``pip install --target`` makes it) as pip installs into an environment: files go into the
    packages already there (a drop-in module into its host's plugin directory), and another
    version of a distribution already installed there is uninstalled first.  Return it."""
    if not target.is_dir() or not any(target.iterdir()):
        _pip_install(target, wheels)
        return target
    # ``--target`` leaves out a top-level directory the target already has: install apart,
    # then merge.
    with tempfile.TemporaryDirectory(prefix="compat-plugin-install-") as staging:
        staged = Path(staging)
        _pip_install(staged, wheels)
        for distribution in importlib_metadata.distributions(path=[str(staged)]):
            _uninstall(target, canonicalize_name(distribution.metadata["Name"]))
        shutil.copytree(staged, target, dirs_exist_ok=True)
    return target


def _pip_install(target: Path, wheels: Sequence[Path]) -> None:
    pip("install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
        "--target", str(target), *map(str, wheels))


def _uninstall(site: Path, name: str) -> None:
    """Remove every file the distribution ``name`` installed into ``site`` (its RECORD, as
    importlib-metadata reads it, lists its metadata too), then the directories left empty."""
    for distribution in importlib_metadata.distributions(path=[str(site)]):
        if canonicalize_name(distribution.metadata.get("Name") or "") != name:
            continue
        emptied: set[Path] = set()
        for file in distribution.files or ():
            path = Path(str(distribution.locate_file(file)))
            with contextlib.suppress(OSError):
                path.unlink()
                emptied.update(p for p in path.parents if site in p.parents)
        for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
