"""The ``compat-plugin`` command, run for real: ``python -m compat_plugin`` in a fresh
interpreter, against plugin packages written on disk and distributions built from
``tests/projects`` and installed by pip.

Most tests share one installed world (``world``): a site directory with hostapp and the
plugin distributions around it, a later site with a second copy of acme-materials, and a
directory of handwritten dropins that extends ``hostapp.plugins`` from further down the
path.  No test changes their files (the commands write their caches there).  The cache
commands work on a ``PluginTree`` of their own, and the round trip of ``migrate`` installs a
project it writes.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import PLUGINS_INIT, PluginTree, pip, run_python

PROG = "compat-plugin"
PACKAGE = "hostapp.plugins"

# Installed together, as one environment would hold them; acme-dropin puts slate.py into
# hostapp/plugins, the way Twisted plugin distributions do.
SITE = (
    "hostapp-2.0", "acme_dropin-1.0", "acme_dupe-1.0", "acme_ghost-1.0", "acme_materials-1.0",
    "acme_notplugin-1.0", "acme_oldhost-1.0", "acme_secret-1.0",
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

# Dropins of the world's extra directory, which comes after the site on the path.
EXTRA_DROPINS = {
    "builtin": '"""A second builtin: the one hostapp ships comes first."""\n',
    "broken": BROKEN,
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

IMATERIAL = ("compat_plugin.IPlugin", "hostapp.ifaces.IMaterial")
IOTHER = ("compat_plugin.IPlugin", "hostapp.ifaces.IOther")


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
    offline = ["install", "--no-build-isolation", "--no-deps", "--no-index", "--target"]
    pip(*offline, str(made.site), *(str(wheels[name]) for name in SITE))
    pip(*offline, str(made.later), str(wheels["acme_materials-2.0"]))
    for name, source in EXTRA_DROPINS.items():
        write(made.dropins / f"{name}.py", source)
    for relative, source in BOOM.items():
        write(made.extra / relative, source)
    return made


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands run in an empty working directory (``-m`` puts it on ``sys.path``), with no
    disable patterns from outside."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("COMPAT_PLUGIN_DISABLE", raising=False)
    return cwd


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cli(
    *args: str,
    path: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    program: Sequence[str] = (sys.executable, "-m", "compat_plugin"),
) -> subprocess.CompletedProcess[str]:
    """Run the command with ``path`` in front of ``PYTHONPATH``."""
    environment = dict(os.environ)
    environment.update(env or {})
    pythonpath = [*map(str, path), *filter(None, [os.environ.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return subprocess.run(
        [*program, *args], env=environment, capture_output=True, text=True, timeout=120
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    """The standard output of a command that must have exited 0."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def table(stdout: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """The column names and the rows of a table the command printed, cut at the header's
    column starts; every cell must be aligned under its header."""
    header, *rows = stdout.splitlines()
    starts = [0, *(match.end() for match in re.finditer(r" {2,}", header))]
    bounds = list(zip(starts, [*starts[1:], None]))
    cells: list[tuple[str, ...]] = []
    for row in rows:
        for start in starts[1:]:
            if len(row) > start:
                assert row[start - 2 : start] == "  " and row[start] != " ", (row, start)
        cells.append(tuple(row[a:b].strip() for a, b in bounds))
    return [header[a:b].strip() for a, b in bounds], cells


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The message of a bad-input failure: exit 2, nothing on stdout, one line on stderr."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith(f"{PROG}: error: ")
    return line[len(f"{PROG}: error: ") :]


# -- list --------------------------------------------------------------------------------------


def test_list_shows_every_plugin_with_its_source(world: World) -> None:
    result = cli("list", PACKAGE, path=world.path)
    header, rows = table(succeeded(result))
    assert header == ["SOURCE", "PLUGIN", "PROVIDES", "DESCRIPTION"]
    plugins = str(world.plugins)
    assert rows == [
        (plugins, "hostapp.plugins.builtin:granite", "IPlugin, IMaterial", ""),
        (plugins, "hostapp.plugins.slate:slate", "IPlugin, IMaterial",
         "A rock that splits into sheets."),
        (plugins, "hostapp.plugins.slate:chalk", "IPlugin, IOther",
         "Something to write on a board with."),
        ("acme-materials 1.0 (metals)", "acme_materials.metals:iron", "IPlugin, IMaterial", ""),
        ("acme-materials 1.0 (metals)", "acme_materials.metals:copper", "IPlugin, IMaterial", ""),
        ("acme-materials 1.0 (oak)", "acme_materials.woods:oak", "IPlugin, IMaterial", ""),
        ("acme-secret 1.0 (secret)", "acme_secret.hidden:unobtainium", "IPlugin, IMaterial", ""),
    ]
    # What could not be loaded is said on stderr, one line each, in resolution order.
    errors = result.stderr.splitlines()
    assert [line.split(" from ")[0] for line in errors] == [
        "error: hostapp.plugins.broken",
        "error: hostapp.plugins.needy",
        "error: acme_ghost.nothere",
        "error: acme_notplugin.objects:plain",
        "error: acme-oldhost",
    ]
    assert errors[0] == (
        f"error: hostapp.plugins.broken from directory {world.dropins}: RuntimeError: no clay "
        f"today (raised at {world.dropins / 'broken.py'}:{BROKEN_LINE}: "
        'raise RuntimeError("no clay today"))'
    )
    assert errors[1] == (
        f"error: hostapp.plugins.needy from directory {world.dropins}: ModuleNotFoundError: No "
        f"module named 'no_such_dependency_of_needy' (raised at {world.dropins / 'needy.py'}:3: "
        "import no_such_dependency_of_needy)"
    )
    assert "IncompatiblePlugin: requires hostapp<2 but hostapp 2.0 is installed" in errors[4]


def test_list_interface_keeps_the_plugins_providing_it(world: World) -> None:
    header, rows = table(succeeded(
        cli("list", PACKAGE, "--interface", "hostapp.ifaces.IOther", path=world.path)
    ))
    assert header == ["SOURCE", "PLUGIN", "PROVIDES", "DESCRIPTION"]
    assert [row[1] for row in rows] == ["hostapp.plugins.slate:chalk"]

    _, rows = table(succeeded(
        cli("list", PACKAGE, "--interface", "hostapp.ifaces.IMaterial", path=world.path)
    ))
    assert [row[1] for row in rows] == [
        "hostapp.plugins.builtin:granite", "hostapp.plugins.slate:slate",
        "acme_materials.metals:iron", "acme_materials.metals:copper",
        "acme_materials.woods:oak", "acme_secret.hidden:unobtainium",
    ]

    # An interface that exists but that no plugin provides: an empty table, not an error.
    stdout = succeeded(cli(
        "list", PACKAGE, "--interface", "zope.interface.interfaces.IObjectEvent",
        path=world.path,
    ))
    assert stdout.splitlines() == ["SOURCE  PLUGIN  PROVIDES  DESCRIPTION"]


def test_list_json_gives_records_and_errors(world: World) -> None:
    document = json.loads(succeeded(cli("list", PACKAGE, "--json", path=world.path)))
    assert set(document) == {"plugins", "errors"}
    plugins: list[dict[str, Any]] = document["plugins"]
    keys = {"module", "attribute", "description", "provided", "interfaces", "origin"}
    assert all(set(plugin) == keys for plugin in plugins)
    assert [(p["module"], p["attribute"]) for p in plugins] == [
        ("hostapp.plugins.builtin", "granite"),
        ("hostapp.plugins.slate", "slate"),
        ("hostapp.plugins.slate", "chalk"),
        ("acme_materials.metals", "iron"),
        ("acme_materials.metals", "copper"),
        ("acme_materials.woods", "oak"),
        ("acme_secret.hidden", "unobtainium"),
    ]
    for plugin in plugins:
        assert plugin["interfaces"][: len(plugin["provided"])] == plugin["provided"]
        assert "zope.interface.Interface" in plugin["interfaces"]

    slate, chalk = plugins[1], plugins[2]
    assert slate["description"].splitlines()[0] == "A rock that splits into sheets."
    assert "Roofs have been made of it for centuries." in slate["description"]
    assert slate["provided"] == list(IMATERIAL)
    assert chalk["provided"] == list(IOTHER)
    assert slate["origin"] == {"kind": "directory", "path": str(world.plugins),
                               "distribution": None, "version": None, "entry_point": None}
    assert plugins[0]["description"] is None
    assert plugins[5]["origin"] == {
        "kind": "entry-point",
        "path": str(world.site / "acme_materials-1.0.dist-info"),
        "distribution": "acme-materials",
        "version": "1.0",
        "entry_point": "oak",
    }

    errors: list[dict[str, Any]] = document["errors"]
    assert all(set(error) == {"target", "origin", "error", "raised_at"} for error in errors)
    broken, needy, ghost, notplugin, oldhost = errors
    assert broken == {
        "target": "hostapp.plugins.broken",
        "origin": {"kind": "directory", "path": str(world.dropins), "distribution": None,
                   "version": None, "entry_point": None},
        "error": "RuntimeError: no clay today",
        "raised_at": f'{world.dropins / "broken.py"}:{BROKEN_LINE}: '
        'raise RuntimeError("no clay today")',
    }
    assert needy["raised_at"] == (
        f"{world.dropins / 'needy.py'}:3: import no_such_dependency_of_needy"
    )
    assert ghost["target"] == "acme_ghost.nothere"
    assert ghost["error"] == "ModuleNotFoundError: No module named 'acme_ghost.nothere'"
    assert ghost["origin"]["distribution"] == "acme-ghost"
    assert notplugin["target"] == "acme_notplugin.objects:plain"
    assert notplugin["error"].startswith("NotAPlugin: ")
    assert notplugin["origin"]["entry_point"] == "thing"
    assert notplugin["raised_at"] is None
    assert oldhost["target"] == "acme-oldhost"
    assert oldhost["error"] == (
        "IncompatiblePlugin: requires hostapp<2 but hostapp 2.0 is installed"
    )
    assert oldhost["origin"] == {
        "kind": "entry-point",
        "path": str(world.site / "acme_oldhost-1.0.dist-info"),
        "distribution": "acme-oldhost",
        "version": "1.0",
        "entry_point": "oldhost",
    }

    filtered = json.loads(succeeded(cli(
        "list", PACKAGE, "--json", "--interface", "hostapp.ifaces.IOther", path=world.path
    )))
    assert filtered["plugins"] == [chalk]
    assert filtered["errors"] == errors


# A child that runs the command in-process and then notes every module it had imported; run
# with ``-m`` from the working directory, so that its sys.path is the command's own.
PROBE = """\
import json
import logging
import os
import sys

