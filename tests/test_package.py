"""The package as a user meets it on an index: its metadata, licence and changelog."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import importlib_metadata
import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    document: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    found: dict[str, Any] = document["project"]
    return found


def test_the_licence_file_is_the_one_pyproject_names(project: dict[str, Any]) -> None:
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    # Installed, the licence travels as the metadata's SPDX expression (PEP 639), which
    # replaces the licence classifiers.
    metadata = importlib_metadata.metadata("compat-plugin")
    assert metadata["License-Expression"] == "MIT"


def test_classifiers_name_every_supported_python_and_twisted(project: dict[str, Any]) -> None:
    classifiers = set(project["classifiers"])
    assert "Framework :: Twisted" in classifiers
    assert project["requires-python"] == ">=3.9"
    versions = {c.rpartition(" :: ")[2] for c in classifiers
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert versions == {"3.9", "3.10", "3.11", "3.12", "3.13"}
    assert "Typing :: Typed" in classifiers
    assert (ROOT / "src" / "compat_plugin" / "py.typed").exists()


def test_urls_authors_and_keywords(project: dict[str, Any]) -> None:
    assert set(project["urls"]) == {"Homepage", "Documentation", "Source", "Issues",
                                    "Changelog"}
    assert all(url.startswith("https://") for url in project["urls"].values())
    assert project["authors"] and project["keywords"]


def test_the_changelog_has_this_release(project: dict[str, Any]) -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(project['version'])}\b", changelog, re.MULTILINE)


def test_dependencies_are_the_standard_readers(project: dict[str, Any]) -> None:
    from packaging.requirements import Requirement

    requirements = [Requirement(text) for text in project["dependencies"]]
    assert {r.name for r in requirements} == {"zope.interface", "importlib-metadata",
                                              "packaging"}
    # importlib-metadata on every Python: the same reader everywhere.
    assert [r for r in requirements if r.marker is not None] == []


def test_nothing_at_the_clone_root_hides_the_installed_package() -> None:
    """From the clone's root (``python -m matsim`` in the quick start), ``sys.path[0]`` is the
    root: the package must be found where it is installed, not in the working tree's root."""
    code = ("import importlib.util as u; print(u.find_spec('compat_plugin').origin); "
            "print(u.find_spec('_compat_plugin_twisted_hook').origin)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    package, hook = (Path(origin).resolve() for origin in result.stdout.split())
    assert package.parent.parent != ROOT.resolve() and hook.parent != ROOT.resolve()
