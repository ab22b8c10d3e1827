"""``compat-plugin doctor``, run for real against installed distributions and plugin packages
on disk: every fate provoked, the caches as found, costs measured, names that clash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import PACKAGE, PluginTree, World, open_to_everyone, run_python

NOBODY = 65534

SLOW = '''
"""A plugin module that takes its time to import."""
import time
time.sleep(0.3)

from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin2

@implementer(IPlugin, ITestPlugin2)
class Slow:
    pass

slow = Slow()
'''

TAP = '''
from zope.interface import implementer
from compat_plugin import IPlugin
from {pkg}.ifaces import ITestPlugin

@implementer(IPlugin, ITestPlugin)
class Maker:
    tapname = "web"
    description = "{name}"

maker = Maker()
'''


# The doctor, in a fresh interpreter; as another user, the child starts as root, loads what
# it needs from where that user may not read (the interpreter's own directory), then drops
# its privileges before looking at anything.
DOCTOR = """
import os, sys
import compat_plugin._commands, compat_plugin._doctor, compat_plugin._metadata
from compat_plugin.cli import main
# What the command imports only when it first needs it, imported while this interpreter's standard
# library can still be read (it may be where the user cannot, as under /root).
import fnmatch, locale, logging, shutil, subprocess, tempfile, textwrap
if {user} is not None:
    os.setgroups([])
    os.setgid({user})
    os.setuid({user})