from compat_plugin.cli import main

status = main(sys.argv[1:])
with open(os.environ["CLI_PROBE_MODULES"], "w") as stream:
    json.dump(sorted(sys.modules), stream)
sys.exit(status)
"""


def test_list_on_a_warm_cache_imports_no_plugin_module(
    wheels: dict[str, Path], tmp_path: Path, _empty_cwd: Path
) -> None:
    site = tmp_path / "site"
    pip(
        "install", "--no-build-isolation", "--no-deps", "--no-index", "--target", str(site),
        *(str(wheels[name]) for name in ("hostapp-2.0", "acme_dropin-1.0", "acme_materials-1.0")),
    )
    # Written before the first run: the working directory is on the path of both.
    write(_empty_cwd / "cli_probe.py", PROBE)
    noted = tmp_path / "modules.json"
    env = {"CLI_PROBE_MODULES": str(noted), "PYTHONDONTWRITEBYTECODE": "1"}

    def probe(*args: str) -> tuple[str, list[str]]:
        stdout = succeeded(cli(*args, path=[site], env=env,
                               program=(sys.executable, "-m", "cli_probe")))
        modules: list[str] = json.loads(noted.read_text())
        # Plugin modules of both sources, and the interfaces module they import.
        plugin_modules = [
            name for name in modules
            if name.startswith(f"{PACKAGE}.") or name.split(".")[0] == "acme_materials"
            or name == "hostapp.ifaces"
        ]
        assert PACKAGE in modules
        return stdout, plugin_modules

    cold = succeeded(cli("list", PACKAGE, path=[site], env=env))
    assert len(cold.splitlines()) == 7

    warm, imported = probe("list", PACKAGE)
    assert warm == cold
    assert imported == []

    warm, imported = probe("list", PACKAGE, "--interface", "hostapp.ifaces.IOther")
    assert [row[1] for row in table(warm)[1]] == ["hostapp.plugins.slate:chalk"]
    assert imported == []

    # The probe sees imports: a module whose file changed is scanned again, and only it.
    slate = site / "hostapp" / "plugins" / "slate.py"
    slate.write_text(slate.read_text() + "\n# Edited.\n")
    again, imported = probe("list", PACKAGE)
    assert again == cold
    assert imported == ["hostapp.ifaces", "hostapp.plugins.slate"]


# -- explain -----------------------------------------------------------------------------------


def explain(world: World, name: str, env: dict[str, str] | None = None) -> list[str]:
    return succeeded(cli("explain", PACKAGE, name, path=world.path, env=env)).splitlines()


def test_explain_returned_plugins_and_where_from(world: World) -> None:
    assert explain(world, "slate") == [
        f"hostapp.plugins.slate:slate: returned, from directory {world.plugins}; "
        "provides IPlugin, IMaterial",
        f"hostapp.plugins.slate:chalk: returned, from directory {world.plugins}; "
        "provides IPlugin, IOther",
    ]
    assert explain(world, "oak") == [
        "acme_materials.woods:oak: returned, from acme-materials 1.0 (entry point 'oak'); "
        "provides IPlugin, IMaterial",
    ]


def test_explain_module_shadowed_by_an_earlier_directory(world: World) -> None:
    lines = explain(world, "builtin")
    assert lines[0].startswith("hostapp.plugins.builtin:granite: returned, from directory "
                               f"{world.plugins};")
    assert (
        f"hostapp.plugins.builtin: not returned: shadowed by directory {world.plugins} "
        f"(directory {world.dropins})"
    ) in lines


def test_explain_distribution_shadowed_by_an_earlier_copy(world: World) -> None:
    lines = explain(world, "acme-materials")
    assert [line.split(":")[0] for line in lines] == [
        "acme_materials.metals", "acme_materials.metals", "acme_materials.woods",
        "acme-materials",
    ]
    assert lines[-1] == (
        f"acme-materials: not returned: shadowed by "
        f"{world.site / 'acme_materials-1.0.dist-info'} "
        f"(acme-materials 2.0 at {world.later / 'acme_materials-2.0.dist-info'})"
    )


def test_explain_disabled_says_which_pattern(world: World) -> None:
    env = {"COMPAT_PLUGIN_DISABLE": "nothing*, secret, slate"}
    assert explain(world, "acme-secret", env) == [
        "acme_secret.hidden: not returned: disabled by pattern 'secret' "
        "(acme-secret 1.0 (entry point 'secret'))",
    ]
    assert explain(world, "slate", env) == [
        f"hostapp.plugins.slate: not returned: disabled by pattern 'slate' "
        f"(directory {world.plugins})",
    ]


def test_explain_incompatible_with_the_host(world: World) -> None:
    assert explain(world, "acme-oldhost") == [
        "acme-oldhost: not returned: incompatible with the host "
        "(acme-oldhost 1.0 (entry point 'oldhost')): "
        "IncompatiblePlugin: requires hostapp<2 but hostapp 2.0 is installed",
    ]


def test_explain_import_error_with_where_it_was_raised(world: World) -> None:
    assert explain(world, "broken") == [
        f"hostapp.plugins.broken: not returned: import error (directory {world.dropins}): "
        f"RuntimeError: no clay today (raised at {world.dropins / 'broken.py'}:{BROKEN_LINE}: "
        'raise RuntimeError("no clay today"))',
    ]
    # A missing dependency: the line of the plugin module that imports it.
    assert explain(world, "needy") == [
        f"hostapp.plugins.needy: not returned: import error (directory {world.dropins}): "
        "ModuleNotFoundError: No module named 'no_such_dependency_of_needy' "
        f"(raised at {world.dropins / 'needy.py'}:3: import no_such_dependency_of_needy)",
    ]


def test_explain_missing_entry_point_module_points_at_no_import_machinery(world: World) -> None:
    (line,) = explain(world, "acme-ghost")
    assert line.startswith(
        "acme_ghost.nothere: not returned: import error (acme-ghost 1.0 (entry point 'ghost')): "
        "ModuleNotFoundError: No module named 'acme_ghost.nothere'"
    )
    assert "<frozen" not in line
    assert not line.endswith(": )")


def test_explain_objects_and_modules_without_iplugin(world: World) -> None:
    (line,) = explain(world, "thing")
    assert line.startswith(
        "acme_notplugin.objects:plain: not returned: does not provide IPlugin "
        "(acme-notplugin 1.0 (entry point 'thing')): NotAPlugin: "
    )
    assert explain(world, "notes") == [
        f"hostapp.plugins.notes: not returned: imported from directory {world.dropins}, but "
        "no module-level object in it provides IPlugin",
    ]


def test_explain_entry_point_duplicating_a_dropin(world: World) -> None:
    assert explain(world, "acme-dupe") == [
        f"hostapp.plugins.builtin: not returned: duplicate of the one from directory "
        f"{world.plugins} (acme-dupe 1.0 (entry point 'builtin'))",
        f"hostapp.plugins.builtin:granite: not returned: duplicate of the one from directory "
        f"{world.plugins} (acme-dupe 1.0 (entry point 'granite'))",
    ]


def test_explain_unknown_name_exits_1_with_one_line(world: World) -> None:
    result = cli("explain", PACKAGE, "marble", path=world.path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["marble: not a plugin candidate of hostapp.plugins"]


# -- cache -------------------------------------------------------------------------------------


ALPHA = """
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin

