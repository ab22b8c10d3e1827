"""Resolving a plugin package over both sources, with real distributions built and installed by
pip: what entry points contribute, order, shadowing, duplicates of directory plugins, the
host-compatibility gate, disabling, failures logged once, and the caches across processes and
installs.

The projects under ``tests/projects`` are built into wheels once per session; each test installs
the ones it needs with pip (``--target``) into site directories of its own, and asks fresh
interpreters -- which put those directories on ``sys.path`` -- what they find.  Installing,
upgrading, uninstalling and editable installs are done by pip inside a throwaway virtual
environment.

Every child runs ``CHILD``: it reports what ``getPlugins`` yielded, the modules imported by
then, what ``discover()`` found, failed on and left out, and what the ``compat_plugin`` logger
said.  Some plugin modules note their import in the directory named by ``ACME_IMPORTS``, so a
test can tell that a module was never imported, even by a process that failed.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import PROJECTS, Install, Venv, run_python

# Modules that reading installed metadata imports; a warm call imports none of them.
METADATA_MODULES = ("importlib.metadata", "importlib_metadata", "packaging")

CHILD = """
import json
import logging
import sys

logs = []


class Collect(logging.Handler):
    def emit(self, record):
        logs.append({"level": record.levelname, "message": record.getMessage(),
                     "traceback": record.exc_info is not None})


logger = logging.getLogger("compat_plugin")
logger.addHandler(Collect())
logger.setLevel(logging.DEBUG)

import compat_plugin
import hostapp.plugins
from hostapp import ifaces

found = compat_plugin.getPlugins(getattr(ifaces, INTERFACE), hostapp.plugins,
                                 disable=DISABLE, enable=ENABLE)
plugins = [plugin.name for plugin in found]
modules = sorted(sys.modules)
discovery = compat_plugin.discover(hostapp.plugins, disable=DISABLE, enable=ENABLE)
records = [dict(r.origin._asdict(), module=r.module, attribute=r.attribute)
           for r in discovery.plugins]
errors = [dict(e.origin._asdict(), target=e.target, error=type(e.error).__name__,
               message=str(e.error))
          for e in discovery.errors]
skipped = [dict(s.origin._asdict(), target=s.target, reason=s.reason)
           for s in discovery.skipped]
print(json.dumps({"plugins": plugins, "modules": modules, "records": records,
                  "errors": errors, "skipped": skipped, "logs": logs}))
