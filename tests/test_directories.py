"""The directory source (``compat_plugin._directories``): which files of a plugin package's
``__path__`` are plugin modules, in directories and zip archives, how each is stamped, and
which directories ``pluginPackagePaths`` adds.

Listings are checked against real directories and archives, and against what the import
system itself loads for each name.
"""

from __future__ import annotations

import importlib
import itertools
import os
import py_compile
import sys
import textwrap
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from compat_plugin import _resolver, getPlugins, pluginPackagePaths
from compat_plugin._directories import (
    Listing,
    list_directory,
    module_stamp,
    plugin_directories,
    split_archive_path,
)
from compat_plugin._records import Stamp

from .conftest import (
    CACHE_NAME,
    INTERFACES,
    PLUGINS_INIT,
    PluginTree,
    cache_beside,
    plugin_source,
    read_cache,
)

_serial = itertools.count()


def entries(listing: Listing) -> dict[str, tuple[str, int, int]]:
    """``{name: (file, mtime_ns, size)}`` of a listing."""
    return {
        name: (listing.files[n], listing.mtimes[n], listing.sizes[n])
        for n, name in enumerate(listing.names)
    }


def stamped(directory: Path, relative: str) -> tuple[str, int, int]:
    info = (directory / relative).stat()
    return relative, info.st_mtime_ns, info.st_size


def compiled(source: Path, target: Path) -> None:
    """``target``: the bytecode of ``source``, as a sourceless ``.pyc`` file."""
    py_compile.compile(str(source), cfile=str(target), doraise=True)


# -- Listing -----------------------------------------------------------------------------------


def test_listing_columns_stamps_and_subsets() -> None:
    listing = Listing("/d")
    for name, size in (("b", 2), ("a", 1), ("c", 3)):
        listing.add(name, f"{name}.py", 10 * size, size)
    assert len(listing) == 3
    assert listing.stamp(1) == Stamp(10, 1)
    kept = listing.only({"c", "a", "absent"})
    assert (kept.directory, kept.in_archive) == ("/d", False)
    assert entries(kept) == {"a": ("a.py", 10, 1), "c": ("c.py", 30, 3)}
    assert kept.names == ["a", "c"]  # the listing's own order
    assert len(listing) == 3
    assert Listing("/z.zip/p", in_archive=True).only(set()).in_archive


# -- what counts as a plugin module ---------------------------------------------------------------


def test_sources_bytecode_and_packages_by_the_import_systems_precedence(tmp_path: Path) -> None:
    directory = tmp_path / "plugins"
    directory.mkdir()
    for name in ("plain", "both", "shadowed", "pkg_over_pyc"):
        (directory / f"{name}.py").write_text(f"NAME = {name!r}\n")
    compiled(directory / "both.py", directory / "both.pyc")  # the source wins
    (directory / "only_bytecode.py").write_text("NAME = 'only_bytecode'\n")
    compiled(directory / "only_bytecode.py", directory / "only_bytecode.pyc")
    (directory / "only_bytecode.py").unlink()
    for package in ("shadowed", "pkg", "pkg_over_pyc"):
        (directory / package).mkdir()
        (directory / package / "__init__.py").write_text(f"NAME = '{package} package'\n")
    compiled(directory / "pkg_over_pyc.py", directory / "pkg_over_pyc.pyc")
    (directory / "pkg_over_pyc.py").unlink()
    (directory / "compiled_pkg").mkdir()
    (directory / "compiled_pkg" / "__init__.py").write_text("NAME = 'compiled'\n")
    compiled(directory / "compiled_pkg" / "__init__.py",
             directory / "compiled_pkg" / "__init__.pyc")
    (directory / "compiled_pkg" / "__init__.py").unlink()

    listing = list_directory(str(directory))
    assert listing is not None
    assert (listing.directory, listing.in_archive) == (str(directory), False)
    assert entries(listing) == {
        "plain": stamped(directory, "plain.py"),
        "both": stamped(directory, "both.py"),
        "shadowed": stamped(directory, "shadowed/__init__.py"),
        "pkg": stamped(directory, "pkg/__init__.py"),
        "pkg_over_pyc": stamped(directory, "pkg_over_pyc/__init__.py"),
        "only_bytecode": stamped(directory, "only_bytecode.pyc"),
        "compiled_pkg": stamped(directory, "compiled_pkg/__init__.pyc"),
    }