@implementer(IPlugin, ITestPlugin)
class Alpha:
    "The first."

alpha = Alpha()
"""

GAMMA = ALPHA.replace("Alpha", "Gamma").replace("alpha", "gamma")

DIVIDES_BY_ZERO = """\
"A module that fails while it is imported."
RATIO = 1 / 0
"""


def index_files() -> dict[str, dict[str, Any]]:
    """The entry-point index files in the per-user cache, by path, with their contents."""
    directory = Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"], "entry-points")
    return {str(p): json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def test_cache_regenerate_rewrites_the_caches(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    tree.plugin("beta", ALPHA.replace("Alpha", "Beta").replace("alpha", "beta"))
    stdout = succeeded(cli("cache", "regenerate", tree.plugins_name, path=[tree.root]))
    assert stdout == f"{tree.plugins_name}: 2 modules, 2 plugins\n"
    (cache,) = tree.cache_files()
    assert tree.cache_document()["package"] == tree.plugins_name
    assert [i["group"] for i in index_files().values()] == [tree.plugins_name]

    hour_ago = cache.stat().st_mtime_ns - 3600 * 10**9
    os.utime(cache, ns=(hour_ago, hour_ago))
    stdout = succeeded(cli("cache", "regenerate", tree.plugins_name, path=[tree.root]))
    assert stdout == f"{tree.plugins_name}: 2 modules, 2 plugins\n"
    assert tree.cache_files() == [cache]
    assert cache.stat().st_mtime_ns > hour_ago


def test_cache_regenerate_lists_failures_and_exits_1(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    broken = tree.plugin("broken", DIVIDES_BY_ZERO)
    result = cli("cache", "regenerate", tree.plugins_name, path=[tree.root])
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{tree.plugins_name}: 1 module, 1 plugin",
        f"  FAILED {tree.plugins_name}.broken (directory {tree.plugins_dir}): "
        f"ZeroDivisionError: division by zero (raised at {broken}:2: RATIO = 1 / 0)",
    ]
    # What did import is cached all the same.
    assert tree.cache_files()


def test_cache_clear_removes_one_package_s_caches(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    tree.write("more/__init__.py", PLUGINS_INIT)
    tree.write("more/gamma.py", GAMMA)
    more = f"{tree.name}.more"
    # The other package's directory cannot hold a cache: it goes to the per-user one.
    (tree.top / "more" / "__pycache__").write_text("not a directory")
    succeeded(cli("cache", "regenerate", tree.plugins_name, more, path=[tree.root]))
    user_cache = Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"])
    (fallback,) = user_cache.glob("*.json")
    assert sorted(i["group"] for i in index_files().values()) == sorted(
        [tree.plugins_name, more]
    )

    stdout = succeeded(cli("cache", "clear", tree.plugins_name, path=[tree.root]))
    assert stdout == "removed 2 cache files\n"
    assert tree.cache_files() == []
    assert [i["group"] for i in index_files().values()] == [more]
    assert fallback.exists()

    stdout = succeeded(cli("cache", "clear", more, path=[tree.root]))
    assert stdout == "removed 2 cache files\n"
    assert index_files() == {}
    assert not fallback.exists()


def test_cache_clear_without_package_empties_the_user_cache(
    tree: PluginTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.plugin("alpha", ALPHA)
    tree.write("more/__init__.py", PLUGINS_INIT)
    tree.write("more/gamma.py", GAMMA)
    (tree.top / "more" / "__pycache__").write_text("not a directory")
    more = f"{tree.name}.more"
    succeeded(cli("list", tree.plugins_name, path=[tree.root]))
    succeeded(cli("list", more, path=[tree.root]))
    # The index is kept per sys.path: another working directory, another index.
    elsewhere = tree.root / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    succeeded(cli("list", tree.plugins_name, path=[tree.root]))
    user_cache = Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"])
    stored = sorted(user_cache.rglob("*.json"))
    assert len(stored) == 4  # more's directory cache and three indexes

    stdout = succeeded(cli("cache", "clear"))
    assert stdout == "removed 4 cache files\n"
    assert list(user_cache.rglob("*.json")) == []
    # Caches beside the plugin modules are not per-user ones.
    assert len(tree.cache_files()) == 1


def test_cache_info_lists_files_sizes_and_currency(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    succeeded(cli("list", tree.plugins_name, path=[tree.root]))
    (cache,) = tree.cache_files()
    (index,) = index_files()

    def info() -> list[tuple[str, ...]]:
        header, rows = table(succeeded(cli("cache", "info", tree.plugins_name,
                                           path=[tree.root])))
        assert header == ["PACKAGE", "FOR", "CACHE FILE", "BYTES", "CURRENT"]
        return rows

    directory_row = (tree.plugins_name, str(tree.plugins_dir), str(cache))
    index_row = (tree.plugins_name, "entry points", index)
    assert info() == [
        (*directory_row, str(cache.stat().st_size), "yes"),
        (*index_row, str(os.path.getsize(index)), "yes"),
    ]

    tree.plugin("gamma", GAMMA)
    assert info() == [
        (*directory_row, str(cache.stat().st_size), "no: gamma not cached"),
        (*index_row, str(os.path.getsize(index)), "yes"),
    ]

    succeeded(cli("list", tree.plugins_name, path=[tree.root]))
    assert [row[-1] for row in info()] == ["yes", "yes"]


def test_cache_info_does_not_wait_for_shadowed_modules(world: World) -> None:
    succeeded(cli("list", PACKAGE, path=world.path))
    _, rows = table(succeeded(cli("cache", "info", PACKAGE, path=world.path)))
    (current,) = [row[-1] for row in rows if row[1] == str(world.dropins)]
    assert "builtin" not in current


ZIPPED_PLUGIN = '''\
from zope.interface import implementer
from compat_plugin import IPlugin

@implementer(IPlugin)
class One:
    "The one in the archive."

one = One()
'''


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """``zipped.plugins``, with one plugin module, inside a zip archive."""
    path = tmp_path / "zipped.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("zipped/__init__.py", "")
        zf.writestr("zipped/plugins/__init__.py", PLUGINS_INIT)
        zf.writestr("zipped/plugins/one.py", ZIPPED_PLUGIN)
    return path


def test_list_and_cache_info_for_a_package_in_a_zip_archive(archive: Path) -> None:
    directory = f"{archive}/zipped/plugins"
    _, rows = table(succeeded(cli("list", "zipped.plugins", path=[archive])))
    assert rows == [(directory, "zipped.plugins.one:one", "IPlugin", "The one in the archive.")]
    _, rows = table(succeeded(cli("cache", "info", "zipped.plugins", path=[archive])))
    # Nothing can be written into the archive: the cache is a per-user one.
    user_cache = os.environ["COMPAT_PLUGIN_CACHE_DIR"]
    assert {(row[1], os.path.dirname(row[2]), row[4]) for row in rows} == {
        (directory, user_cache, "yes"),
        ("entry points", os.path.join(user_cache, "entry-points"), "yes"),
    }


def test_package_in_a_zip_archive_is_not_shadowed_by_itself(archive: Path) -> None:
    directory = f"{archive}/zipped/plugins"
    assert succeeded(cli("explain", "zipped.plugins", "one", path=[archive])).splitlines() == [
        f"zipped.plugins.one:one: returned, from directory {directory}; provides IPlugin",
    ]
    _, rows = table(succeeded(cli("cache", "info", "zipped.plugins", path=[archive])))
    assert len(rows) == 2


def test_cache_clear_of_a_package_in_a_zip_archive_is_quiet(archive: Path) -> None:
    succeeded(cli("list", "zipped.plugins", path=[archive]))
    result = cli("cache", "clear", "zipped.plugins", path=[archive])
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "removed 2 cache files\n", ""
    )


# -- migrate -----------------------------------------------------------------------------------


def migrate(world: World, *options: str) -> list[str]:
    return succeeded(cli("migrate", PACKAGE, *options, path=world.path)).splitlines()


def test_migrate_prints_entry_points_for_the_directory_modules(world: World) -> None:
    header, *entries = migrate(world)
    assert header == '[project.entry-points."hostapp.plugins"]'
    names = [entry.split(" = ")[0] for entry in entries]
    # The hidden copy of builtin is not a second module.
    assert names[:2] == ["builtin", "slate"]
    assert len(names) == len(set(names))
    assert all(entry == f'{name} = "hostapp.plugins.{name}"'
               for name, entry in zip(names, entries))


def test_migrate_dist_keeps_the_modules_that_distribution_installed(world: World) -> None:
    slate = ['[project.entry-points."hostapp.plugins"]', 'slate = "hostapp.plugins.slate"']
    assert migrate(world, "--dist", "acme-dropin") == slate
    assert migrate(world, "--dist", "ACME_Dropin") == slate
    assert migrate(world, "--dist", "hostapp") == [
        '[project.entry-points."hostapp.plugins"]', 'builtin = "hostapp.plugins.builtin"'
    ]
    assert migrate(world, "--dist", "acme-dropin", "--to", "newpkg") == [
        '[project.entry-points."hostapp.plugins"]', 'slate = "newpkg.slate"'
    ]

    # Installed, but it put no module there: nothing to print.
    result = cli("migrate", PACKAGE, "--dist", "acme-materials", path=world.path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "hostapp.plugins has no directory plugin modules installed by acme-materials"
    ]


def test_migrate_setup_cfg_format(world: World) -> None:
    lines = migrate(world, "--format", "setup.cfg", "--dist", "acme-dropin", "--to", "newpkg")
    assert lines == ["[options.entry_points]", "hostapp.plugins =", "    slate = newpkg.slate"]
    parser = configparser.ConfigParser()
    parser.read_string("\n".join(lines))
    assert parser["options.entry_points"]["hostapp.plugins"].strip() == "slate = newpkg.slate"


# The plugins a process finds, for comparing before and after a migration.
FOUND = """
import json
import logging