sys.exit(main(sys.argv[1:]))
"""


def doctor(*args: str, path: list[Path], env: dict[str, str] | None = None,
           user: int | None = None) -> subprocess.CompletedProcess[str]:
    return run_python(DOCTOR.format(user=user), path=path, env=env, check=False,
                      args=["doctor", *args])


def report(*args: str, path: list[Path], env: dict[str, str] | None = None,
           user: int | None = None, status: int = 1) -> dict[str, Any]:
    result = doctor(*args, "--json", path=path, env=env, user=user)
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    document: dict[str, Any] = json.loads(result.stdout)
    (one,) = document["reports"]
    assert document["problems"] == len(one["problems"])
    found: dict[str, Any] = one
    return found


def fates(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["target"], c["fate"]): c for c in document["candidates"]}


def test_every_fate_of_the_world_s_candidates(world: World) -> None:
    env = {"COMPAT_PLUGIN_DISABLE": "secret"}
    document = report(PACKAGE, path=world.path, env=env)
    found = fates(document)
    assert ("hostapp.plugins.slate:slate", "returned") in found
    shadowed = found["hostapp.plugins.builtin", "shadowed"]
    assert shadowed["detail"] == f"shadowed by directory {world.plugins}"
    assert found["acme-materials", "shadowed"]["detail"].startswith("shadowed by ")
    assert ("hostapp.plugins.builtin", "duplicate") in found
    assert found["acme_secret.hidden", "disabled"]["detail"] == "disabled by pattern 'secret'"
    incompatible = found["acme-oldhost", "incompatible"]
    assert "requires hostapp<2 but hostapp 2.0 is installed" in incompatible["detail"]
    broken = found["hostapp.plugins.broken", "failed"]
    assert broken["detail"] == "RuntimeError: no clay today"
    assert broken["raised_at"].startswith(f"{world.dropins / 'broken.py'}:")
    assert found["acme_ghost.nothere", "failed"]["raised_at"] is None
    classy = found["acme_classy.sheets:Sheet", "not a plugin"]
    assert "class Sheet implements IPlugin; export an instance" in classy["detail"]
    module = found["hostapp.plugins.classy", "not a plugin"]
    assert module["detail"] == "class Marble implements IPlugin; export an instance"
    # What fails is a problem for CI; what is left out on purpose is not.
    assert "failed: hostapp.plugins.broken" in document["problems"]
    assert "incompatible: acme-oldhost" in document["problems"]
    assert not [p for p in document["problems"] if p.startswith(("shadowed", "disabled"))]


def test_text_report_has_a_section_per_concern_and_a_summary(world: World) -> None:
    result = doctor(PACKAGE, path=world.path)
    assert result.returncode == 1
    text = result.stdout
    for heading in ("candidates:", "caches:", "import cost of each module",
                    "getPlugins of each interface", "name clashes:"):
        assert f"\n{heading}" in text, heading
    summary = text.strip().splitlines()[-1]
    assert summary.startswith("summary: ")
    assert "problems" in summary and "returned" in summary and "failed" in summary


@pytest.fixture
def taps(tree: PluginTree) -> PluginTree:
    tree.plugin("first", TAP.replace("{name}", "first"))
    tree.plugin("second", TAP.replace("{name}", "second"))
    tree.plugin("slow", SLOW)
    return tree


def test_two_plugins_claiming_one_tapname_are_a_clash(taps: PluginTree) -> None:
    document = report(taps.plugins_name, path=[taps.root])
    assert document["clashes"] == [{"key": "tapname", "value": "web", "plugins": [
        f"{taps.plugins_name}.first:maker", f"{taps.plugins_name}.second:maker"]}]
    assert document["problems"] == [
        f"tapname 'web' claimed by {taps.plugins_name}.first:maker, "
        f"{taps.plugins_name}.second:maker"]
    # Another attribute, asked for with --key: their descriptions differ, no clash there.
    assert report(taps.plugins_name, "--key", "description",
                  path=[taps.root])["clashes"][0]["key"] == "tapname"


def test_timings_are_plausible_against_the_module_s_own_import(taps: PluginTree) -> None:
    document = report(taps.plugins_name, path=[taps.root])
    costs = {c["module"]: c["seconds"] for c in document["costs"]}
    slow = f"{taps.plugins_name}.slow"
    # Slowest first; the slow module sleeps 0.3 s when imported.
    assert document["costs"][0]["module"] == slow
    assert 0.3 <= costs[slow] < 10
    assert all(0 < seconds < 0.3 for module, seconds in costs.items() if module != slow)
    calls = {c["interface"]: c for c in document["calls"]}
    slow_call = calls[f"{taps.name}.ifaces.ITestPlugin2"]
    fast_call = calls[f"{taps.name}.ifaces.ITestPlugin"]
    assert slow_call["imports"] == [slow]
    assert sorted(fast_call["imports"]) == [f"{taps.plugins_name}.first",
                                            f"{taps.plugins_name}.second"]
    # A warm call imports the slow module only when asked for what it provides; a cold call
    # imports every module whatever is asked.
    assert slow_call["warm"] >= 0.3 > fast_call["warm"]
    assert slow_call["cold"] >= 0.3 and fast_call["cold"] >= 0.3


def test_healthy_package_exits_0(tree: PluginTree) -> None:
    tree.plugin("one", TAP.replace("{name}", "one"))
    document = report(tree.plugins_name, path=[tree.root], status=0)
    assert document["problems"] == []
    result = doctor(tree.plugins_name, path=[tree.root])
    assert result.returncode == 0
    assert result.stdout.strip().endswith(": healthy")


def test_measurements_use_the_caches_of_the_doctor_s_own_interpreter_options(
    tree: PluginTree, tmp_path: Path
) -> None:
    """Run as ``python -O -X pycache_prefix=...``, the doctor's timing children run the same
    way: they use (and write) the ``-O`` caches under the prefix, not others in the tree."""
    tree.plugin("one", TAP.replace("{name}", "one"))
    prefix = tmp_path / "prefix"
    # The doctor itself, started with those options by a child that has PYTHONPATH set up.
    options = ["-O", "-X", f"pycache_prefix={prefix}", "-c", DOCTOR.format(user=None)]
    relay = ("import subprocess, sys\n"
             f"command = [sys.executable, *{options!r}, *sys.argv[1:]]\n"
             "sys.exit(subprocess.run(command).returncode)\n")
    environment = {"PYTHONOPTIMIZE": "", "PYTHONPYCACHEPREFIX": ""}
    result = run_python(relay, path=[tree.root], env=environment, check=False,
                        args=["doctor", tree.plugins_name, "--json"])
    assert result.returncode == 0, (result.stdout, result.stderr)
    (one,) = json.loads(result.stdout)["reports"]
    assert [call["warm"] is not None for call in one["calls"]] == [True]
    assert not (tree.plugins_dir / "__pycache__").exists()
    mirror = prefix / tree.plugins_dir.resolve().relative_to(tree.plugins_dir.resolve().anchor)
    assert sorted(p.name for p in mirror.glob("compat_plugin.*")) == [
        f"compat_plugin.{sys.implementation.cache_tag}.opt-1.json"]


def test_measurements_add_nothing_to_the_path_and_write_no_bytecode_where_the_doctor_does_not(
    tree: PluginTree, tmp_path: Path
) -> None:
    """Run as ``python -B -P`` from a directory holding another copy of the package, the
    doctor's timing children neither write bytecode nor import that copy (before 3.11, which
    has no ``-P``: ``-B`` alone, and no copy); warnings made errors, reading their output
    raises none."""
    tree.plugin("one", TAP.replace("{name}", "one"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    flags = ["-B"]
    if sys.version_info >= (3, 11):
        flags.append("-P")
        (elsewhere / tree.name).mkdir()
        (elsewhere / tree.name / "__init__.py").write_text("raise ImportError('the other copy')\n")
    if sys.version_info >= (3, 10):
        flags += ["-X", "warn_default_encoding", "-W", "error::EncodingWarning"]
    options = [*flags, "-c", DOCTOR.format(user=None)]
    relay = ("import subprocess, sys\n"
             f"command = [sys.executable, *{options!r}, *sys.argv[1:]]\n"
             f"sys.exit(subprocess.run(command, cwd={str(elsewhere)!r}).returncode)\n")
    result = run_python(relay, path=[tree.root], env={"PYTHONDONTWRITEBYTECODE": ""},
                        check=False, args=["doctor", tree.plugins_name, "--json"])
    assert result.returncode == 0, (result.stdout, result.stderr)
    (one,) = json.loads(result.stdout)["reports"]
    assert [call["warm"] is not None for call in one["calls"]] == [True]
    assert all(cost["seconds"] is not None for cost in one["costs"]), one["costs"]
    assert sorted(tree.root.rglob("*.pyc")) == []


def test_measurements_run_no_site_module_where_the_doctor_runs_none(
    tree: PluginTree, tmp_path: Path
) -> None:
    """Run as ``python -S``, the doctor's timing children do not run the site module either: a
    ``sitecustomize`` on their path, which it would import, is never imported."""
    tree.plugin("one", TAP.replace("{name}", "one"))
    marks, custom = tmp_path / "marks", tmp_path / "custom"
    marks.mkdir()
    custom.mkdir()
    (custom / "sitecustomize.py").write_text(
        f"import os\nopen(os.path.join({str(marks)!r}, str(os.getpid())), 'w').close()\n")
    # The doctor gets the site directories (its dependencies) and the sitecustomize on its
    # path from this relay, which itself runs the site module without that sitecustomize.
    relay = ("import os, site, subprocess, sys\n"
             f"path = [os.environ['PYTHONPATH'], *site.getsitepackages(), {str(custom)!r}]\n"
             "env = {**os.environ, 'PYTHONPATH': os.pathsep.join(path)}\n"
             f"command = [sys.executable, '-S', '-c', {DOCTOR.format(user=None)!r}, "
             "*sys.argv[1:]]\n"
             "sys.exit(subprocess.run(command, env=env).returncode)\n")
    result = run_python(relay, path=[tree.root], check=False,
                        args=["doctor", tree.plugins_name, "--json"])
    assert result.returncode == 0, (result.stdout, result.stderr)
    (one,) = json.loads(result.stdout)["reports"]
    assert [call["warm"] is not None for call in one["calls"]] == [True]
    assert all(cost["seconds"] is not None for cost in one["costs"]), one["costs"]
    assert sorted(marks.iterdir()) == []


def test_measurements_read_what_their_children_print_in_the_c_locale(tree: PluginTree) -> None:
    """``LC_ALL=C`` runs Python in UTF-8 mode, children included: what a plugin module prints
    beyond ASCII while imported is read as they wrote it."""
    chatty = "import sys\nprint('Grüße', file=sys.stderr)\n"
    tree.plugin("one", TAP.replace("{name}", "one") + chatty)
    result = run_python(DOCTOR.format(user=None), path=[tree.root], env={"LC_ALL": "C"},
                        check=False, args=["doctor", tree.plugins_name, "--json"])
    assert result.returncode == 0, result.stderr
    (one,) = json.loads(result.stdout)["reports"]
    assert all(cost["seconds"] is not None for cost in one["costs"]), one["costs"]


@pytest.fixture
def readonly_tree() -> Iterator[tuple[Path, PluginTree]]:
    """A plugin tree in a directory every user can read and only root can write, with a
    per-user cache directory that nobody may write either."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the doctor as another user")
    base = Path(tempfile.mkdtemp(prefix="compat-plugin-doctor-", dir="/tmp"))
    try:
        tree = PluginTree(base, "cpdoctor")
        tree.plugin("first", TAP.replace("{name}", "first"))
        tree.plugin("second", TAP.replace("{name}", "second").replace('"web"', '"ftp"'))
        (base / "usercache").mkdir()
        open_to_everyone(base)
        yield base, tree
    finally:
        shutil.rmtree(base)