def test_the_file_listed_is_the_file_import_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    name = f"cpdirs{os.getpid()}_{next(_serial)}"
    directory = tmp_path / name
    directory.mkdir()
    (directory / "__init__.py").write_text("")
    (directory / "module.py").write_text("")
    (directory / "package").mkdir()
    (directory / "package" / "__init__.py").write_text("")
    (directory / "package.py").write_text("raise AssertionError('a package wins')\n")
    (directory / "loose.py").write_text("")
    compiled(directory / "loose.py", directory / "loose.pyc")
    (directory / "loose.py").unlink()
    monkeypatch.syspath_prepend(str(tmp_path))
    listing = list_directory(str(directory))
    assert listing is not None
    try:
        for short, (relative, _, _) in entries(listing).items():
            module = importlib.import_module(f"{name}.{short}")
            assert module.__file__ == str(directory / relative), short
    finally:
        for loaded in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[loaded]


@pytest.mark.parametrize(
    "entry",
    [
        "__init__.py", "class.py", "1st.py", "my-module.py", "two.dots.py", "space d.py",
        ".hidden.py", "notes.txt", "module.pyo", "module.py~", "__init__.pyc",
        "if.pyc", "1st.pyc", "__main__.py", "__main__.pyc",
    ],
)
def test_files_that_are_not_modules_are_left_out(tmp_path: Path, entry: str) -> None:
    (tmp_path / "kept.py").write_text("")
    (tmp_path / entry).write_text("")
    listing = list_directory(str(tmp_path))
    assert listing is not None
    assert listing.names == ["kept"]


@pytest.mark.parametrize("name", ["nosuchinit", "__pycache__", "with.dot", "lambda", "2d",
                                  "__main__"])
def test_directories_that_are_not_packages_are_left_out(tmp_path: Path, name: str) -> None:
    (tmp_path / "kept.py").write_text("")
    (tmp_path / name).mkdir()
    if name != "nosuchinit":
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "inside.py").write_text("")
    listing = list_directory(str(tmp_path))
    assert listing is not None
    assert listing.names == ["kept"]


def test_a_dangling_link_is_passed_over_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="compat_plugin")
    (tmp_path / "kept.py").write_text("")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "gone.py")
    (tmp_path / "dangling.pyc").symlink_to(tmp_path / "gone.pyc")
    listing = list_directory(str(tmp_path))
    assert listing is not None
    assert listing.names == ["kept"]
    named = [r.getMessage() for r in caplog.records if "dangling" in r.getMessage()]
    assert len(named) == 2
    assert all(m.startswith("passing over plugin module ") for m in named)


def test_what_cannot_be_listed_gives_none(tmp_path: Path) -> None:
    (tmp_path / "file.py").write_text("")
    assert list_directory(str(tmp_path / "absent")) is None
    assert list_directory(str(tmp_path / "file.py")) is None
    assert list_directory(str(tmp_path / "file.py" / "below")) is None
    empty = list_directory(str(tmp_path / "file.py").replace("file.py", ""))
    assert empty is not None and empty.names == ["file"]


# -- zip archives ---------------------------------------------------------------------------------