import compat_plugin
import hostapp.plugins
from hostapp import ifaces

found = {
    name: [[type(plugin).__module__, plugin.name]
           for plugin in compat_plugin.getPlugins(getattr(ifaces, name), hostapp.plugins)]
    for name in ("IMaterial", "IOther")
}
records = [dict(r.origin._asdict(), module=r.module, attribute=r.attribute,
                interfaces=list(r.interfaces))
           for r in compat_plugin.discover(hostapp.plugins).plugins]
print(json.dumps({"found": found, "records": records}))
"""

MIGRATED_PROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-dropin"
version = "2.0"
requires-python = ">=3.9"
dependencies = ["hostapp>=2"]

[tool.setuptools]
packages = ["newpkg"]

"""


def test_migrate_round_trip_through_a_real_install(
    world: World, wheels: dict[str, Path], tmp_path: Path
) -> None:
    printed = succeeded(cli("migrate", PACKAGE, "--dist", "acme-dropin", "--to", "newpkg",
                            path=world.path))
    project = tmp_path / "acme_dropin_2"
    write(project / "pyproject.toml", MIGRATED_PROJECT + printed)
    write(project / "newpkg" / "__init__.py", '"""Plugins of acme-dropin."""\n')
    shutil.copy(world.plugins / "slate.py", project / "newpkg" / "slate.py")
    site = tmp_path / "site"
    pip("install", "--no-build-isolation", "--no-deps", "--no-index", "--target", str(site),
        str(wheels["hostapp-2.0"]), str(project))
    assert not (site / "hostapp" / "plugins" / "slate.py").exists()

    def found(path: Path) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(
            run_python(FOUND, path=[str(path)]).stdout.splitlines()[-1]
        )
        return report

    def of(report: dict[str, Any], module: str) -> dict[str, Any]:
        return {
            "records": [(r["attribute"], r["interfaces"])
                        for r in report["records"] if r["module"] == module],
            "found": {name: [plugin for owner, plugin in plugins if owner == module]
                      for name, plugins in report["found"].items()},
            "origins": [(r["kind"], r["distribution"], r["version"], r["entry_point"])
                        for r in report["records"] if r["module"] == module],
        }

    before = of(found(world.site), "hostapp.plugins.slate")
    after = of(found(site), "newpkg.slate")
    assert [attribute for attribute, _ in before["records"]] == ["slate", "chalk"]
    assert after["records"] == before["records"]
    assert after["found"] == before["found"] == {"IMaterial": ["slate"], "IOther": ["chalk"]}
    assert before["origins"] == [("directory", None, None, None)] * 2
    assert after["origins"] == [("entry-point", "acme-dropin", "2.0", "slate")] * 2

    # And the command agrees on where they now come from.
    _, rows = table(succeeded(cli("list", PACKAGE, path=[site])))
    assert rows[1:] == [
        ("acme-dropin 2.0 (slate)", "newpkg.slate:slate", "IPlugin, IMaterial",
         "A rock that splits into sheets."),
        ("acme-dropin 2.0 (slate)", "newpkg.slate:chalk", "IPlugin, IOther",
         "Something to write on a board with."),
    ]


