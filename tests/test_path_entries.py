"""The ``sys.path`` entries as found now (``compat_plugin._path_entries``): their state, which
plainly hold no distribution, which of them the path finder reads, and which finders provide
distributions elsewhere -- on real directories, files and finders."""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import importlib_metadata
import pytest

from compat_plugin._path_entries import (
    custom_finders,
    entry_state,
    holds_no_metadata,
    is_path_finder,
    path_entries,
    real_entry,
)
from compat_plugin._records import Stamp


@pytest.fixture
def saved_path() -> Iterator[None]:
    path, meta_path = list(sys.path), list(sys.meta_path)
    try:
        yield
    finally:
        sys.path[:], sys.meta_path[:] = path, meta_path


def test_a_directory_entry_is_stamped_with_its_link_count(tmp_path: Path) -> None:
    (tmp_path / "one.dist-info").mkdir()
    st = os.stat(tmp_path)
    assert entry_state(str(tmp_path)) == (Stamp(st.st_mtime_ns, st.st_size), st.st_nlink, True)
    (tmp_path / "two.dist-info").mkdir()
    assert entry_state(str(tmp_path)) != (Stamp(st.st_mtime_ns, st.st_size), st.st_nlink, True)


def test_a_file_entry_counts_no_links_and_a_missing_one_has_no_stamp(tmp_path: Path) -> None:
    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))
    st = os.stat(archive)
    assert entry_state(str(archive)) == (Stamp(st.st_mtime_ns, st.st_size), 0, False)
    assert entry_state(str(tmp_path / "missing")) == (None, 0, False)
    assert entry_state("bad\0path") == (None, 0, False)


def test_the_empty_entry_is_the_working_directory(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "link")
    assert entry_state("") == entry_state(str(tmp_path / "real"))
    assert real_entry("") == str((tmp_path / "real").resolve())


@pytest.mark.parametrize(("entry", "names", "holds_none"), [
    ("site", ["six.py", "pkg", "notes.txt"], True),
    ("site", ["six.py", "Six-1.0.DIST-INFO"], False),
    ("site", ["old.egg-info", "old.py"], False),
    ("site", ["dist-info", "x.dist-infos", "egg-info"], True),
    ("tool.egg", ["EGG-INFO", "tool"], False),
    ("tool", ["EGG-INFO", "tool"], True),
    ("site", ["a\nb.dist-info"], False),
    ("site", [], True),
])
def test_an_entry_holds_no_metadata_unless_importlib_metadata_would_find_some(
    tmp_path: Path, entry: str, names: list[str], holds_none: bool
) -> None:
    where = tmp_path / entry
    where.mkdir()
    for name in names:
        (where / name).mkdir()
    assert holds_no_metadata(str(where)) is holds_none
    found = list(importlib_metadata.distributions(path=[str(where)]))
    assert (found == []) is holds_none  # as importlib-metadata's path finder sees it


def test_an_entry_that_cannot_be_listed_may_hold_metadata(tmp_path: Path) -> None:
    assert holds_no_metadata(str(tmp_path / "missing")) is False


@pytest.mark.usefixtures("saved_path")
def test_path_entries_are_read_once_each_with_their_positions_path_objects_too(
    tmp_path: Path
) -> None:
    first, second = str(tmp_path / "a"), tmp_path / "b"
    sys.path[:] = [first, 42, second, first, b"bytes", ""]  # type: ignore[list-item]
    assert path_entries() == [(0, first), (2, str(second)), (5, "")]


class _Distributions(importlib_metadata.DistributionFinder):
    """A finder providing distributions, as bundlers install (it provides none here)."""

    def find_spec(self, *args: Any, **kwargs: Any) -> None:
        return None

    def find_distributions(self, context: Any = None) -> Iterator[Any]:
        return iter(())


@pytest.mark.usefixtures("saved_path")
def test_only_finders_other_than_the_path_finders_provide_distributions_elsewhere() -> None:
    bundler = _Distributions()
    sys.meta_path[:] = [bundler, importlib.machinery.PathFinder,
                        importlib_metadata.MetadataPathFinder()]
    assert custom_finders() == [bundler]
    assert is_path_finder(importlib.machinery.PathFinder)
    assert is_path_finder(importlib_metadata.MetadataPathFinder)
    assert not is_path_finder(bundler)
    sys.meta_path[:] = [importlib.machinery.PathFinder]
    assert custom_finders() == []
