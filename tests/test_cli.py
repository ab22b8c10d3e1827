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
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    BROKEN_LINE,
    PACKAGE,
    PLUGINS_INIT,
    PluginTree,
    World,
    install_wheels,
    plugin_source,
    run_python,
    write,
)

PROG = "compat-plugin"
IMATERIAL = ("compat_plugin.IPlugin", "hostapp.ifaces.IMaterial")
IOTHER = ("compat_plugin.IPlugin", "hostapp.ifaces.IOther")

@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands run in an empty working directory (``-m`` puts it on ``sys.path``), with no
    disable patterns from outside."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("COMPAT_PLUGIN_DISABLE", raising=False)
    return cwd


def cli(
    *args: str,
    path: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    program: Sequence[str] = (sys.executable, "-m", "compat_plugin"),
) -> subprocess.CompletedProcess[str]:
    """Run the command with ``path`` in front of ``PYTHONPATH``."""
    return subprocess.run(
        [*program, *args], env=_environment(path, env), capture_output=True, text=True,
        timeout=120,
    )


def _environment(path: Sequence[Path], env: dict[str, str] | None) -> dict[str, str]:
    environment = {**os.environ, **(env or {})}
    pythonpath = [*map(str, path), *filter(None, [os.environ.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return environment


def on_a_terminal(*args: str, path: Sequence[Path] = (), columns: int = 80) -> str:
    """What the command prints (both streams) on a terminal ``columns`` wide: a pseudo-terminal,
    its line ends as the command wrote them."""
    import pty

    leader, follower = pty.openpty()
    environment = _environment(path, {"COLUMNS": str(columns), "PYTHONIOENCODING": "utf-8"})
    child = subprocess.Popen([sys.executable, "-m", "compat_plugin", *args], stdin=follower,
                             stdout=follower, stderr=follower, env=environment)
    os.close(follower)
    chunks = []
    try:
        while True:
            chunks.append(os.read(leader, 1 << 16))
            if not chunks[-1]:
                break
    except OSError:  # Linux: the last end of the terminal was closed
        pass
    finally:
        os.close(leader)
        child.wait(timeout=120)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def ran(result: subprocess.CompletedProcess[str], status: int = 0) -> str:
    """The standard output of a command that must have exited with ``status``."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
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


def usage_error(result: subprocess.CompletedProcess[str], command: str = "COMMAND") -> str:
    """The message of a usage error: exit 2, nothing on stdout; on stderr the usage line, the
    error, and where to look for help."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    usage, error, hint = result.stderr.splitlines()
    assert usage.startswith(f"usage: {PROG}")
    assert hint == f"try '{PROG} {command} --help'"
    assert error.startswith(f"{PROG}: error: ")
    return error[len(f"{PROG}: error: ") :]


def rel(path: Path, entry: Path) -> str:
    """``path`` as a table shows it: relative to the ``sys.path`` entry holding it."""
    return str(path.relative_to(entry))


# -- list --------------------------------------------------------------------------------------


def test_list_shows_every_plugin_with_its_source_and_exits_1_on_errors(world: World) -> None:
    result = cli("list", PACKAGE, path=world.path)
    header, rows = table(ran(result, 1))
    assert header == ["SOURCE", "PLUGIN", "PROVIDES", "DESCRIPTION"]
    plugins = rel(world.plugins, world.site)
    assert plugins == "hostapp/plugins"
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
        "error: hostapp.plugins.deep",
        "error: hostapp.plugins.needy",
        "error: acme_classy.sheets:Sheet",
        "error: acme_ghost.nothere",
        "error: acme_notplugin.objects:plain",
        "error: acme-oldhost",
    ]
    assert errors[0] == (
        f"error: hostapp.plugins.broken from directory {world.dropins}: RuntimeError: no clay "
        f"today (raised at {world.dropins / 'broken.py'}:{BROKEN_LINE}: "
        'raise RuntimeError("no clay today"))'
    )
    assert "IncompatiblePlugin: requires hostapp<2 but hostapp 2.0 is installed" in errors[-1]
    assert "named by" not in errors[-1] and "None" not in errors[-1]


def test_load_errors_show_the_plugin_s_own_line(world: World) -> None:
    errors = {line.split(" from ")[0][len("error: "):]: line
              for line in cli("list", PACKAGE, path=world.path).stderr.splitlines()}
    # A failing call into a library: the plugin module's own last line, not json's.
    assert errors["hostapp.plugins.deep"].endswith(
        f"(raised at {world.dropins / 'deep.py'}:7: return json.loads(\"{{not json\"))")
    # A missing dependency: the line of the plugin module that imports it.
    assert errors["hostapp.plugins.needy"].endswith(
        f"(raised at {world.dropins / 'needy.py'}:3: import no_such_dependency_of_needy)")
    # A missing entry-point module: no plugin code ran; the entry point that named it.
    assert errors["acme_ghost.nothere"].endswith(
        "ModuleNotFoundError: No module named 'acme_ghost.nothere' (named by the entry point "
        "'ghost' of acme-ghost 1.0)")
    assert all("<frozen" not in line and "compat_plugin/" not in line
               for line in errors.values())


def test_a_class_exported_instead_of_an_instance_is_named(world: World) -> None:
    errors = cli("list", PACKAGE, path=world.path).stderr
    assert ("NotAPlugin: acme_classy.sheets:Sheet: class Sheet implements IPlugin; export an "
            "instance of it") in errors
    (line,) = ran(cli("explain", PACKAGE, "classy", path=world.path), 1).splitlines()
    assert line == (
        f"hostapp.plugins.classy: not returned: imported from directory "
        f"{rel(world.dropins, world.extra)}, but class Marble implements IPlugin; "
        "export an instance"
    )


def test_list_interface_accepts_a_dotted_or_an_unambiguous_short_name(world: World) -> None:
    dotted = ran(cli("list", PACKAGE, "--interface", "hostapp.ifaces.IOther", path=world.path), 1)
    assert [row[1] for row in table(dotted)[1]] == ["hostapp.plugins.slate:chalk"]
    short = ran(cli("list", PACKAGE, "--interface", "IOther", path=world.path), 1)
    assert short == dotted
    _, rows = table(ran(cli("list", PACKAGE, "--interface", "IMaterial", path=world.path), 1))
    assert [row[1] for row in rows] == [
        "hostapp.plugins.builtin:granite", "hostapp.plugins.slate:slate",
        "acme_materials.metals:iron", "acme_materials.metals:copper",
        "acme_materials.woods:oak", "acme_secret.hidden:unobtainium",
    ]
    # An interface that exists but that no plugin provides: an empty table, not an error.
    stdout = ran(cli("list", PACKAGE, "--interface", "zope.interface.interfaces.IObjectEvent",
                     path=world.path), 1)
    assert stdout.splitlines() == ["SOURCE  PLUGIN  PROVIDES  DESCRIPTION"]
    # A short name nothing provides: the message names what the plugins do provide.
    message = usage_error(cli("list", PACKAGE, "--interface", "IGadget", path=world.path),
                          "list")
    assert message == "unknown interface 'IGadget' (the plugins provide IMaterial, IOther)"


def test_list_interface_short_name_that_two_interfaces_share(tree: PluginTree) -> None:
    tree.write("more.py", "from zope.interface import Interface\n\n"
                          "class ITestPlugin(Interface):\n    pass\n")
    for name, module in (("one", "ifaces"), ("two", "more")):
        tree.plugin(name, f"""
            from zope.interface import implementer
            from compat_plugin import IPlugin
            from {{pkg}}.{module} import ITestPlugin
            @implementer(IPlugin, ITestPlugin)
            class P:
                pass
            plugin = P()
        """)
    message = usage_error(cli("list", tree.plugins_name, "--interface", "ITestPlugin",
                              path=[tree.root]), "list")
    assert message == (f"interface 'ITestPlugin' is ambiguous: {tree.name}.ifaces.ITestPlugin, "
                       f"{tree.name}.more.ITestPlugin")


@pytest.mark.parametrize("json_output", [False, True], ids=["table", "json"])
def test_text_the_terminal_cannot_show_is_escaped(tree: PluginTree, json_output: bool) -> None:
    """A description the output's encoding lacks (a Latin-1 terminal), or that no encoding
    has (a lone surrogate, which only a docstring set at run time can hold), is printed
    escaped."""
    for name, description in (("arrow", "Turns \u2192 left."), ("odd", "Odd \\ud800 one.")):
        tree.plugin(name, f'''
            from zope.interface import implementer
            from compat_plugin import IPlugin
            from {{pkg}}.ifaces import ITestPlugin
            @implementer(IPlugin, ITestPlugin)
            class P:
                pass
            P.__doc__ = "{description}"
            plugin = P()
        ''')
    options = ["--json"] if json_output else ["--wide"]
    for encoding in ("latin-1", "utf-8"):
        printed = ran(cli("list", tree.plugins_name, *options, path=[tree.root],
                          env={"PYTHONIOENCODING": encoding}))
        assert "Odd \\ud800 one." in printed
        assert ("Turns \\u2192 left." if encoding == "latin-1" else "Turns \u2192 left.") in (
            printed)


def test_what_a_terminal_would_act_on_is_shown_as_escapes(tree: PluginTree) -> None:
    """A docstring clearing the screen, an exception message reversing the line: tables and
    error lines show them as escapes (JSON escapes control characters itself)."""
    tree.plugin("loud", '''
        from zope.interface import implementer
        from compat_plugin import IPlugin
        @implementer(IPlugin)
        class P:
            "Clears \\x1b[2J the screen."
        plugin = P()
    ''')
    tree.plugin("broken", 'raise RuntimeError("reversed \\u202e \\x1b[7m text")\n')
    # A distribution whose version (as its metadata spells it) holds one too.
    info = tree.root / "evil-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\x1b[7m\n")
    (info / "entry_points.txt").write_text(f"[{tree.plugins_name}]\ne = nosuchmod_evil\n")
    done = cli("list", tree.plugins_name, "--wide", path=[tree.root])
    assert done.returncode == 1
    assert "Clears \\x1b[2J the screen." in done.stdout
    assert "reversed \\u202e \\x1b[7m text" in done.stderr
    for command, name in ((["list"], ""), (["explain"], "broken"), (["explain"], "e"),
                          (["doctor"], ""), (["cache", "regenerate"], "")):
        printed = cli(*command, tree.plugins_name, *filter(None, [name]), path=[tree.root])
        assert "\\x1b[7m" in printed.stdout + printed.stderr, command
        assert not {"\x1b", "\u202e"} & set(printed.stdout + printed.stderr), command
    # JSON is for programs: the text as raised, escaped by JSON's own rules.
    explained = json.loads(cli("explain", tree.plugins_name, "broken", "--json",
                               path=[tree.root]).stdout)
    assert "reversed \u202e \x1b[7m text" in explained["verdicts"][0]["reason"]


def test_an_output_that_escapes_in_its_own_way_is_left_so(tree: PluginTree) -> None:
    """As the C locale's ``surrogateescape``: what a file name's undecodable byte became is
    printed as that byte again."""
    tree.plugin("odd", '''
        from zope.interface import implementer
        from compat_plugin import IPlugin
        @implementer(IPlugin)
        class P:
            pass
        P.__doc__ = "Named caf\\udcff."
        plugin = P()
    ''')
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8:surrogateescape",
                   "PYTHONPATH": os.pathsep.join([str(tree.root), *sys.path])}
    done = subprocess.run([sys.executable, "-m", "compat_plugin", "list", tree.plugins_name],
                          env=environment, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert b"Named caf\xff." in done.stdout


def test_a_table_aligns_wide_characters_by_the_columns_they_take(tree: PluginTree) -> None:
    """A plugin named in CJK (Python identifiers may be) takes two columns per character: the
    columns after it still line up in a terminal."""
    tree.plugin("stones", '''
        from zope.interface import implementer
        from compat_plugin import IPlugin
        @implementer(IPlugin)
        class P:
            pass
        石頭 = P()
        rock = P()
    ''')
    printed = ran(cli("list", tree.plugins_name, "--wide", path=[tree.root],
                      env={"PYTHONIOENCODING": "utf-8"})).splitlines()

    def provides_at(name: str) -> int:
        line = next(line for line in printed if f"stones:{name} " in line)
        before = line[:line.index("IPlugin")]
        return sum(2 if "\u3040" <= character <= "\u9fff" else 1 for character in before)

    assert provides_at("石頭") == provides_at("rock") == printed[0].index("PROVIDES")


def test_on_a_terminal_no_line_is_wider_than_it(tree: PluginTree) -> None:
    """On a terminal 120 columns wide, what the commands print stays within 120 columns -- the
    tables of ``list``, the doctor's indented ones, the progress line of ``cache regenerate``
    -- with a plugin module named in CJK, each character of it two columns."""
    name = "石" * 30
    tree.plugin(name, plugin_source("stone " * 20))

    def columns(line: str) -> int:
        return sum(2 if character == "石" else 1 for character in line)

    for command, shows in ((["list"], name[:10]), (["doctor"], name[:10]),
                           (["cache", "regenerate"], "1 module scanned, now")):
        printed = on_a_terminal(*command, tree.plugins_name, path=[tree.root], columns=120)
        assert shows in printed, (command, printed)
        # The progress line is redrawn after a carriage return, the line cleared.
        pieces = [piece.replace("\x1b[K", "") for line in printed.split("\n")
                  for piece in line.split("\r")]
        assert [piece for piece in pieces if columns(piece) > 120] == [], command


def test_list_interface_iplugin_names_both_markers_as_one(world: World) -> None:
    """Short, ``IPlugin`` names either marker; both are one concept, returning every plugin."""
    everything = ran(cli("list", PACKAGE, path=world.path), 1)
    for name in ("IPlugin", "compat_plugin.IPlugin", "twisted.plugin.IPlugin"):
        assert ran(cli("list", PACKAGE, "--interface", name, path=world.path), 1) == everything


def test_list_json_gives_plugins_errors_and_what_was_left_out(world: World) -> None:
    document = json.loads(ran(cli("list", PACKAGE, "--json", path=world.path), 1))
    assert set(document) == {"package", "interface", "plugins", "errors", "skipped"}
    assert (document["package"], document["interface"]) == (PACKAGE, None)
    plugins: list[dict[str, Any]] = document["plugins"]
    keys = {"module", "attribute", "qualified_name", "description", "provided", "interfaces",
            "origin"}
    assert all(set(plugin) == keys for plugin in plugins)
    assert [p["qualified_name"] for p in plugins] == [
        "hostapp.plugins.builtin:granite", "hostapp.plugins.slate:slate",
        "hostapp.plugins.slate:chalk", "acme_materials.metals:iron",
        "acme_materials.metals:copper", "acme_materials.woods:oak",
        "acme_secret.hidden:unobtainium",
    ]
    for plugin in plugins:
        assert plugin["interfaces"][: len(plugin["provided"])] == plugin["provided"]
        assert "zope.interface.Interface" in plugin["interfaces"]
    slate, chalk = plugins[1], plugins[2]
    assert "Roofs have been made of it for centuries." in slate["description"]
    assert (slate["provided"], chalk["provided"]) == (list(IMATERIAL), list(IOTHER))
    # Full paths, always.
    assert slate["origin"] == {"kind": "directory", "path": str(world.plugins),
                               "distribution": None, "version": None, "entry_point": None}
    assert plugins[5]["origin"] == {
        "kind": "entry-point", "path": str(world.site / "acme_materials-1.0.dist-info"),
        "distribution": "acme-materials", "version": "1.0", "entry_point": "oak",
    }

    errors: list[dict[str, Any]] = document["errors"]
    keys = {"target", "origin", "kind", "exception", "message", "raised_at"}
    assert all(set(error) == keys for error in errors)
    broken = errors[0]
    assert broken == {
        "target": "hostapp.plugins.broken",
        "origin": {"kind": "directory", "path": str(world.dropins), "distribution": None,
                   "version": None, "entry_point": None},
        "kind": "import error", "exception": "RuntimeError", "message": "no clay today",
        "raised_at": f'{world.dropins / "broken.py"}:{BROKEN_LINE}: '
                     'raise RuntimeError("no clay today")',
    }
    by_target = {error["target"]: error for error in errors}
    assert by_target["acme-oldhost"]["kind"] == "incompatible with the host"
    assert by_target["acme_notplugin.objects:plain"]["kind"] == "not a plugin"
    assert by_target["acme_notplugin.objects:plain"]["raised_at"] is None

    skipped: list[dict[str, Any]] = document["skipped"]
    assert {tuple(sorted(s)) for s in skipped} == {("origin", "reason", "target")}
    reasons = {(s["target"], s["reason"].split(" ")[0]) for s in skipped}
    assert ("hostapp.plugins.builtin", "shadowed") in reasons
    assert ("acme-materials", "shadowed") in reasons
    assert ("hostapp.plugins.builtin", "duplicate") in reasons
    # A module left out for exporting its plugin class, not an instance.
    (classy,) = [s for s in skipped if s["target"] == "hostapp.plugins.classy"]
    assert classy["reason"] == "class Marble implements IPlugin; export an instance"
    assert classy["origin"]["path"] == str(world.dropins)

    filtered = json.loads(ran(cli("list", PACKAGE, "--json", "--interface", "IOther",
                                  path=world.path), 1))
    assert filtered["interface"] == "hostapp.ifaces.IOther"
    assert filtered["plugins"] == [chalk]
    assert filtered["errors"] == errors


def test_list_of_a_package_that_is_not_a_plugin_package_says_so(world: World) -> None:
    message = usage_error(cli("list", "hostapp", path=world.path), "list")
    assert message.startswith("hostapp is not a plugin package: none of its ")
    assert message.endswith("holds a plugin and no installed distribution declares entry "
                            "points in the group 'hostapp'; did you mean hostapp.plugins?")


def on_terminal(*args: str, path: Sequence[Path], columns: int) -> str:
    """What the command prints with its standard output on a terminal ``columns`` wide."""
    import pty

    primary, secondary = pty.openpty()
    environment = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": os.pathsep.join(
        [*map(str, path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([sys.executable, "-m", "compat_plugin", *args], stdout=secondary,
                               stderr=subprocess.DEVNULL, env=environment)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    process.wait(timeout=120)
    os.close(primary)
    return shown.decode().replace("\r\n", "\n")


def test_tables_fit_the_terminal_and_wide_shows_full_paths(world: World) -> None:
    for columns in (80, 100):
        for args in (("list", PACKAGE), ("cache", "info", PACKAGE)):
            shown = on_terminal(*args, path=world.path, columns=columns)
            assert shown and max(map(len, shown.splitlines())) <= columns, (args, shown)
    wide = on_terminal("list", PACKAGE, "--wide", path=world.path, columns=80)
    assert str(world.plugins) in wide
    assert max(map(len, wide.splitlines())) > 80
    # Piped, nothing is cut; paths are still short.
    piped = cli("list", PACKAGE, path=world.path).stdout
    assert "A rock that splits into sheets." in piped and str(world.plugins) not in piped


# A child that runs the command in-process and then notes every module it had imported; run
# with ``-m`` from the working directory, so that its sys.path is the command's own.
PROBE = """\
import json
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
    site = install_wheels(tmp_path / "site", *(wheels[name] for name in
                                                ("hostapp-2.0", "acme_dropin-1.0",
                                                 "acme_materials-1.0")))
    # Written before the first run: the working directory is on the path of both.
    write(_empty_cwd / "cli_probe.py", PROBE)
    noted = tmp_path / "modules.json"
    env = {"CLI_PROBE_MODULES": str(noted), "PYTHONDONTWRITEBYTECODE": "1"}

    def probe(*args: str) -> tuple[str, list[str]]:
        stdout = ran(cli(*args, path=[site], env=env, program=(sys.executable, "-m",
                                                                "cli_probe")))
        modules: list[str] = json.loads(noted.read_text())
        # Plugin modules of both sources, and the interfaces module they import.
        plugin_modules = [
            name for name in modules
            if name.startswith(f"{PACKAGE}.") or name.split(".")[0] == "acme_materials"
            or name == "hostapp.ifaces"
        ]
        assert PACKAGE in modules
        return stdout, plugin_modules

    cold = ran(cli("list", PACKAGE, path=[site], env=env))
    assert len(cold.splitlines()) == 7

    warm, imported = probe("list", PACKAGE)
    assert (warm, imported) == (cold, [])
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


def explain(world: World, name: str, env: dict[str, str] | None = None,
            status: int = 0) -> list[str]:
    return ran(cli("explain", PACKAGE, name, path=world.path, env=env), status).splitlines()


def test_explain_returned_plugins_and_where_from(world: World) -> None:
    plugins = rel(world.plugins, world.site)
    assert explain(world, "slate") == [
        f"hostapp.plugins.slate:slate: returned, from directory {plugins}; "
        "provides IPlugin, IMaterial",
        f"hostapp.plugins.slate:chalk: returned, from directory {plugins}; "
        "provides IPlugin, IOther",
    ]
    assert explain(world, "oak") == [
        "acme_materials.woods:oak: returned, from acme-materials 1.0 (entry point 'oak'); "
        "provides IPlugin, IMaterial",
    ]


def test_explain_module_shadowed_by_an_earlier_directory(world: World) -> None:
    lines = explain(world, "builtin")
    assert lines[0].startswith("hostapp.plugins.builtin:granite: returned, from directory "
                               "hostapp/plugins;")
    assert (
        f"hostapp.plugins.builtin: not returned: shadowed by directory {world.plugins} "
        f"(directory {rel(world.dropins, world.extra)})"
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
        f"(acme-materials 2.0 at acme_materials-2.0.dist-info)"
    )


def test_explain_disabled_says_which_pattern(world: World) -> None:
    env = {"COMPAT_PLUGIN_DISABLE": "nothing*, secret, slate"}
    assert explain(world, "acme-secret", env, status=1) == [
        "acme_secret.hidden: not returned: disabled by pattern 'secret' "
        "(acme-secret 1.0 (entry point 'secret'))",
    ]
    assert explain(world, "slate", env, status=1) == [
        "hostapp.plugins.slate: not returned: disabled by pattern 'slate' "
        "(directory hostapp/plugins)",
    ]
    # Asked by ``module:attr``: the module is not imported, and it is what was left out.
    assert explain(world, "hostapp.plugins.slate:chalk", env, status=1) == [
        "hostapp.plugins.slate: not returned: disabled by pattern 'slate' "
        "(directory hostapp/plugins)",
    ]


def test_explain_incompatible_with_the_host(world: World) -> None:
    verdict = [
        "acme-oldhost: not returned: incompatible with the host "
        "(acme-oldhost 1.0 at acme_oldhost-1.0.dist-info): "
        "IncompatiblePlugin: requires hostapp<2 but hostapp 2.0 is installed",
    ]
    assert explain(world, "acme-oldhost", status=1) == verdict
    # Asked by the name of its entry point, the same answer.
    assert explain(world, "oldhost", status=1) == verdict


def test_explain_a_plugin_that_fails_to_load_exits_1_with_its_line(world: World) -> None:
    dropins = rel(world.dropins, world.extra)
    assert explain(world, "broken", status=1) == [
        f"hostapp.plugins.broken: not returned: import error (directory {dropins}): "
        f"RuntimeError: no clay today (raised at {world.dropins / 'broken.py'}:{BROKEN_LINE}: "
        'raise RuntimeError("no clay today"))',
    ]
    (line,) = explain(world, "acme-ghost", status=1)
    assert line.startswith(
        "acme_ghost.nothere: not returned: import error (acme-ghost 1.0 (entry point 'ghost')): "
        "ModuleNotFoundError: No module named 'acme_ghost.nothere'"
    )
    assert "<frozen" not in line


def test_explain_objects_and_modules_without_iplugin(world: World) -> None:
    (line,) = explain(world, "thing", status=1)
    assert line.startswith(
        "acme_notplugin.objects:plain: not returned: not a plugin "
        "(acme-notplugin 1.0 (entry point 'thing')): NotAPlugin: "
    )
    assert explain(world, "notes", status=1) == [
        f"hostapp.plugins.notes: not returned: imported from directory "
        f"{rel(world.dropins, world.extra)}, but no module-level object in it provides IPlugin",
    ]


def test_explain_entry_point_duplicating_a_dropin(world: World) -> None:
    assert explain(world, "acme-dupe", status=1) == [
        f"hostapp.plugins.builtin: not returned: duplicate of the one from directory "
        f"{world.plugins} (acme-dupe 1.0 (entry point 'builtin'))",
        f"hostapp.plugins.builtin:granite: not returned: duplicate of the one from directory "
        f"{world.plugins} (acme-dupe 1.0 (entry point 'granite'))",
    ]


def test_explain_unknown_name_exits_1_with_one_line(world: World) -> None:
    result = cli("explain", PACKAGE, "marble", path=world.path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == ["marble: not a plugin candidate of hostapp.plugins"]


def test_explain_a_distribution_declaring_another_group_names_both(world: World) -> None:
    result = cli("explain", PACKAGE, "acme-typo", path=world.path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "acme-typo: not a plugin candidate of hostapp.plugins; the distribution acme-typo "
        "declares entry points in 'hostapp.plugin', but hostapp.plugins reads the group "
        "'hostapp.plugins'"
    ]


def test_explain_json(world: World) -> None:
    document = json.loads(ran(cli("explain", PACKAGE, "builtin", "--json", path=world.path)))
    assert (document["package"], document["name"], document["returned"]) == (
        PACKAGE, "builtin", True)
    statuses = [(v["target"], v["status"]) for v in document["verdicts"]]
    assert ("hostapp.plugins.builtin:granite", "returned") in statuses
    assert ("hostapp.plugins.builtin", "shadowed") in statuses
    assert all(set(v) >= {"target", "status", "origin", "reason"} for v in document["verdicts"])
    failed = json.loads(ran(cli("explain", PACKAGE, "broken", "--json", path=world.path), 1))
    (verdict,) = failed["verdicts"]
    assert (verdict["status"], verdict["exception"], failed["returned"]) == (
        "import error", "RuntimeError", False)
    assert verdict["raised_at"].startswith(str(world.dropins / "broken.py"))


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


def user_cache() -> Path:
    return Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"])


def indexes_of(group: str, *entries: Path) -> list[Path]:
    """The entry-point index files of ``group``: per user, and beside ``entries``."""
    pattern = f"*.{group}.{sys.implementation.cache_tag}.json"
    found = list((user_cache() / "entry-points").glob(pattern))
    for entry in entries:
        found += (entry / "__pycache__").glob(f"compat_plugin.entry-points.{group}.*.json")
    return sorted(found)


def test_cache_regenerate_rewrites_the_caches(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    tree.plugin("beta", ALPHA.replace("Alpha", "Beta").replace("alpha", "beta"))
    stdout = ran(cli("cache", "regenerate", tree.plugins_name, path=[tree.root]))
    assert stdout == f"{tree.plugins_name}: 2 modules, 2 plugins\n"
    (cache,) = tree.cache_files()
    assert tree.cache_document()["package"] == tree.plugins_name
    # The tree's sys.path entry holds no distribution: its listing says so, it needs no index.
    assert indexes_of(tree.plugins_name, tree.root) == []

    hour_ago = cache.stat().st_mtime_ns - 3600 * 10**9
    os.utime(cache, ns=(hour_ago, hour_ago))
    stdout = ran(cli("cache", "regenerate", tree.plugins_name, path=[tree.root]))
    assert stdout == f"{tree.plugins_name}: 2 modules, 2 plugins\n"
    assert tree.cache_files() == [cache]
    assert cache.stat().st_mtime_ns > hour_ago

    # With writing turned off it would only remove them: it refuses, and they stay.
    refused = cli("cache", "regenerate", tree.plugins_name, path=[tree.root],
                  env={"COMPAT_PLUGIN_NO_CACHE_WRITE": "1"})
    assert "COMPAT_PLUGIN_NO_CACHE_WRITE" in usage_error(refused, "cache regenerate")
    assert tree.cache_files() == [cache]


def test_cache_regenerate_lists_failures_and_exits_1(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    broken = tree.plugin("broken", DIVIDES_BY_ZERO)
    result = cli("cache", "regenerate", tree.plugins_name, path=[tree.root])
    assert ran(result, 1).splitlines() == [
        f"{tree.plugins_name}: 1 module, 1 plugin",
        f"  FAILED {tree.plugins_name}.broken (directory {tree.plugins_dir}): "
        f"ZeroDivisionError: division by zero (raised at {broken}:2: RATIO = 1 / 0)",
    ]
    # What did import is cached all the same.
    assert tree.cache_files()


def test_cache_regenerate_shows_progress_on_a_terminal_only(tree: PluginTree) -> None:
    for index in range(30):
        tree.plugin(f"mod{index:02d}", ALPHA.replace("alpha", f"alpha{index}"))
    piped = cli("cache", "regenerate", tree.plugins_name, path=[tree.root])
    assert ran(piped).splitlines() == [f"{tree.plugins_name}: 30 modules, 30 plugins"]
    assert piped.stderr == ""

    # The same command on a real terminal (its standard error a pseudo-terminal).
    import pty

    for path in tree.cache_files():
        path.unlink()
    primary, secondary = pty.openpty()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tree.root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen(
        [sys.executable, "-m", "compat_plugin", "cache", "regenerate", tree.plugins_name],
        stdout=subprocess.PIPE, stderr=secondary, env=environment, text=True)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    stdout, _ = process.communicate(timeout=120)
    os.close(primary)
    assert process.returncode == 0
    assert stdout.splitlines() == [f"{tree.plugins_name}: 30 modules, 30 plugins"]
    text = shown.decode()
    assert f"[1/1] {tree.plugins_name}: 30 modules scanned" in text
    assert text.endswith("\r\x1b[K")


def test_cache_clear_removes_one_package_s_caches(
    tree: PluginTree, wheels: dict[str, Path], tmp_path: Path
) -> None:
    tree.plugin("alpha", ALPHA)
    tree.write("more/__init__.py", PLUGINS_INIT)
    tree.write("more/gamma.py", GAMMA)
    more = f"{tree.name}.more"
    # The other package's directory cannot hold a cache: it goes to the per-user one.
    (tree.top / "more" / "__pycache__").write_text("not a directory")
    # A sys.path entry holding a distribution: it has an index of each group.
    site = install_wheels(tmp_path / "site", wheels["hostapp-2.0"])
    path = [tree.root, site]
    ran(cli("list", more, path=path))
    (fallback,) = user_cache().glob("*.json")
    for level in ("", "1", "2"):  # each optimization level keeps caches of its own
        ran(cli("list", tree.plugins_name, path=path, env={"PYTHONOPTIMIZE": level}))
    tag = sys.implementation.cache_tag
    assert sorted(p.name for p in tree.cache_files()) == [
        f"compat_plugin.{tag}{level}.json" for level in ("", ".opt-1", ".opt-2")]
    assert len(indexes_of(tree.plugins_name, site)) == 3 and indexes_of(more, site)

    # Its directory's caches, and its group's indexes (the environment's own site-packages has
    # one too), of every level.
    removed = ran(cli("cache", "clear", tree.plugins_name, path=path))
    assert re.fullmatch(r"removed \d+ cache files\n", removed)
    assert tree.cache_files() == []
    assert indexes_of(tree.plugins_name, site) == []
    assert indexes_of(more, site) and fallback.exists()

    ran(cli("cache", "clear", more, path=path))
    assert indexes_of(more, site) == []
    assert not fallback.exists()


# A writer killed between writing its temporary file and renaming it over the cache: here
# no temporary is renamed, then the process is killed, leaving every one it wrote.
_KILLED_WRITER = """
import os, signal, sys
os.replace = lambda source, target: None
import compat_plugin, {package} as plugins
list(compat_plugin.getPlugins(compat_plugin.IPlugin, plugins))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("command", ["clear", "regenerate"])
def test_cache_commands_remove_what_a_killed_writer_left(
    tree: PluginTree, wheels: dict[str, Path], tmp_path: Path, command: str
) -> None:
    tree.plugin("alpha", ALPHA)
    site = install_wheels(tmp_path / "site", wheels["hostapp-2.0"])
    path = [tree.root, site]
    killed = run_python(_KILLED_WRITER.format(package=tree.plugins_name), path=path,
                        check=False)
    assert killed.returncode == -9, killed.stderr
    left = sorted([*tree.plugins_dir.glob("__pycache__/.compat_plugin.*"),
                   *site.glob("__pycache__/.compat_plugin.*")])
    assert {path.parent for path in left} == {tree.plugins_dir / "__pycache__",
                                             site / "__pycache__"}
    assert tree.cache_files() == [] and indexes_of(tree.plugins_name, site) == []
    # A file of another name beside them is not compat_plugin's.
    other = tree.plugins_dir / "__pycache__" / ".compat_plugin.notes"
    other.write_text("mine")

    ran(cli("cache", command, tree.plugins_name, path=path))
    assert not any(path.exists() for path in left)
    assert other.read_text() == "mine"
    written = command == "regenerate"
    assert bool(tree.cache_files()) is written
    assert bool(indexes_of(tree.plugins_name, site)) is written


def test_cache_clear_without_package_empties_the_user_cache(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    tree.write("more/__init__.py", PLUGINS_INIT)
    tree.write("more/gamma.py", GAMMA)
    (tree.top / "more" / "__pycache__").write_text("not a directory")
    ran(cli("list", tree.plugins_name, path=[tree.root]))
    ran(cli("list", f"{tree.name}.more", path=[tree.root]))
    stored = sorted(user_cache().rglob("*.json"))
    assert stored
    # What a writer killed halfway left; and files of others, in a directory that
    # COMPAT_PLUGIN_CACHE_DIR may make a shared one.
    left = stored[0].with_name(f".{stored[0].name}.4242.0123abcd")
    left.write_text("{")
    foreign = [user_cache() / "settings.json", user_cache() / "other" / "state.json",
               user_cache() / "entry-points" / "notes.json",
               user_cache() / "0123456789abcdef.json"]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    assert ran(cli("cache", "clear")) == f"removed {len(stored) + 1} cache files\n"
    assert not left.exists() and not any(path.exists() for path in stored)
    assert all(path.read_text() == "{}" for path in foreign)
    # Caches beside the plugin modules are not per-user ones.
    assert len(tree.cache_files()) == 1


def test_cache_info_lists_files_sizes_and_currency(
    tree: PluginTree, wheels: dict[str, Path], tmp_path: Path
) -> None:
    tree.plugin("alpha", ALPHA)
    # A sys.path entry holding a distribution has an index; the tree's own entry needs none.
    site = install_wheels(tmp_path / "site", wheels["hostapp-2.0"])
    path = [tree.root, site]

    def info() -> list[tuple[str, ...]]:
        header, rows = table(ran(cli("cache", "info", tree.plugins_name, "--wide",
                                     path=path)))
        assert header == ["PACKAGE", "FOR", "CACHE", "BYTES", "CURRENT", "FILE"]
        return rows

    def directory_row(rows: list[tuple[str, ...]]) -> tuple[str, ...]:
        (row,) = [row for row in rows if row[1] == f"directory {tree.plugins_dir}"]
        return row

    # Nothing written yet: where each cache would be.
    rows = info()
    assert directory_row(rows)[2:] == ("beside", "-", "not written",
                                       str(tree.plugins_dir / "__pycache__" /
                                           f"compat_plugin.{sys.implementation.cache_tag}.json"))
    entries = {row[1]: row for row in rows if row[1].startswith("entry points ")}
    assert f"entry points {tree.root}" not in entries
    assert entries[f"entry points {site}"][4] == "not written"

    ran(cli("list", tree.plugins_name, path=path))
    # Each was written where it was said to go.
    written = {row[1]: row for row in info()}
    assert written[f"entry points {site}"][5] == entries[f"entry points {site}"][5]
    (cache,) = tree.cache_files()
    assert directory_row(info())[3:] == (str(cache.stat().st_size), "yes", str(cache))
    tree.plugin("gamma", GAMMA)
    assert directory_row(info())[4] == "no: not current for gamma"
    ran(cli("list", tree.plugins_name, path=path))
    assert {row[4] for row in info() if row[1] in (f"directory {tree.plugins_dir}",
                                                   f"entry points {site}")} == {"yes"}

    document = json.loads(ran(cli("cache", "info", tree.plugins_name, "--json", path=path)))
    (state,) = [c for c in document["caches"] if c["kind"] == "directory"]
    assert state == {"package": tree.plugins_name, "kind": "directory",
                     "describes": str(tree.plugins_dir), "place": str(cache), "written": True,
                     "size": cache.stat().st_size, "current": True, "why": "",
                     "writable": True, "per_user": False, "stale": []}

    # A file that is of no use at all is not "not current for" every module.
    (index,) = [row[5] for row in info() if row[1] == f"entry points {site}"]
    for place in (cache, Path(index)):
        place.write_bytes(b"not a cache\n")
    damaged = {row[1]: row[4] for row in info()}
    assert [damaged[f"directory {tree.plugins_dir}"], damaged[f"entry points {site}"]] == [
        "no: unusable: unreadable, damaged or written for another place"] * 2


def test_cache_info_after_clear_shows_where_each_cache_would_be(tree: PluginTree) -> None:
    tree.plugin("alpha", ALPHA)
    ran(cli("list", tree.plugins_name, path=[tree.root]))
    ran(cli("cache", "clear", tree.plugins_name, path=[tree.root]))
    document = json.loads(ran(cli("cache", "info", tree.plugins_name, "--json",
                                  path=[tree.root])))
    assert document["caches"]
    assert all(not c["written"] and c["why"] == "not written" and c["place"]
               for c in document["caches"])


def test_cache_info_does_not_wait_for_shadowed_modules(world: World) -> None:
    cli("list", PACKAGE, path=world.path)
    document = json.loads(ran(cli("cache", "info", PACKAGE, "--json", path=world.path)))
    (dropins,) = [c for c in document["caches"] if c["describes"] == str(world.dropins)]
    assert "builtin" not in dropins["why"]


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
    _, rows = table(ran(cli("list", "zipped.plugins", path=[archive])))
    assert rows == [("zipped/plugins", "zipped.plugins.one:one", "IPlugin",
                     "The one in the archive.")]
    document = json.loads(ran(cli("cache", "info", "zipped.plugins", "--json", path=[archive])))
    by_kind = {(c["kind"], c["describes"]): c for c in document["caches"]}
    # Nothing can be written into the archive: its caches are per-user ones.
    directory = by_kind["directory", f"{archive}/zipped/plugins"]
    index = by_kind["entry points", str(archive)]
    assert directory["per_user"] and directory["current"]
    assert index["per_user"] and index["current"]


def test_package_in_a_zip_archive_is_not_shadowed_by_itself(archive: Path) -> None:
    assert ran(cli("explain", "zipped.plugins", "one", path=[archive])).splitlines() == [
        "zipped.plugins.one:one: returned, from directory zipped/plugins; provides IPlugin",
    ]


def test_cache_clear_of_a_package_in_a_zip_archive_is_quiet(archive: Path) -> None:
    ran(cli("list", "zipped.plugins", path=[archive]))
    result = cli("cache", "clear", "zipped.plugins", path=[archive])
    assert (result.returncode, result.stderr) == (0, "")
    assert re.fullmatch(r"removed \d+ cache files\n", result.stdout)


# -- migrate -----------------------------------------------------------------------------------


def migrate(world: World, *options: str, status: int = 0) -> list[str]:
    return ran(cli("migrate", PACKAGE, *options, path=world.path), status).splitlines()


def test_migrate_prints_entry_points_and_exits_1_for_modules_that_fail(world: World) -> None:
    result = cli("migrate", PACKAGE, path=world.path)
    header, *entries = ran(result, 1).splitlines()
    assert header == '[project.entry-points."hostapp.plugins"]'
    names = [entry.split(" = ")[0] for entry in entries]
    # The hidden copy of builtin is not a second module; those that fail are kept.
    assert names[:2] == ["builtin", "slate"]
    assert {"broken", "needy"} <= set(names)
    assert len(names) == len(set(names))
    assert all(entry == f'{name} = "hostapp.plugins.{name}"'
               for name, entry in zip(names, entries))
    assert "warning: hostapp.plugins.broken does not import here" in result.stderr


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
    assert (result.returncode, result.stdout) == (1, "")
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
    printed = ran(cli("migrate", PACKAGE, "--dist", "acme-dropin", "--to", "newpkg",
                      path=world.path))
    project = tmp_path / "acme_dropin_2"
    write(project / "pyproject.toml", MIGRATED_PROJECT + printed)
    write(project / "newpkg" / "__init__.py", '"""Plugins of acme-dropin."""\n')
    shutil.copy(world.plugins / "slate.py", project / "newpkg" / "slate.py")
    site = install_wheels(tmp_path / "site", wheels["hostapp-2.0"], project)
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
    _, rows = table(ran(cli("list", PACKAGE, path=[site])))
    assert rows[1:] == [
        ("acme-dropin 2.0 (slate)", "newpkg.slate:slate", "IPlugin, IMaterial",
         "A rock that splits into sheets."),
        ("acme-dropin 2.0 (slate)", "newpkg.slate:chalk", "IPlugin, IOther",
         "Something to write on a board with."),
    ]


# -- usage and bad input -----------------------------------------------------------------------


BAD_INPUT: dict[str, tuple[list[str], str, str]] = {
    "unknown package": (["list", "no_such_package"], "list",
                        "no package named 'no_such_package'"),
    "unknown subpackage": (["explain", "hostapp.nothing", "x"], "explain",
                           "no package named 'hostapp.nothing'"),
    "unknown package to cache": (["cache", "info", "no_such_package"], "cache info",
                                 "no package named 'no_such_package'"),
    "module, not a package": (["list", "hostapp.ifaces"], "list",
                              "hostapp.ifaces is a module, not a plugin package"),
    "module, not a package, to migrate": (["migrate", "hostapp.ifaces"], "migrate",
                                          "hostapp.ifaces is a module, not a plugin package"),
    "unknown interface": (["list", PACKAGE, "--interface", "hostapp.ifaces.INothing"], "list",
                          "unknown interface 'hostapp.ifaces.INothing'"),
    "interface of an unknown module": (["list", PACKAGE, "--interface", "no_such.IThing"],
                                       "list", "unknown interface 'no_such.IThing'"),
    "not an interface": (["list", PACKAGE, "--interface", "json.dumps"], "list",
                         "unknown interface 'json.dumps'"),
    "bad option": (["list", PACKAGE, "--colour"], "list", "unrecognized arguments: --colour"),
    "option without its value": (["list", PACKAGE, "--interface"], "list", "--interface"),
    "missing package": (["list"], "list", "the following arguments are required: PACKAGE"),
    "missing name": (["explain", PACKAGE], "explain",
                     "the following arguments are required: NAME"),
    "missing packages": (["cache", "info"], "cache info",
                         "the following arguments are required: PACKAGE"),
    "missing command": ([], "COMMAND", "a command is required"),
    "missing cache action": (["cache"], "cache", "an action is required"),
    "unknown command": (["frobnicate"], "COMMAND", "invalid choice: 'frobnicate'"),
    "unknown cache action": (["cache", "frobnicate"], "cache", "invalid choice: 'frobnicate'"),
    "unknown format": (["migrate", PACKAGE, "--format", "toml"], "migrate",
                       "invalid choice: 'toml'"),
    "unknown distribution": (["migrate", PACKAGE, "--dist", "no-such-dist"], "migrate",
                             "no distribution named 'no-such-dist'"),
    "package raising on import": (
        ["list", "boom.plugins"], "list",
        "cannot import boom.plugins: RuntimeError: the plugin package is broken",
    ),
    "package missing a dependency": (
        ["list", "boom.needy"], "list",
        "cannot import boom.needy: No module named 'no_such_dependency_of_needy'",
    ),
    "package raising a message of two lines": (
        ["list", "boom.wordy"], "list", "cannot import boom.wordy: RuntimeError: the first line"
    ),
    "package calling sys.exit": (["list", "boom.leaving"], "list", "cannot import boom.leaving"),
    "--to not a package name": (
        ["migrate", PACKAGE, "--dist", "acme-dropin", "--to", "new pkg"], "migrate", "new pkg"
    ),
    "not a package name": (["list", ""], "list", "'' is not a dotted package name"),
    "a relative package name": (["doctor", ".plugins"], "doctor",
                                "'.plugins' is not a dotted package name"),
    "bad option before the command": (
        ["--colour", "list", PACKAGE], "COMMAND", "unrecognized arguments: --colour"
    ),
    "bad option of an action": (
        ["cache", "info", PACKAGE, "--bogus", "x"], "cache info",
        "unrecognized arguments: --bogus x"
    ),
    "--to a keyword": (
        ["migrate", PACKAGE, "--dist", "acme-dropin", "--to", "new.class"], "migrate",
        "new.class"
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_prints_usage_the_error_and_where_to_look(world: World, case: str) -> None:
    args, command, message = BAD_INPUT[case]
    assert message in usage_error(cli(*args, path=world.path), command)


def test_every_command_s_help_has_an_example() -> None:
    for command in ("list", "explain", "cache", "cache regenerate", "cache clear",
                    "cache info", "migrate", "doctor"):
        stdout = ran(cli(*command.split(), "--help"))
        assert f"example: {PROG} {command.split()[0]}" in stdout, command


def test_version_comes_from_the_installed_metadata() -> None:
    import compat_plugin

    version = compat_plugin.__version__
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{version}"' in pyproject
    for flag in ("--version", "-V"):
        assert ran(cli(flag)) == f"{PROG} {version}\n"


def test_console_script_is_the_same_command(world: World) -> None:
    script = shutil.which(PROG, path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip(f"no {PROG} script beside {sys.executable}")
    via_script = cli("list", PACKAGE, path=world.path, program=[script])
    assert ran(via_script, 1) == ran(cli("list", PACKAGE, path=world.path), 1)
    assert "no package named" in usage_error(
        cli("list", "no_such_package", path=world.path, program=[script]), "list")
    assert ran(cli("--help", program=[script])).startswith(f"usage: {PROG} ")


def test_main_in_process_leaves_the_library_logger_as_it_was(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from compat_plugin import cli as command

    library_logger = logging.getLogger("compat_plugin")
    handlers, propagate = list(library_logger.handlers), library_logger.propagate
    assert command.main(["list", "no.such.package"]) == 2
    assert "compat-plugin: error:" in capsys.readouterr().err
    assert (library_logger.handlers, library_logger.propagate) == (handlers, propagate)