# -- Bad input ---------------------------------------------------------------------------------


BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "unknown package": (["list", "no_such_package"], "no package named 'no_such_package'"),
    "unknown subpackage": (["explain", "hostapp.nothing", "x"],
                           "no package named 'hostapp.nothing'"),
    "unknown package to cache": (["cache", "info", "no_such_package"],
                                 "no package named 'no_such_package'"),
    "module, not a package": (["list", "hostapp.ifaces"],
                              "hostapp.ifaces is a module, not a plugin package"),
    "module, not a package, to migrate": (["migrate", "hostapp.ifaces"],
                                          "hostapp.ifaces is a module, not a plugin package"),
    "unknown interface": (["list", PACKAGE, "--interface", "hostapp.ifaces.INothing"],
                          "unknown interface 'hostapp.ifaces.INothing'"),
    "interface of an unknown module": (["list", PACKAGE, "--interface", "no_such.IThing"],
                                       "unknown interface 'no_such.IThing'"),
    "not an interface": (["list", PACKAGE, "--interface", "json.dumps"],
                         "unknown interface 'json.dumps'"),
    "bad option": (["list", PACKAGE, "--colour"], "unrecognized arguments: --colour"),
    "option without its value": (["list", PACKAGE, "--interface"], "--interface"),
    "missing package": (["list"], "the following arguments are required: package"),
    "missing name": (["explain", PACKAGE], "the following arguments are required: name"),
    "missing packages": (["cache", "info"], "the following arguments are required: PACKAGE"),
    "missing command": ([], "the following arguments are required: command"),
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "unknown cache action": (["cache", "frobnicate"], "invalid choice: 'frobnicate'"),
    "unknown format": (["migrate", PACKAGE, "--format", "toml"], "invalid choice: 'toml'"),
    "unknown distribution": (["migrate", PACKAGE, "--dist", "no-such-dist"],
                             "no distribution named 'no-such-dist'"),
    "package raising on import": (
        ["list", "boom.plugins"],
        "cannot import boom.plugins: RuntimeError: the plugin package is broken",
    ),
    "package missing a dependency": (
        ["list", "boom.needy"],
        "cannot import boom.needy: No module named 'no_such_dependency_of_needy'",
    ),
    "package raising a message of two lines": (
        ["list", "boom.wordy"], "cannot import boom.wordy: RuntimeError: the first line"
    ),
    "package calling sys.exit": (["list", "boom.leaving"], "cannot import boom.leaving"),
    "--to not a package name": (
        ["migrate", PACKAGE, "--dist", "acme-dropin", "--to", "new pkg"], "new pkg"
    ),
}