"""


@dataclass
class Report:
    """What one child interpreter found."""

    plugins: list[str]
    modules: list[str]
    records: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    logs: list[dict[str, Any]]

    @classmethod
    def parse(cls, stdout: str) -> Report:
        data = json.loads(stdout.strip().splitlines()[-1])
        return cls(**data)

    def messages(self, level: str) -> list[str]:
        return [log["message"] for log in self.logs if log["level"] == level]

    def metadata_modules(self) -> list[str]:
        """The metadata-reading modules this child had imported."""
        return [
            name for name in self.modules
            if any(name == top or name.startswith(f"{top}.") for top in METADATA_MODULES)
        ]

    def origins(self) -> list[tuple[str, str, str | None, str | None, str | None]]:
        """(plugin attribute, origin kind, distribution, version, entry point) per record."""
        return [
            (r["attribute"], r["kind"], r["distribution"], r["version"], r["entry_point"])
            for r in self.records
        ]


def child_code(interface: str, disable: Iterable[str], enable: Iterable[str]) -> str:
    values = {"INTERFACE": interface, "DISABLE": list(disable), "ENABLE": list(enable)}
    assignments = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    return assignments + textwrap.dedent(CHILD)


def run(
    path: Sequence[Path],
    *,
    interface: str = "IMaterial",
    disable: Iterable[str] = (),
    enable: Iterable[str] = (),
    env: dict[str, str] | None = None,
) -> Report:
    """Run ``CHILD`` in a fresh interpreter with ``path`` in front of ``sys.path``."""
    code = child_code(interface, disable, enable)
    result = run_python(code, path=[str(entry) for entry in path], env=env)
    return Report.parse(result.stdout)


@pytest.fixture(autouse=True)
def imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory where plugin modules note their import; children run in an empty cwd.

    (``python -c`` puts the working directory on ``sys.path``: an empty one keeps what the
    test suite writes elsewhere from changing its stamp.)
    """
    directory = tmp_path / "imports"
    directory.mkdir()
    monkeypatch.setenv("ACME_IMPORTS", str(directory))
    monkeypatch.delenv("COMPAT_PLUGIN_DISABLE", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return directory


def noted(imports: Path) -> set[str]:
    return {path.name for path in imports.iterdir()}


def index_files() -> dict[str, int]:
    """The entry-point index files of this test, with their mtimes: in its per-user cache, and
    beside the directories it installed into (below its temporary directory, the parent of
    the working directory ``imports`` gives it).

    A process that finds its index still valid reads it and writes nothing; one that rebuilds
    it writes it anew.  (A rebuild also imports ``packaging`` where some plugin distribution
    has a requirement on hostapp, as acme-materials and acme-editable do.)
    """
    per_user = Path(os.environ["COMPAT_PLUGIN_CACHE_DIR"], "entry-points").glob("*.json")
    beside = Path.cwd().parent.rglob("__pycache__/compat_plugin.entry-points.*.json")
    return {str(p): p.stat().st_mtime_ns for p in [*per_user, *beside]}


def dropin(root: Path, name: str, source: str) -> Path:
    """Write ``root/hostapp/plugins/<name>.py``: a plugin directory once ``root`` is on the path."""
    path = root / "hostapp" / "plugins" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- What one entry point contributes ----------------------------------------------------------


def test_module_entry_point_gives_every_plugin_of_the_module(install: Install) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0")
    report = run([site])
    assert report.plugins == ["granite", "iron", "copper", "oak"]
    metals = [r for r in report.records if r["module"] == "acme_materials.metals"]
    assert [r["attribute"] for r in metals] == ["iron", "copper"]
    for record in metals:
        assert record["kind"] == "entry-point"
        assert record["distribution"] == "acme-materials"
        assert record["version"] == "1.0"
        assert record["entry_point"] == "metals"
        assert record["path"] == str(site / "acme_materials-1.0.dist-info")
    assert report.errors == []


def test_object_entry_point_gives_that_object_only(install: Install) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0")
    report = run([site])
    assert "oak" in report.plugins
    assert "pine" not in report.plugins  # a plugin of the same module, not named
    woods = [r for r in report.records if r["module"] == "acme_materials.woods"]
    assert [(r["attribute"], r["entry_point"]) for r in woods] == [("oak", "oak")]
    assert "acme_materials.woods" in report.modules


def test_entry_point_naming_a_dropin_module_yields_it_once(install: Install) -> None:
    # acme-dupe's entry points name hostapp.plugins.builtin and its plugin granite.
    site = install("site", "hostapp-2.0", "acme_dupe-1.0")
    for _ in ("cold", "warm"):
        report = run([site])
        assert report.plugins == ["granite"]
        assert report.origins() == [("granite", "directory", None, None, None)]
        assert report.records[0]["path"] == str(site / "hostapp" / "plugins")
        assert report.errors == []
        assert {(s["entry_point"], s["reason"].split()[0]) for s in report.skipped} == {
            ("builtin", "duplicate"), ("granite", "duplicate")
        }


def test_first_copy_of_a_distribution_shadows_later_ones(install: Install) -> None:
    first = install("first", "hostapp-2.0", "acme_materials-1.0")
    second = install("second", "acme_materials-2.0")

    report = run([first, second])
    assert report.plugins == ["granite", "iron", "copper", "oak"]
    assert {r["version"] for r in report.records if r["kind"] == "entry-point"} == {"1.0"}
    # 2.0's alloys entry point is not even tried against 1.0's package.
    assert report.errors == []
    (skip,) = report.skipped
    assert (skip["distribution"], skip["version"]) == ("acme-materials", "2.0")
    assert skip["reason"] == f"shadowed by {first / 'acme_materials-1.0.dist-info'}"

    report = run([second, first])
    assert report.plugins == ["granite", "bronze", "iron", "copper", "tin", "oak"]
    assert {r["version"] for r in report.records if r["kind"] == "entry-point"} == {"2.0"}
    assert report.errors == []


def test_order_is_directories_then_path_position_distribution_and_name(
    install: Install,
) -> None:
    # zeta-minerals is first on sys.path; hostapp, whose directory plugin still comes first,
    # is installed after it beside acme-materials and acme-tools.
    first = install("first", "zeta_minerals-1.0")
    second = install("second", "acme_tools-1.0", "hostapp-2.0", "acme_materials-1.0")
    expected = [
        ("granite", "directory", None, None, None),
        ("agate", "entry-point", "zeta-minerals", "1.0", "agate"),
        ("zircon", "entry-point", "zeta-minerals", "1.0", "zircon"),
        ("iron", "entry-point", "acme-materials", "1.0", "metals"),
        ("copper", "entry-point", "acme-materials", "1.0", "metals"),
        ("oak", "entry-point", "acme-materials", "1.0", "oak"),
        ("lever", "entry-point", "acme-tools", "1.0", "gizmos"),
    ]
    cold = run([first, second])
    assert cold.origins() == expected
    assert cold.plugins == ["granite", "agate", "zircon", "iron", "copper", "oak"]
    written = index_files()
    assert written

    warm = run([first, second])
    assert index_files() == written
    assert warm.metadata_modules() == []
    assert warm.origins() == expected
    assert warm.plugins == cold.plugins


# -- What is kept out, and what goes wrong -----------------------------------------------------


def test_distribution_requiring_another_host_version_is_skipped_unimported(
    install: Install, imports: Path
) -> None:
    site = install(
        "site", "hostapp-2.0", "acme_oldhost-1.0", "acme_newhost-1.0", "acme_py2host-1.0"
    )
    for _ in ("cold", "warm"):
        report = run([site])
        # acme-newhost needs hostapp>=2; acme-py2host needs hostapp<2 only on Python 2.
        assert report.plugins == ["granite", "graphene", "flint"]
        assert noted(imports) == {"acme_newhost.plugin", "acme_py2host.plugin"}
        (warning,) = [m for m in report.messages("WARNING") if "acme-oldhost" in m]
        assert "hostapp<2" in warning
        assert "hostapp 2.0" in warning
        assert "(entry point" not in warning  # the distribution as a whole
        (error,) = report.errors
        assert (error["target"], error["error"]) == ("acme-oldhost", "IncompatiblePlugin")

    # Disabled, by its name or its entry point's, it is only left out: no error, no warning.
    for patterns in ("acme-oldhost", "oldhost"):
        report = run([site], env={"COMPAT_PLUGIN_DISABLE": patterns})
        assert report.plugins == ["granite", "graphene", "flint"]
        assert report.errors == []
        assert not [m for m in report.messages("WARNING") if "acme-oldhost" in m]
        (skip,) = [s for s in report.skipped if s["distribution"] == "acme-oldhost"]
        assert skip["reason"] == f"disabled by pattern {patterns!r}"


DISABLING = ["acme-secret", "acme_secret", "ACME.Secret", "secret", "acme_secret.*", "x, acme_s*"]


def test_disabled_plugins_are_never_imported(install: Install, imports: Path) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0", "acme_secret-1.0")
    rest = ["granite", "iron", "copper", "oak"]
    for patterns in DISABLING:
        report = run([site], env={"COMPAT_PLUGIN_DISABLE": patterns})
        assert report.plugins == rest, patterns
        assert "acme_secret.hidden" not in {r["module"] for r in report.records}
        (skip,) = report.skipped
        assert (skip["distribution"], skip["entry_point"]) == ("acme-secret", "secret")
        assert skip["reason"].startswith("disabled by pattern")
    assert run([site], disable=["acme-secret"]).plugins == rest
    assert run([site], disable=["*.hidden"]).plugins == rest
    assert noted(imports) == set()

    # enable overrides disable, whether the disabling came from the environment or the call.
    report = run([site], env={"COMPAT_PLUGIN_DISABLE": "secret"}, enable=["acme-secret"])
    assert report.plugins == [*rest, "unobtainium"]
    assert noted(imports) == {"acme_secret.hidden"}
    report = run([site], disable=["acme*"], enable=["acme_secret"])
    assert report.plugins == ["granite", "unobtainium"]
    assert run([site]).plugins == [*rest, "unobtainium"]


def unpack(wheel: Path, site: Path) -> None:
    """Install the hand-built wheel of acme-malformed as pip would, by unpacking it: pip before
    Python 3.11 (its pkg_resources metadata backend) refuses its malformed entry point."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)


def test_malformed_entry_point_is_reported_and_the_rest_still_come(
    install: Install, wheels: dict[str, Path]
) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0")
    unpack(wheels["acme_malformed-1.0"], site)
    report = run([site])
    # The same distribution's well-formed entry point still counts.
    assert report.plugins == ["granite", "quartz", "iron", "copper", "oak"]
    (warning,) = [m for m in report.messages("WARNING") if "acme-malformed" in m]
    assert "broken" in warning
    (error,) = report.errors
    assert (error["target"], error["error"]) == ("acme-malformed:broken", "MalformedEntryPoint")
    assert (error["distribution"], error["entry_point"]) == ("acme-malformed", "broken")
    # Disabled by its name, it is only left out.
    report = run([site], disable=["broken"])
    assert report.errors == []
    (skip,) = report.skipped
    assert (skip["entry_point"], skip["reason"]) == ("broken", "disabled by pattern 'broken'")


def test_missing_module_is_logged_with_traceback(install: Install) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0", "acme_ghost-1.0")
    report = run([site])
    assert report.plugins == ["granite", "iron", "copper", "oak"]
    (log,) = [log for log in report.logs if "acme_ghost.nothere" in log["message"]]
    assert log["level"] == "WARNING"
    assert log["traceback"]
    assert "acme-ghost" in log["message"]
    (error,) = report.errors
    assert (error["target"], error["error"]) == ("acme_ghost.nothere", "ModuleNotFoundError")
    assert (error["distribution"], error["entry_point"]) == ("acme-ghost", "ghost")


def test_object_without_iplugin_is_refused(install: Install) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0", "acme_notplugin-1.0")
    report = run([site])
    assert report.plugins == ["granite", "iron", "copper", "oak"]
    warning = next(m for m in report.messages("WARNING") if "acme_notplugin" in m)
    assert "acme-notplugin" in warning
    assert "'thing'" in warning
    (error,) = report.errors
    assert (error["target"], error["error"]) == ("acme_notplugin.objects:plain", "NotAPlugin")
    assert (error["distribution"], error["entry_point"]) == ("acme-notplugin", "thing")


def test_each_problem_is_logged_once_per_process(
    install: Install, wheels: dict[str, Path]
) -> None:
    # The child resolves twice, for getPlugins and then for discover(): every problem is
    # logged, as one WARNING, the first time only, and listed in discover()'s errors all the
    # same.
    site = install("site", "hostapp-2.0", "acme_ghost-1.0", "acme_notplugin-1.0",
                   "acme_oldhost-1.0")
    unpack(wheels["acme_malformed-1.0"], site)
    report = run([site])
    assert report.messages("ERROR") == []
    logged = report.messages("WARNING")
    problems = ["acme-ghost", "acme-malformed", "acme-notplugin", "acme-oldhost"]
    for distribution in problems:
        assert len([m for m in logged if distribution in m]) == 1, (distribution, logged)
    assert sorted(e["distribution"] for e in report.errors) == problems


def test_undecodable_metadata_and_entry_points(install: Install, tmp_path: Path) -> None:
    # importlib-metadata lists the entry points of a distribution whose METADATA it cannot
    # decode (it tells copies apart by their directories' names), and cannot read those of one
    # whose entry_points.txt it cannot decode.
    site = install("site", "hostapp-2.0", "acme_materials-1.0")
    broken = tmp_path / "broken"
    for name, damaged in [("acme_bad_meta", "METADATA"), ("acme_bad_eps", "entry_points.txt")]:
        info = broken / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
        (info / "METADATA").write_text(metadata, encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[hostapp.plugins]\n{name} = {name}\n")
        with (info / damaged).open("ab") as stream:
            stream.write(b"\xff\xfe not UTF-8\n")
        dropin(broken, "unused", "")  # hostapp/plugins in broken: a plugin directory too
        (broken / f"{name}.py").write_text(textwrap.dedent("""
            from zope.interface import implementer
            from compat_plugin import IPlugin
            from hostapp.ifaces import IMaterial

            @implementer(IPlugin, IMaterial)
            class Mineral:
                name = "feldspar"

            feldspar = Mineral()
            """))
    report = run([broken, site])
    assert report.plugins == ["granite", "feldspar", "iron", "copper", "oak"]
    assert [r["distribution"] for r in report.records if r["attribute"] == "feldspar"] == [
        "acme-bad-meta"]
    (meta,) = [m for m in report.messages("WARNING") if "acme_bad_meta-1.0.dist-info" in m]
    assert "requirements are not checked" in meta
    (eps,) = [m for m in report.messages("WARNING") if "acme_bad_eps-1.0.dist-info" in m]
    assert "ignoring the entry points" in eps


# -- The cache across processes and installs ---------------------------------------------------


def test_warm_process_imports_only_matching_plugin_modules(
    install: Install, tmp_path: Path
) -> None:
    site = install("site", "hostapp-2.0", "acme_materials-1.0", "acme_tools-1.0")
    extra = tmp_path / "extra"
    dropin(extra, "gadgets", """
        from zope.interface import implementer
        from compat_plugin import IPlugin
        from hostapp.ifaces import IOther

        @implementer(IPlugin, IOther)
        class Gadget:
            name = "whistle"

        whistle = Gadget()
        """)
    matching = {"hostapp.plugins.builtin", "acme_materials.metals", "acme_materials.woods"}
    others = {"hostapp.plugins.gadgets", "acme_tools.gizmos"}

    cold = run([site, extra])
    assert cold.plugins == ["granite", "iron", "copper", "oak"]
    assert matching | others <= set(cold.modules)
    written = index_files()

    warm = run([site, extra])
    assert index_files() == written
    assert warm.plugins == cold.plugins
    assert warm.metadata_modules() == []
    assert matching <= set(warm.modules)
    assert not others & set(warm.modules)
    assert run([site, extra], interface="IOther").plugins == ["whistle", "lever"]


def test_plugin_depending_on_an_optional_package_appears_when_it_is_installed(
    install: Install, tmp_path: Path
) -> None:
    site = install("site", "hostapp-2.0")
    extra = tmp_path / "extra"
    module = dropin(extra, "porcelain", """
        try:
            import optdep
        except ImportError:
            pass
        else:
            from zope.interface import implementer
            from compat_plugin import IPlugin
            from hostapp.ifaces import IMaterial

            @implementer(IPlugin, IMaterial)
            class Ceramic:
                name = "porcelain"

            porcelain = Ceramic()
        """)
    before = module.stat().st_mtime_ns
    assert run([site, extra]).plugins == ["granite"]
    written = index_files()
    assert run([site, extra]).plugins == ["granite"]  # what it knew came from the caches
    assert index_files() == written

    install("site", "optdep-1.0")
    assert run([site, extra]).plugins == ["granite", "porcelain"]
    assert module.stat().st_mtime_ns == before


def test_install_upgrade_uninstall_and_editable_install(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    venv = Venv(tmp_path / "venv")
    offline = ["--no-build-isolation", "--no-deps", "--no-index"]

    def run() -> Report:
        return Report.parse(venv.check_output(child_code("IMaterial", (), ())))

    def settled(plugins: list[str], version: str | None = None) -> Report:
        """The first process after a change sees it; the next reuses the index it wrote."""
        first = run()
        assert first.plugins == plugins
        if version is not None:
            assert {r["version"] for r in first.records if r["kind"] == "entry-point"} == {
                version
            }
        written = index_files()
        second = run()
        assert second.plugins == plugins
        assert index_files() == written
        assert second.metadata_modules() == []
        return second

    venv.pip("install", *offline, str(wheels["hostapp-2.0"]))
    settled(["granite"])
    venv.pip("install", *offline, str(wheels["acme_materials-1.0"]))
    settled(["granite", "iron", "copper", "oak"], "1.0")
    venv.pip("install", *offline, str(wheels["acme_materials-2.0"]))
    settled(["granite", "bronze", "iron", "copper", "tin", "oak"], "2.0")
    venv.pip("uninstall", "--yes", "acme-materials")
    settled(["granite"])

    project = tmp_path / "acme_editable"
    shutil.copytree(PROJECTS / "acme_editable", project)
    venv.pip("install", *offline, "--editable", str(project))
    settled(["granite", "kaolin"])
    clays = project / "acme_editable" / "clays.py"
    clays.write_text(clays.read_text() + '\nterracotta = Clay("terracotta")\n')
    # The index is still valid (nothing was installed); only the edited module is read again,
    # and the index rewritten with what it now contributes.
    edited = run()
    assert edited.plugins == ["granite", "kaolin", "terracotta"]
    assert edited.metadata_modules() == []