def make_archive(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_directory_inside_a_zip_archive_is_listed_from_the_archive(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "plugins.zip", {
        "pkg/__init__.py": "",
        "pkg/plugins/__init__.py": "",
        "pkg/plugins/a.py": "A = 1\n",
        "pkg/plugins/both.py": "B = 1\n",
        "pkg/plugins/both.pyc": b"\x00" * 40,
        "pkg/plugins/compiled.pyc": b"\x00" * 30,
        "pkg/plugins/sub/__init__.py": "SUB = 1\n",
        "pkg/plugins/sub.py": "never loaded\n",
        "pkg/plugins/bytecode_pkg/__init__.pyc": b"\x00" * 20,
        "pkg/plugins/sub/deeper.py": "",
        "pkg/plugins/notapkg/inside.py": "",
        "pkg/plugins/class.py": "",
        "pkg/plugins/__main__.py": "",
        "pkg/plugins/my-module.py": "",
        "pkg/plugins/notes.txt": "",
        "pkg/other.py": "",
    })
    when = archive.stat().st_mtime_ns
    listing = list_directory(f"{archive}/pkg/plugins")
    assert listing is not None
    assert listing.in_archive
    assert listing.directory == f"{archive}/pkg/plugins"
    assert entries(listing) == {
        "a": ("a.py", when, 6),
        "both": ("both.py", when, 6),
        "bytecode_pkg": ("bytecode_pkg/__init__.pyc", when, 20),
        "compiled": ("compiled.pyc", when, 30),
        "sub": ("sub/__init__.py", when, 8),
    }
    top = list_directory(f"{archive}/pkg")
    assert top is not None
    assert sorted(top.names) == ["other", "plugins"]


def test_archives_that_cannot_be_read_give_none(tmp_path: Path) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    assert list_directory(f"{tmp_path}/broken.zip/pkg/plugins") is None
    archive = make_archive(tmp_path / "ok.zip", {"pkg/plugins/a.py": ""})
    assert list_directory(str(archive)) is None  # the archive itself is no directory
    absent = list_directory(f"{archive}/nothing/here")
    assert absent is not None and len(absent) == 0


def test_split_archive_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_archive(tmp_path / "a.zip", {"pkg/plugins/m.py": ""})
    (tmp_path / "dir").mkdir()
    inner = os.path.join("pkg", "plugins")
    assert split_archive_path(f"{archive}/pkg/plugins") == (str(archive), inner)
    assert split_archive_path(f"{archive}/pkg/plugins/") == (str(archive), inner)
    assert split_archive_path(f"{archive}/pkg/plugins/m.py") == (
        str(archive), os.path.join(inner, "m.py"))
    assert split_archive_path(f"{archive}/not/a/member") == (
        str(archive), os.path.join("not", "a", "member"))
    assert split_archive_path(str(archive)) == (None, "")
    assert split_archive_path(str(tmp_path / "dir")) == (None, "")
    assert split_archive_path(str(tmp_path / "dir" / "absent" / "deeper")) == (None, "")
    assert split_archive_path("/") == (None, "")
    monkeypatch.chdir(tmp_path)
    assert split_archive_path("a.zip/pkg/plugins") == (str(archive), inner)


def test_module_stamp_is_the_file_or_its_archive(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("x = 1\n")
    os.utime(module, ns=(5, 1_000_000_007))
    assert module_stamp(str(module)) == Stamp(1_000_000_007, 6)
    archive = make_archive(tmp_path / "a.zip", {"pkg/m.py": "x = 1\n"})
    info = archive.stat()
    assert module_stamp(f"{archive}/pkg/m.py") == Stamp(info.st_mtime_ns, info.st_size)
    assert module_stamp(str(tmp_path / "absent.py")) is None
    assert module_stamp(f"{archive}/pkg/m.py".replace("a.zip", "b.zip")) is None


# -- pluginPackagePaths and the __path__ walk ----------------------------------------------------


def test_plugin_package_paths_follow_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, other, plain = tmp_path / "own", tmp_path / "other", tmp_path / "plain"
    (own / "pkg" / "sub" / "plugins").mkdir(parents=True)
    (own / "pkg" / "sub" / "plugins" / "__init__.py").write_text("")
    (other / "pkg" / "sub" / "plugins").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(own), str(other), "plain", str(plain), ""])
    assert pluginPackagePaths("pkg.sub.plugins") == [
        str(other / "pkg" / "sub" / "plugins"),
        str(plain / "pkg" / "sub" / "plugins"),  # "plain", relative, made absolute
        str(plain / "pkg" / "sub" / "plugins"),
        str(tmp_path / "pkg" / "sub" / "plugins"),  # "" is the working directory
    ]
    assert pluginPackagePaths("pkg") == [str(e / "pkg") for e in (own, other, plain, plain,
                                                                  tmp_path)]


