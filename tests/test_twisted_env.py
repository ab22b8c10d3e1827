"""Legacy applications unchanged: the start-up hook, through the runner and environment-wide.

``acme-legacyapp`` (``tests/projects/acme_legacyapp``) is written for ``twisted.plugin``: its
console script imports ``getPlugins`` from ``twisted.plugin`` when it is imported, its host-side
code binds it as a default argument, and it lists the commands of its own plugin package -- the
one it ships there (``builtin``) and those of other distributions.  ``acme-legacyplugin``
provides ``extra`` only as an entry point, so only compat_plugin's lookup finds it.  With
``--child`` the application also runs itself as a child process and prints what that finds.

Both, with ``acme-twisted`` (a twistd service declared only as an entry point), are installed by
pip into one virtual environment, with compat_plugin built from this working tree; Twisted
comes from this process's environment, which the venv reads after its own site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
import zope.interface

from compat_plugin._twisted_site import PTH_NAME, PTH_TEXT

from .conftest import Venv, run_python, runtime_only

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="virtual environments laid out the POSIX way"
)

REPOSITORY = Path(__file__).parent.parent
HOOK_MODULE = "_compat_plugin_twisted_hook"
OFF = {"COMPAT_PLUGIN_TWISTED": "0"}
# What the application lists: its own plugin only, or also the entry-point one.
BUILTIN = "builtin"
BOTH = "builtin extra"
# Twisted's test modules for twistd, trial's reporters, endpoint strings and cred checkers.
TWISTED_SUITE = (
    "twisted.test.test_twistd",
    "twisted.trial.test.test_reporter",
    "twisted.internet.test.test_endpoints",
    "twisted.cred.test.test_strcred",
)


@pytest.fixture(scope="module")
def compat_plugin_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree's compat_plugin as a wheel."""
    source = tmp_path_factory.mktemp("compat_plugin_source") / "compat_plugin"
    # Built from a copy: setuptools writes build/ and *.egg-info/ into the project.
    unrelated = (".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks",
                 "examples", "docs")
    shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(*unrelated))
    output = tmp_path_factory.mktemp("compat_plugin_wheel")
    command = [
        sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet",
        "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(output), str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    (wheel,) = output.glob("*.whl")
    return wheel


def parse(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The application's output lines, ``key: value``, as a dict."""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return dict(line.split(": ", 1) for line in result.stdout.splitlines())


def listing(found: str, *, argv: list[str], child: str | None = None) -> dict[str, str]:
    """The lines the application prints when it finds ``found`` (and its child ``child``)."""
    lines = {"argv": json.dumps(argv), "module-level": found, "default-argument": found}
    if child is not None:
        lines.update({"child argv": "[]", "child module-level": child,
                      "child default-argument": child})
    return lines


class LegacyEnvironment(Venv):
    """The application, the plugin distributions and compat_plugin, installed by pip; and a
    ``twistd`` script like the one pip writes for Twisted's console script."""

    def __init__(self, root: Path, wheels: list[Path]) -> None:
        super().__init__(root)
        # Installed even where the outer environment has them: this one's must come first.
        self.pip("install", "--no-deps", "--no-index", "--ignore-installed", *map(str, wheels))
        where = self.check_output(f"import compat_plugin, {HOOK_MODULE} as h; print(h.__file__)")
        assert Path(where).parent == self.purelib, where
        self.bin = root / "bin"
        (script,) = [e for e in distribution("twisted").entry_points
                     if e.group == "console_scripts" and e.name == "twistd"]
        twistd = self.bin / "twistd"
        twistd.write_text(
            f"#!{self.python}\nimport sys\nfrom {script.module} import {script.attr}\n"
            f"if __name__ == '__main__':\n    sys.exit({script.attr}())\n"
        )
        twistd.chmod(0o755)

    def app(self, *args: str, variables: dict[str, str] | None = None) -> dict[str, str]:
        """What the application's console script prints, run as the shell would run it."""
        return parse(self.execute(self.bin / "acme-legacyapp", *args, variables=variables))

    def cli(
        self, *args: str, variables: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.execute(self.python, "-m", "compat_plugin", *args, variables=variables)

    def runner(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.execute(self.python, "-m", "compat_plugin.twisted", *args)

    @property
    def pth(self) -> Path:
        return self.purelib / PTH_NAME


@pytest.fixture(scope="module")
def legacy(
    tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path], compat_plugin_wheel: Path
) -> LegacyEnvironment:
    dists = ("acme_legacyapp-1.0", "acme_legacyplugin-1.0", "acme_twisted-1.0")
    return LegacyEnvironment(
        tmp_path_factory.mktemp("legacy") / "venv",
        [compat_plugin_wheel, *(wheels[name] for name in dists)],
    )


@pytest.fixture
def enabled(legacy: LegacyEnvironment) -> Iterator[LegacyEnvironment]:
    """The environment with ``compat-plugin twisted enable`` done, and undone afterwards."""
    result = legacy.cli("twisted", "enable")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    yield legacy
    legacy.cli("twisted", "disable")


# -- The runner ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["console script", "script file", "module"])
def test_run_gives_the_program_entry_point_plugins_in_every_binding(
    legacy: LegacyEnvironment, how: str
) -> None:
    what = {
        "console script": ["acme-legacyapp"],
        "script file": [str(legacy.bin / "acme-legacyapp")],
        "module": ["-m", "acme_legacyapp"],
    }[how]
    lines = parse(legacy.runner("run", *what, "--child", "two words"))
    # The runner covers its own process; the child is a plain interpreter of an environment
    # that is not enabled.
    assert lines == listing(BOTH, argv=["--child", "two words"], child=BUILTIN)


def test_without_the_runner_the_program_finds_only_what_twisted_finds(
    legacy: LegacyEnvironment,
) -> None:
    assert legacy.app() == listing(BUILTIN, argv=[])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "run needs a SCRIPT, or -m and a MODULE"),
        (["run", "-m"], "run needs a SCRIPT, or -m and a MODULE"),
        (["run", "no-such-script"], "no console script or script file named 'no-such-script'"),
        (["run", "-m", "no_such_module"], "no module named 'no_such_module'"),
        (["run", "./missing.py"], "cannot open file './missing.py': no such file"),
        # A directory (or an archive) runs its __main__.
        (["run", os.sep], f"cannot find a __main__ module in {os.sep!r}"),
    ],
)
def test_run_of_nothing_runnable_is_one_line_and_status_2(
    legacy: LegacyEnvironment, args: list[str], message: str
) -> None:
    result = legacy.runner(*args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"python -m compat_plugin.twisted: {message}\n"


@pytest.mark.parametrize("main", ["__main__/__init__.py", "__main__/inside.py"],
                         ids=["a-package", "a-namespace-portion"])
def test_run_of_a_directory_whose_main_is_no_module_is_one_line(
    legacy: LegacyEnvironment, tmp_path: Path, main: str
) -> None:
    """runpy runs a ``__main__`` module only, as ``python DIRECTORY`` does."""
    (tmp_path / "app" / main).parent.mkdir(parents=True)
    (tmp_path / "app" / main).write_text("print('ran')\n")
    result = legacy.runner("run", str(tmp_path / "app"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("python -m compat_plugin.twisted: cannot find a __main__ module "
                             f"in {str(tmp_path / 'app')!r}\n")


def test_twisted_s_commands_without_twisted_say_what_to_install(tmp_path: Path) -> None:
    # -S: none of this environment's site-packages, only compat_plugin and what it needs.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "compat_plugin.twisted", "twistd", "--help"],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(runtime_only(tmp_path / "runtime"))},
        capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("python -m compat_plugin.twisted: cannot run twistd: No module named "
                           "'twisted'; it comes with Twisted: python -m pip install twisted\n")


_SHOW_PATH = "import json, sys\nprint(json.dumps([__file__, sys.path]))\n"


def test_run_puts_first_on_sys_path_what_python_would(
    legacy: LegacyEnvironment, tmp_path: Path
) -> None:
    """Not the working directory, which ``python -m`` put there: a console script's own
    directory, a script file's (with ``__file__`` absolute), an archive itself."""
    work = tmp_path / "work"
    work.mkdir()
    # A console script importing its package would find this one first.
    (work / "acme_legacyapp.py").write_text("raise ImportError('from the working directory')\n")
    (work / "show.py").write_text(_SHOW_PATH)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text(_SHOW_PATH)
    import zipapp

    zipapp.create_archive(tmp_path / "app", work / "app.pyz")

    def runner(*args: str) -> subprocess.CompletedProcess[str]:
        return legacy.execute(legacy.python, "-m", "compat_plugin.twisted", *args, cwd=work)

    app = runner("run", "acme-legacyapp")
    assert (app.returncode, app.stderr) == (0, ""), app.stderr
    file, path = json.loads(runner("run", "show.py").stdout)
    assert file == str(work / "show.py")
    assert path[0] == os.path.realpath(work) and str(work) not in path[1:]
    file, path = json.loads(runner("run", "app.pyz").stdout)
    assert path[0] == str(work / "app.pyz") and str(work) not in path[1:]


def test_run_python_of_an_installed_compat_plugin_keeps_the_standard_library_first(
    legacy: LegacyEnvironment,
) -> None:
    """``compat_plugin.testing.run_python`` where compat_plugin is installed (this environment
    has its wheel): its site-packages is not put ahead of the standard library."""
    stdlib = legacy.check_output("import sysconfig; print(sysconfig.get_path('stdlib'))")
    path = json.loads(legacy.check_output(
        "from compat_plugin.testing import run_python\n"
        "print(run_python('import json, sys; print(json.dumps(sys.path))').stdout)"))
    assert path.index(stdlib) < path.index(str(legacy.purelib))


# -- The environment-wide hook ----------------------------------------------------------------


def test_enable_status_disable(legacy: LegacyEnvironment) -> None:
    pth = legacy.pth
    working = "hook: active; twisted.plugin.getPlugins is compat_plugin's in a new interpreter"
    try:
        status = legacy.cli("twisted", "status")
        assert (status.returncode, status.stdout) == (1, f"not enabled: no {pth}\n")

        enabled = legacy.cli("twisted", "enable")
        assert (enabled.returncode, enabled.stdout.splitlines(), enabled.stderr) == (
            0, [f"enabled: wrote {pth}", working], ""
        )
        assert pth.read_text(encoding="ascii") == PTH_TEXT
        again = legacy.cli("twisted", "enable")
        assert (again.returncode, again.stdout.splitlines()[0]) == (0, f"already enabled: {pth}")

        status = legacy.cli("twisted", "status")
        assert (status.returncode, status.stdout.splitlines()) == (0, [f"enabled: {pth}", working])
        # Switched off here, the hook itself still works for everything else.
        status = legacy.cli("twisted", "status", variables=OFF)
        assert status.returncode == 0
        assert status.stdout.splitlines()[-1].startswith("note: COMPAT_PLUGIN_TWISTED=0 here")

        pth.write_text("# an older compat_plugin's\n" + PTH_TEXT, encoding="ascii")
        status = legacy.cli("twisted", "status")
        assert status.returncode == 1
        assert "not what this compat_plugin writes: run enable again" in status.stdout
    finally:
        disabled = legacy.cli("twisted", "disable")
    assert (disabled.returncode, disabled.stdout) == (0, f"disabled: removed {pth}\n")
    assert not pth.exists()
    again = legacy.cli("twisted", "disable")
    assert (again.returncode, again.stdout) == (0, f"not enabled: no {pth}\n")


def test_the_commands_refuse_an_interpreter_without_its_site_module(
    legacy: LegacyEnvironment,
) -> None:
    """Under ``-S`` no ``.pth`` file is read, and a virtual environment does not know its own
    site-packages: enabling would write into the base interpreter's."""
    # The environment's site-packages, then where its zope.interface comes from.
    sites = [str(legacy.purelib), str(Path(zope.interface.__file__).parents[2])]
    code = (f"import sys; sys.path += {sites!r}\n"
            "from compat_plugin.cli import main\nraise SystemExit(main(sys.argv[1:]))")
    for action in ("enable", "status", "disable"):
        result = legacy.execute(legacy.python, "-S", "-c", code, "twisted", action)
        assert result.returncode == 2, (action, result.stdout, result.stderr)
        assert ("compat-plugin: error: python -S reads no .pth file: run it without -S"
                in result.stderr.splitlines()), action
    assert not legacy.pth.exists()


def test_status_names_a_missing_hook_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged install (the hook module gone, the package there): status says what is
    wrong, and the commands need the module for nothing else."""
    from compat_plugin import _twisted_site

    inactive = _twisted_site.Status("/site/x.pth", True, True, False, None, "")
    lines, good = _twisted_site._describe(inactive)
    assert not good and lines[-1].endswith("is compat_plugin installed in this environment?")
    monkeypatch.setattr(_twisted_site, "HOOK_MODULE", "_compat_plugin_no_such_hook")
    lines, good = _twisted_site._describe(inactive)
    assert not good and lines[-1].endswith(
        "its module _compat_plugin_no_such_hook is missing: reinstall compat-plugin")


def test_status_and_disable_never_import_the_hook_module(enabled: LegacyEnvironment) -> None:
    """The commands spell the hook module's name instead of importing it: with its import
    made to fail, status still reports and disable still removes the hook."""
    blocked = (f"import sys\nsys.modules[{HOOK_MODULE!r}] = None\n"
               "from compat_plugin.cli import main\nraise SystemExit(main(sys.argv[1:]))")
    status = enabled.execute(enabled.python, "-c", blocked, "twisted", "status")
    assert (status.returncode, status.stderr) == (0, "")
    assert status.stdout.splitlines()[0] == f"enabled: {enabled.pth}"
    disabled = enabled.execute(enabled.python, "-c", blocked, "twisted", "disable")
    assert (disabled.returncode, disabled.stdout, disabled.stderr) == (
        0, f"disabled: removed {enabled.pth}\n", "")


def test_the_names_the_commands_use_are_the_hook_modules() -> None:
    import _compat_plugin_twisted_hook as hook
    from compat_plugin import _twisted_site

    spelled = (_twisted_site.HOOK_MODULE, _twisted_site.ENVIRONMENT_VARIABLE)
    assert spelled == (hook.__name__, hook.ENVIRONMENT_VARIABLE)


def test_enabled_environment_gives_the_program_and_its_child_entry_point_plugins(
    enabled: LegacyEnvironment,
) -> None:
    assert enabled.app("--child") == listing(BOTH, argv=["--child"], child=BOTH)
    assert enabled.cli("twisted", "disable").returncode == 0
    assert enabled.app("--child") == listing(BUILTIN, argv=["--child"], child=BUILTIN)


def test_environment_variable_turns_the_hook_off_for_a_process_and_its_children(
    enabled: LegacyEnvironment,
) -> None:
    off = enabled.app("--child", variables=OFF)
    assert off == listing(BUILTIN, argv=["--child"], child=BUILTIN)


def test_enabled_environment_plain_twistd_lists_an_entry_point_tapname(
    enabled: LegacyEnvironment,
) -> None:
    result = enabled.execute(enabled.bin / "twistd", "--help")
    assert result.returncode == 0, result.stderr
    assert "compatecho" in result.stdout
    assert "web " in result.stdout  # Twisted's own plugins are still there
    off = enabled.execute(enabled.bin / "twistd", "--help", variables=OFF)
    assert off.returncode == 0, off.stderr
    assert "web " in off.stdout
    assert "compatecho" not in off.stdout


MODULES = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def test_start_up_imports_the_hook_module_alone(legacy: LegacyEnvironment) -> None:
    before = set(json.loads(legacy.check_output(MODULES)))
    assert legacy.cli("twisted", "enable").returncode == 0
    try:
        after = set(json.loads(legacy.check_output(MODULES)))
    finally:
        legacy.cli("twisted", "disable")
    assert after - before == {HOOK_MODULE}
    assert before - after == set()


ACTIVE = f"""
import sys
hook = sys.modules.get({HOOK_MODULE!r})
print(hook is not None and hook.active())
"""


def test_a_broken_or_half_removed_installation_starts_silently(
    tmp_path: Path, compat_plugin_wheel: Path
) -> None:
    # No outer environment: nothing but what is installed here can be imported.
    venv = Venv(tmp_path / "venv", outer=False)
    venv.pip("install", "--no-deps", "--no-index", str(compat_plugin_wheel))
    # What `compat-plugin twisted enable` writes (which needs zope.interface, absent here).
    pth = venv.purelib / PTH_NAME
    pth.write_text(PTH_TEXT, encoding="ascii")
    hook = venv.purelib / f"{HOOK_MODULE}.py"

    def starts(active: bool) -> None:
        for code, output in [("pass", ""), (ACTIVE, f"{active}\n")]:
            result = venv.execute(venv.python, "-c", code)
            assert (result.returncode, result.stdout, result.stderr) == (0, output, "")

    starts(active=True)
    # The package removed by hand: the hook needs it only once Twisted is imported.
    shutil.rmtree(venv.purelib / "compat_plugin")
    starts(active=True)
    hook.write_text("this is not Python (\n", encoding="ascii")
    starts(active=False)
    venv.pip("uninstall", "--yes", "compat-plugin")
    assert not hook.exists()
    assert pth.exists()  # pip removes only what it installed
    starts(active=False)


# -- The hook in one process ------------------------------------------------------------------


HOOK_FIRST = f"""
import json, sys
import {HOOK_MODULE} as hook

hook.activate()
report = dict(compat_plugin_imported="compat_plugin" in sys.modules)
from twisted.plugin import getPlugins
from twisted.internet import endpoints
from twisted.application import app
import twisted.plugin
import compat_plugin
import compat_plugin.twisted as compat_twisted

ours = compat_plugin.getPlugins
report["bound"] = getPlugins is ours
report["loaders"] = sorted(set(
    type(loader).__name__ for loader in (twisted.plugin.__loader__, twisted.plugin.__spec__.loader)
))
report["patched"] = compat_twisted.patched()
static = vars(app.ServerOptions)["_getPlugins"]
report["static"] = [type(static).__name__, static.__func__ is ours, endpoints.getPlugins is ours]
report["installed"] = compat_twisted.install()

compat_twisted.uninstall()
twisteds = twisted.plugin.getPlugins
static = vars(app.ServerOptions)["_getPlugins"]
report["uninstalled"] = [
    twisteds is not ours, twisteds.__module__, twisted.plugin.getPlugIns is twisteds,
    type(static).__name__, static.__func__ is twisteds, endpoints.getPlugins is twisteds,
    hook.active(), compat_twisted.patched(),
]
from twisted.cred import strcred
report["imported_after"] = strcred.getPlugins is twisteds
print(json.dumps(report))
"""


def test_hook_replaces_each_lookup_as_its_module_is_imported_and_uninstall_undoes_it() -> None:
    report = json.loads(run_python(HOOK_FIRST).stdout)
    assert report["compat_plugin_imported"] is False
    assert report["bound"] is True
    assert report["loaders"] == ["SourceFileLoader"]
    assert report["patched"] == [
        "twisted.plugin.getPlugins",
        "twisted.plugin.getPlugIns",
        "twisted.application.app.ServerOptions._getPlugins",
        "twisted.application.reactors.getPlugins",
        "twisted.internet.endpoints.getPlugins",
    ]
    assert report["static"] == ["staticmethod", True, True]
    assert len(report["installed"]) == 7
    assert report["uninstalled"] == [
        True, "twisted.plugin", True, "staticmethod", True, True, False, [],
    ]
    assert report["imported_after"] is True


HOOK_LATE = f"""
import json
import twisted.internet.endpoints
import twisted.plugin

twisteds = twisted.plugin.getPlugins
import {HOOK_MODULE} as hook

hook.activate()
import compat_plugin
import compat_plugin.twisted as compat_twisted

report = dict(patched=compat_twisted.patched())
report["ours"] = twisted.internet.endpoints.getPlugins is compat_plugin.getPlugins
compat_twisted.uninstall()
report["restored"] = [
    twisted.plugin.getPlugins is twisteds, twisted.internet.endpoints.getPlugins is twisteds,
]
print(json.dumps(report))
"""


def test_hook_activated_late_replaces_the_lookup_in_modules_already_imported() -> None:
    report = json.loads(run_python(HOOK_LATE).stdout)
    assert report == {
        "patched": [
            "twisted.plugin.getPlugins",
            "twisted.plugin.getPlugIns",
            "twisted.internet.endpoints.getPlugins",
        ],
        "ours": True,
        "restored": [True, True],
    }


HOOK_FAILING = f"""
import io, json, logging, sys

stream = io.StringIO()
logging.basicConfig(stream=stream, format="%(name)s %(levelname)s %(message)s")
sys.modules["compat_plugin.twisted"] = None  # as if compat_plugin were gone
import {HOOK_MODULE} as hook

hook.activate()
asked = []
class Next:  # the finder after the hook's: still asked, the hook giving up in the look-up
    def find_spec(self, name, path=None, target=None):
        asked.append(name)
sys.meta_path.insert(sys.meta_path.index(hook._finder) + 1, Next())
import twisted.plugin, twisted.internet.endpoints, twisted.cred.strcred
print(json.dumps([[twisted.plugin.getPlugins.__module__,
                   twisted.internet.endpoints.getPlugins.__module__,
                   twisted.cred.strcred.getPlugins.__module__], stream.getvalue(), hook.active(),
                  "twisted.plugin" in asked]))
"""


def test_hook_that_cannot_replace_the_lookup_logs_it_and_leaves_twisteds() -> None:
    modules, logged, active, asked = json.loads(run_python(HOOK_FAILING).stdout)
    assert asked
    assert modules == ["twisted.plugin"] * 3
    assert logged.startswith(
        "compat_plugin WARNING twisted.plugin and the rest of Twisted keep Twisted's own plugin "
        "lookup: ModuleNotFoundError: "
    )
    assert len(logged.splitlines()) == 1  # said once, for every watched module
    assert not active


# -- Twisted's own tests (slow: set COMPAT_PLUGIN_TWISTED_SUITE=1) ----------------------------


def trial_summary(venv: Venv, module: str, cwd: Path) -> dict[str, Any]:
    """Tests run and the outcome counts of Twisted's test module ``module``."""
    result = venv.execute(venv.python, "-m", "twisted.trial", "--reporter=text", module,
                          cwd=cwd)
    lines = result.stdout.strip().splitlines()
    ran = next(line for line in lines if line.startswith("Ran "))
    outcome, _, counts = lines[-1].partition(" ")
    pairs = (pair.split("=") for pair in counts.strip("()").split(", ") if pair)
    return {"ran": ran.split()[1], "outcome": outcome, **{k: int(v) for k, v in pairs}}


@pytest.mark.skipif(
    os.environ.get("COMPAT_PLUGIN_TWISTED_SUITE") != "1",
    reason="runs Twisted's own test modules twice; set COMPAT_PLUGIN_TWISTED_SUITE=1",
)
def test_twisteds_own_tests_pass_in_an_enabled_environment_as_without_it(
    legacy: LegacyEnvironment, tmp_path: Path
) -> None:
    without = {module: trial_summary(legacy, module, tmp_path) for module in TWISTED_SUITE}
    assert legacy.cli("twisted", "enable").returncode == 0
    try:
        # trial itself does use compat_plugin's lookup there.
        reporters = legacy.execute(legacy.python, "-m", "twisted.trial", "--help-reporters")
        assert "compatreporter" in reporters.stdout
        with_hook = {module: trial_summary(legacy, module, tmp_path) for module in TWISTED_SUITE}
    finally:
        legacy.cli("twisted", "disable")
    print(textwrap.indent(json.dumps({"without": without, "with": with_hook}, indent=1), "  "))
    for module, before in without.items():
        # A module that cannot even be imported runs as one erroring test: nothing compared.
        assert int(before["ran"]) > 1, f"{module} did not load: pip install 'twisted[test]'"
        after = with_hook[module]
        assert after["ran"] == before["ran"], module
        if before["outcome"] == "PASSED":
            assert after == before, module
        else:
            # Plain Twisted can fail where compat_plugin does not: its dropin.cache keeps a
            # conditional plugin module's empty entry after the optional dependency arrives
            # (cred_sshkeys when bcrypt is installed later).  Never the other way round.
            assert after.get("successes", 0) >= before.get("successes", 0), module