def test_stale_caches_that_nobody_can_rewrite_are_problems(
    readonly_tree: tuple[Path, PluginTree],
) -> None:
    base, tree = readonly_tree
    env = {"COMPAT_PLUGIN_CACHE_DIR": str(base / "usercache"), "HOME": str(base)}
    # Root writes the caches; then a module changes and only root could rewrite them.
    assert report(tree.plugins_name, path=[base], env=env, status=0)["problems"] == []
    second = tree.plugins_dir / "second.py"
    second.write_text(second.read_text() + "\n# changed\n")
    document = report(tree.plugins_name, path=[base], env=env, user=NOBODY)
    (state,) = [c for c in document["caches"] if c["kind"] == "directory" and c["written"]]
    assert (state["current"], state["writable"]) == (False, False)
    assert state["why"] == "not current for second"
    assert f"stale and not writable: {state['place']}" in document["problems"]
    # Root's doctor rewrites it: healthy again, for everyone.
    report(tree.plugins_name, path=[base], env=env, status=0)
    assert report(tree.plugins_name, path=[base], env=env, user=NOBODY,
                  status=0)["problems"] == []
    # A module that fails to import is in no cache: a rewrite would not help, so the cache
    # it leaves stale is no second problem.
    tree.plugin("broken", 'raise ValueError("broken")\n')
    report(tree.plugins_name, path=[base], env=env)
    document = report(tree.plugins_name, path=[base], env=env, user=NOBODY)
    (state,) = [c for c in document["caches"] if c["kind"] == "directory" and c["written"]]
    assert (state["current"], state["writable"], state["stale"]) == (False, False, ["broken"])
    assert document["problems"] == [f"failed: {tree.plugins_name}.broken"]


def test_runs_in_a_few_seconds_for_twisted_s_own_plugins() -> None:
    pytest.importorskip("twisted")
    import time

    started = time.monotonic()
    document = report("twisted.plugins", path=[], status=0)
    elapsed = time.monotonic() - started
    assert len(document["candidates"]) > 30
    assert {c["interface"] for c in document["calls"]} >= {
        "twisted.application.service.IServiceMaker", "twisted.trial.itrial.IReporter"}
    assert elapsed < 30, elapsed