@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_one_line(world: World, case: str) -> None:
    args, message = BAD_INPUT[case]
    assert message in one_error_line(cli(*args, path=world.path))


# -- The console script ------------------------------------------------------------------------


def test_console_script_is_the_same_command(world: World) -> None:
    script = shutil.which(PROG, path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip(f"no {PROG} script beside {sys.executable}")
    via_script = cli("list", PACKAGE, path=world.path, program=[script])
    assert succeeded(via_script) == succeeded(cli("list", PACKAGE, path=world.path))
    assert "no package named" in one_error_line(
        cli("list", "no_such_package", path=world.path, program=[script])
    )
    assert succeeded(cli("--help", program=[script])).startswith(f"usage: {PROG} ")


def test_migrate_keeps_modules_that_fail_to_import_and_says_so(world: World) -> None:
    result = cli("migrate", PACKAGE, path=world.path)
    assert result.returncode == 0, result.stderr
    assert 'broken = "hostapp.plugins.broken"' in result.stdout.splitlines()
    assert "warning: hostapp.plugins.broken does not import here" in result.stderr


def test_cache_clear_removes_every_index_of_the_group(world: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Two indexes of one group: the command's sys.path, and one with another entry in front.
    succeeded(cli("list", PACKAGE, path=world.path))
    succeeded(cli("list", PACKAGE, path=[elsewhere, *world.path]))
    indexes = Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"]) / "entry-points"
    assert len(list(indexes.glob("*.json"))) == 2
    succeeded(cli("cache", "clear", PACKAGE, path=world.path))
    assert list(indexes.glob("*.json")) == []


def test_main_in_process_leaves_the_library_logger_as_it_was(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from compat_plugin import cli as command

    library_logger = logging.getLogger("compat_plugin")
    handlers, propagate = list(library_logger.handlers), library_logger.propagate
    assert command.main(["list", "no.such.package"]) == 2
    assert capsys.readouterr().err.startswith("compat-plugin: error:")
    assert (library_logger.handlers, library_logger.propagate) == (handlers, propagate)