def test_plugin_directories_walks_path_live_once_each(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.py").write_text("")
    (tmp_path / "file").write_text("")
    package = ModuleType("walked")
    path: list[object] = [
        str(tmp_path / "two"), str(tmp_path / "absent"), str(tmp_path / "file"), 42,
        str(tmp_path / "one"), str(tmp_path / "two") + os.sep, str(tmp_path / "one" / "."),
    ]
    package.__path__ = path  # type: ignore[assignment]
    walked = plugin_directories(package)
    path.append(str(tmp_path))  # read as it is when walked
    assert [listing.directory for listing in walked] == [
        str(tmp_path / "two"), str(tmp_path / "one"), str(tmp_path)
    ]
    assert list(plugin_directories(ModuleType("no_path"))) == []


# -- plugin packages spread over several path entries ----------------------------------------


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
    write(first / name / "a.py", plugin_source("a"))
    write(first / name / "dup.py", plugin_source("dup-first"))
    write(second / name / "b.py", plugin_source("b"))
    write(second / name / "c.py", plugin_source("c", "ITestPlugin2"))
    write(second / name / "dup.py", plugin_source("dup-second"))
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

    def loaded() -> set[str]:
        return {m.rpartition(".")[2] for m in sys.modules if m.startswith(f"{name}.")}

    try:
        package = importlib.import_module(name)
        assert getattr(package, "__file__", None) is None
        portions = [os.path.abspath(portion) for portion in package.__path__]
        assert portions == [str(first / name), str(second / name)]

        cold = query("ITestPlugin"), query("ITestPlugin2")
        # The first portion's dup shadows the second's.
        assert cold == (["a", "dup-first", "b"], ["c"])
        for _ in range(2):
            forget()
            assert query("ITestPlugin") == cold[0]
            assert loaded() == {"a", "dup", "b"}
            assert query("ITestPlugin2") == cold[1]

        # Each portion has its own cache, describing its own modules (a shadowed one is
        # never scanned).
        for portion, expected in ((first / name, {"a", "dup"}), (second / name, {"b", "c"})):
            assert set(read_cache(cache_beside(portion), portion, name).stamps) == expected
    finally:
        forget()


def test_plugin_package_inside_a_zip_archive_is_found_in_process(tmp_path: Path) -> None:
    name = f"cpzip{os.getpid()}_{next(_serial)}"
    archive = make_archive(tmp_path / "plugins.zip", {
        f"{name}/__init__.py": "",
        f"{name}/ifaces.py": textwrap.dedent(INTERFACES),
        f"{name}/plugins/__init__.py": textwrap.dedent(PLUGINS_INIT),
        f"{name}/plugins/a.py": plugin_source("a").format(pkg=name),
        f"{name}/plugins/b.py": plugin_source("b", "ITestPlugin2").format(pkg=name),
    })
    sys.path.insert(0, str(archive))
    try:
        importlib.invalidate_caches()
        package = importlib.import_module(f"{name}.plugins")
        ifaces = importlib.import_module(f"{name}.ifaces")
        assert [p.tag for p in getPlugins(ifaces.ITestPlugin, package)] == ["a"]
        assert [p.tag for p in getPlugins(ifaces.ITestPlugin2, package)] == ["b"]
        assert not list(tmp_path.rglob(CACHE_NAME))
    finally:
        sys.path.remove(str(archive))
        for module in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[module]


def test_a_tree_lists_its_plugin_directory(tree: PluginTree) -> None:
    tree.plugin("a", plugin_source("a"))
    (listing,) = plugin_directories(tree.package())
    assert listing.directory == str(tree.plugins_dir)
    assert listing.names == ["a"]
