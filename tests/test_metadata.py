"""Entry points exactly as importlib-metadata sees them: a differential suite.

Each test lays distributions out for real -- built by setuptools or hatchling and installed by
pip; a wheel file put on ``sys.path``; a zip of an installed directory; a zipapp; an ``.egg``
directory and a zipped ``.egg`` (written with zipfile: setuptools no longer builds eggs); a
``sys.meta_path`` finder of the test's own; PEP 660 editable installs in a virtual environment;
METADATA edited after installation; two copies of one distribution -- and asks two fresh
interpreters in turn (cold: no index yet; warm: the index the first wrote) what
``compat_plugin.discover()`` reports and what ``importlib_metadata.entry_points(group=...)``
names.  compat_plugin must count (as plugins, or as failures) exactly the entry points
importlib-metadata names, report as shadowed exactly the other copies that declare some, and,
warm, read no metadata and import neither importlib-metadata nor packaging.

One rule is compat_plugin's own where importlib-metadata's versions differ: a copy of a
distribution with metadata is preferred to a copy without (importlib-metadata does so from
version 10; 8.7, on Python 3.9, and 9.x take the first copy found).  The tests of that rule
compare with importlib-metadata where it agrees and check the rule itself elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import importlib_metadata
import pytest
from packaging.utils import canonicalize_name

from compat_plugin import _metadata
from compat_plugin._entrypoints import Declared
from compat_plugin.testing import build_wheels, install_wheels, run_python, write_project

from .conftest import PLUGINS_INIT, Venv

GROUP = "mdhost.plugins"
# What reading installed metadata imports, and importlib.machinery (which asking the finders
# where a module would be read from does without): a warm call imports none of them.
METADATA_MODULES = ("importlib.metadata", "importlib.machinery", "importlib_metadata",
                    "packaging")
# importlib-metadata prefers copies with metadata from version 10 on.
PREFERS_METADATA = int(importlib_metadata.version("importlib-metadata").split(".")[0]) >= 10
EGG_TAG = f"py{sys.version_info[0]}.{sys.version_info[1]}"

HOST = {
    "mdhost/__init__.py": '"""A host whose plugin package is mdhost.plugins."""\n',
    "mdhost/ifaces.py": (
        "from zope.interface import Interface\n\n\n"
        "class IThing(Interface):\n"
        '    """What the plugins of mdhost provide."""\n'
    ),
    "mdhost/plugins/__init__.py": PLUGINS_INIT,
}


def plugin_module(*names: str) -> str:
    """A module defining one plugin (providing mdhost's IThing) per name."""
    source = textwrap.dedent("""\
        from zope.interface import implementer

        from compat_plugin import IPlugin
        from mdhost.ifaces import IThing


        @implementer(IPlugin, IThing)
        class Thing:
            def __init__(self, name):
                self.name = name

        """)
    return source + "".join(f"{name} = Thing({name!r})\n" for name in names)


def eps(**declared: str) -> dict[str, dict[str, str]]:
    """Entry points in GROUP, by name (``_`` in a keyword stands for ``-``)."""
    return {GROUP: {name.replace("_", "-"): value for name, value in declared.items()}}


# -- Distributions, built once per module ----------------------------------------------------

LICENSE = "Licensed under the terms below.\\n\\nA second paragraph, after a blank line."
BACKENDS = {"setuptools": "setuptools.build_meta", "hatchling": "hatchling.build"}


def backend_project(root: Path, name: str, backend: str, *, package_dir: str = "",
                    project: str = "", tool: str = "") -> Path:
    """A project ``name`` 1.0 built by ``backend``, whose package (below ``package_dir``)
    defines one plugin, the object of its one entry point; ``project`` and ``tool`` are more
    TOML lines for its ``[project]`` table and after it."""
    module = name.replace("-", "_")
    directory = root / name
    (directory / package_dir / module).mkdir(parents=True)
    (directory / package_dir / module / "__init__.py").write_text(plugin_module(module))
    (directory / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["{backend}"]\nbuild-backend = "{BACKENDS[backend]}"\n\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\n{textwrap.dedent(project)}\n'
        f'[project.entry-points."{GROUP}"]\n{module} = "{module}:{module}"\n\n'
        f"{textwrap.dedent(tool)}", encoding="utf-8")
    return directory


def licensed_project(root: Path, backend: str) -> Path:
    """A project built by ``backend`` whose License text has a blank paragraph (so that its
    METADATA holds a blank continuation line before Requires-Dist), requiring mdhost>=2."""
    return backend_project(root, f"md-licensed-{backend}", backend, project=f"""\
        license = {{text = "{LICENSE}"}}
        dependencies = ["mdhost>=2"]
        """)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheels of this module, by ``<name>-<version>`` as in their file names."""
    root = tmp_path_factory.mktemp("md-projects")
    first = [
        write_project("mdhost", root, files=HOST),
        write_project("md-alpha", root, files={"md_alpha.py": plugin_module("one", "two")},
                      entry_points=eps(alpha_one="md_alpha:one", alpha_two="md_alpha:two"),
                      requires=["mdhost>=1"]),
        write_project("md-beta", root, files={"md_beta/__init__.py": "",
                                              "md_beta/things.py": plugin_module("beta")},
                      entry_points=eps(beta="md_beta.things:beta")),
        write_project("md-twin", root, files={"md_twin.py": plugin_module("first")},
                      entry_points=eps(first="md_twin:first")),
        licensed_project(root, "setuptools"),
        licensed_project(root, "hatchling"),
    ]
    # Two releases of one project are built by different pip processes.
    second = [
        write_project("mdhost", root, version="2.0", files=HOST),
        write_project("md-alpha", root, version="2.0",
                      files={"md_alpha.py": plugin_module("one", "two", "three")},
                      entry_points=eps(alpha_one="md_alpha:one", alpha_three="md_alpha:three")),
        write_project("md-twin", root, version="2.0",
                      files={"md_twin.py": plugin_module("first", "second")},
                      entry_points=eps(first="md_twin:first", second="md_twin:second")),
    ]
    batches = [(first, root / "wheels-1"), (second, root / "wheels-2")]
    with ThreadPoolExecutor(2) as pool:
        built = pool.map(lambda batch: build_wheels(*batch), batches)
        return {"-".join(w.name.split("-")[:2]): w for ws in built for w in ws}


# What each installed template holds; tests work on copies.
SITES = {
    "base": ("mdhost-1.0", "md_alpha-1.0", "md_beta-1.0", "md_licensed_setuptools-1.0",
             "md_licensed_hatchling-1.0"),
    "twin1": ("md_twin-1.0",),
    "twin2": ("md_twin-2.0",),
    "alpha2": ("md_alpha-2.0",),
    "host2": ("mdhost-2.0",),
}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> dict[str, Path]:
    """Site directories pip installed (``--target``) the wheels of ``SITES`` into."""
    root = tmp_path_factory.mktemp("md-sites")
    with ThreadPoolExecutor(2) as pool:
        done = pool.map(lambda item: install_wheels(root / item[0],
                                                    *(wheels[name] for name in item[1])),
                        SITES.items())
        return dict(zip(SITES, done))


@pytest.fixture
def copy(sites: dict[str, Path], tmp_path: Path) -> Any:
    """``copy("base")``: a copy of an installed site of this test's own (``copy("base",
    "name")`` to have two)."""

    def make(site: str, name: str | None = None) -> Path:
        return Path(shutil.copytree(sites[site], tmp_path / (name or site), symlinks=True))

    return make


@pytest.fixture(autouse=True)
def _empty_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ``python -c`` puts the working directory on sys.path: an empty one, of this test's own.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


# -- Comparing with importlib-metadata in a child ------------------------------------------------

CHILD = """
import json, logging, sys
# Reading a zip archive takes zipfile, which on Python 3.9 imports importlib.machinery.
import zipfile

logs = []


class Keep(logging.Handler):
    def emit(self, record):
        logs.append([record.levelname, record.getMessage()])


logger = logging.getLogger("compat_plugin")
logger.addHandler(Keep())
logger.setLevel(logging.DEBUG)
loaded = set(sys.modules)

import compat_plugin
import mdhost.plugins

found = compat_plugin.discover(mdhost.plugins)
imported = sorted(set(sys.modules) - loaded)


def where(origin):
    return [origin.distribution, origin.version, origin.path, origin.entry_point]


compat = {
    "plugins": [where(r.origin) + [r.module, r.attribute] for r in found.plugins
                if r.origin.kind == "entry-point"],
    "errors": [where(e.origin) + [type(e.error).__name__, e.target] for e in found.errors
               if e.origin.kind == "entry-point"],
    "skipped": [where(s.origin) + [s.reason, s.target] for s in found.skipped
                if s.origin.kind == "entry-point"],
}

import importlib_metadata
from packaging.utils import canonicalize_name


def described(dist):
    try:
        version = dist.metadata.get("Version") or ""
    except Exception:
        version = ""
    name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"]
    path = getattr(dist, "_path", None)
    return [canonicalize_name(name), version, str(path) if path is not None else str(dist)]


named, problem = [], None
try:
    for ep in importlib_metadata.entry_points(group=GROUP):
        try:
            module, attr = ep.module, ep.attr
        except ValueError:
            module = attr = None
        named.append(described(ep.dist) + [ep.name, ep.value, module, attr])
except Exception as exc:
    problem = f"{type(exc).__name__}: {exc}"
declaring = []
for dist in importlib_metadata.distributions():
    try:
        if dist.entry_points.select(group=GROUP):
            declaring.append(described(dist))
    except Exception:
        pass
print(json.dumps({"compat": compat, "imported": imported, "logs": logs, "named": named,
                  "problem": problem, "declaring": declaring}))
"""

# (distribution, version, metadata location, entry point name)
Identity = tuple[str, str, str, str]
Copy = tuple[str, str, str]


@dataclass
class Comparison:
    """What compat_plugin and importlib-metadata told one child about GROUP."""

    named: dict[Identity, tuple[str, str | None, str | None]]  # value, module, attribute
    counted: set[Identity]
    gated: set[str]
    shadowed: set[Copy]
    shadowed_by_importlib: set[Copy]
    mismatched: list[str]
    imported: list[str]
    scanned: list[str]  # entry-point modules imported (a discover() call imports only to scan)
    logs: list[list[str]]
    problem: str | None

    @classmethod
    def parse(cls, stdout: str) -> Comparison:
        data = json.loads(stdout.strip().splitlines()[-1])
        named = {(k, v, p, e): (value, m, a) for k, v, p, e, value, m, a in data["named"]}
        counted: set[Identity] = set()
        gated: set[str] = set()
        shadowed: set[Copy] = set()
        mismatched = []
        compat = data["compat"]
        for key, version, path, entry_point, module, attribute in compat["plugins"]:
            identity = (key, version, path, entry_point)
            counted.add(identity)
            if identity in named:
                _, wanted_module, wanted_attribute = named[identity]
                if module != wanted_module or wanted_attribute not in (None, attribute):
                    mismatched.append(f"{identity}: {module}:{attribute}")
        for key, version, path, entry_point, error, _target in compat["errors"]:
            if entry_point is not None:
                counted.add((key, version, path, entry_point))
                continue
            # The whole distribution was refused: each of its entry points was considered.
            if error == "IncompatiblePlugin":
                gated.add(key)
            counted.update(i for i in named if (i[0], i[2]) == (key, path))
        for key, version, path, entry_point, reason, _target in compat["skipped"]:
            if reason.startswith("shadowed by"):
                shadowed.add((key, version, path))
            elif entry_point is not None:
                counted.add((key, version, path, entry_point))
        winners = {identity[:3] for identity in named}
        by_importlib = {tuple(d) for d in data["declaring"]} - winners
        imported = [name for name in data["imported"]
                    if any(name == top or name.startswith(f"{top}.") for top in METADATA_MODULES)]
        modules = {module for _, module, _ in named.values() if module}
        scanned = [name for name in data["imported"] if name in modules]
        return cls(named, counted, gated, shadowed, by_importlib, mismatched, imported, scanned,
                   data["logs"], data["problem"])

    def reads(self) -> list[str]:
        """The entries whose installed metadata compat_plugin read."""
        prefix = "reading installed metadata in "
        return [m[len(prefix):].partition(" for entry points")[0] for level, m in self.logs
                if level == "DEBUG" and m.startswith(prefix)]

    def warnings(self) -> list[str]:
        return [message for level, message in self.logs if level == "WARNING"]

    def assert_agrees(self) -> None:
        assert self.problem is None, self.problem
        problems = []
        if self.counted != set(self.named):
            problems.append(f"importlib-metadata only: {sorted(set(self.named) - self.counted)}; "
                            f"compat_plugin only: {sorted(self.counted - set(self.named))}")
        if self.shadowed != self.shadowed_by_importlib:
            problems.append(f"shadowed: compat_plugin {sorted(self.shadowed)}, "
                            f"importlib-metadata {sorted(self.shadowed_by_importlib)}")
        if self.mismatched:
            problems.append(f"records not of their entry point's value: {self.mismatched}")
        assert not problems, "; ".join(problems)

    def distributions(self) -> set[Copy]:
        """The copies whose entry points count."""
        return {identity[:3] for identity in self.counted}


def compare(path: Sequence[Path], *, setup: str = "", venv: Venv | None = None) -> Comparison:
    """Ask a fresh interpreter (of ``venv``, or this one with ``path`` in front of
    ``sys.path``) what compat_plugin and importlib-metadata find in GROUP; ``setup`` runs
    first."""
    code = f"GROUP = {GROUP!r}\n{textwrap.dedent(setup)}\n{CHILD}"
    if venv is not None:
        return Comparison.parse(venv.check_output(code))
    return Comparison.parse(run_python(code, path=path).stdout)


def cold_and_warm(path: Sequence[Path], *, setup: str = "", venv: Venv | None = None,
                  custom: bool = False) -> tuple[Comparison, Comparison]:
    """Compare in a first child, which builds the indexes, and in a second, which must find
    them all valid: it reads no metadata and (unless ``custom`` finders provide distributions,
    read and scanned in every process) scans no module again and imports neither
    importlib-metadata nor packaging."""
    cold = compare(path, setup=setup, venv=venv)
    cold.assert_agrees()
    assert cold.reads(), "the first child read no metadata: was an index left over?"
    warm = compare(path, setup=setup, venv=venv)
    warm.assert_agrees()
    assert warm.reads() == []
    assert cold.scanned
    if not custom:  # what custom finders provide is neither indexed nor its scans kept
        assert warm.scanned == []
        assert warm.imported == []
    assert (warm.counted, warm.gated, warm.shadowed) == (cold.counted, cold.gated, cold.shadowed)
    return cold, warm


def copies(comparison: Comparison, name: str) -> set[tuple[str, str]]:
    """(version, metadata directory name) of the copies of ``name`` that count."""
    return {(version, Path(path).name) for key, version, path in comparison.distributions()
            if key == name}


# -- Installed by pip ------------------------------------------------------------------------------


def test_wheels_carry_a_blank_license_paragraph_before_their_requirements(
    wheels: dict[str, Path],
) -> None:
    for backend in BACKENDS:
        with zipfile.ZipFile(wheels[f"md_licensed_{backend}-1.0"]) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            lines = archive.read(name).decode().splitlines()
        blank = next(i for i, line in enumerate(lines) if line.startswith(" ") and not line.strip())
        assert lines[blank - 1].startswith("License:"), backend
        assert blank < lines.index("Requires-Dist: mdhost>=2"), backend


def test_installed_site_directory(copy: Any) -> None:
    site = copy("base")
    cold, _ = cold_and_warm([site])
    assert {key for key, *_ in cold.distributions()} == {
        "md-alpha", "md-beta", "md-licensed-setuptools", "md-licensed-hatchling"}
    # A License text with a blank paragraph does not hide the requirement that follows it.
    assert cold.gated == {"md-licensed-setuptools", "md-licensed-hatchling"}
    assert len(cold.counted) == 5


def test_gate_verdict_is_kept_and_made_again_when_the_host_moves(copy: Any) -> None:
    site = copy("base")
    gated = {"md-licensed-setuptools", "md-licensed-hatchling"}
    _, warm = cold_and_warm([site])
    assert warm.gated == gated  # the index's verdict, packaging not imported

    upgrade = copy("host2")
    upgraded = compare([upgrade, site])
    upgraded.assert_agrees()
    assert upgraded.gated == set()
    assert set(upgraded.reads()) == {str(upgrade)}  # the other entry's index stays valid
    again = compare([upgrade, site])
    assert (again.gated, again.imported, again.reads()) == (set(), [], [])

    downgraded = compare([site])
    assert downgraded.gated == gated


def test_a_declaring_distribution_s_metadata_is_parsed_once(
    copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its name, version and requirements are each read from it: of one parse.
    reads: list[str] = []
    read_text = importlib_metadata.PathDistribution.read_text

    def counted(self: Any, filename: str) -> str | None:
        if filename in ("METADATA", "PKG-INFO"):
            reads.append(str(self._path))
        return read_text(self, filename)

    monkeypatch.setattr(importlib_metadata.PathDistribution, "read_text", counted)
    index = _metadata.index_entry(str(copy("base")), GROUP, None)
    assert {"md-licensed-setuptools", "md-licensed-hatchling"} <= {
        d.key for d in index.distributions if d.requires}
    assert sorted(reads) == sorted({d.metadata for d in index.distributions})


def test_packaging_is_imported_only_when_a_verdict_needs_it(copy: Any) -> None:
    # md-twin requires nothing: its index is built without packaging, names included.
    plain = compare([copy("twin1"), copy("host2")])
    plain.assert_agrees()
    assert plain.reads() and plain.gated == set()
    assert "importlib_metadata" in plain.imported
    assert [name for name in plain.imported if name.partition(".")[0] == "packaging"] == []
    judged = compare([copy("base")])
    assert judged.gated == {"md-licensed-setuptools", "md-licensed-hatchling"}
    assert "packaging.requirements" in judged.imported


def test_wheel_file_on_sys_path(wheels: dict[str, Path], copy: Any) -> None:
    wheel = wheels["md_twin-2.0"]
    cold, _ = cold_and_warm([wheel, copy("base")])
    assert copies(cold, "md-twin") == {("2.0", "md_twin-2.0.dist-info")}
    assert {i[3] for i in cold.counted if i[0] == "md-twin"} == {"first", "second"}


def test_zip_of_an_installed_directory(copy: Any, tmp_path: Path) -> None:
    installed = copy("twin1")
    archive = Path(shutil.make_archive(str(tmp_path / "twin"), "zip", installed))
    cold, _ = cold_and_warm([archive, copy("base")])
    assert copies(cold, "md-twin") == {("1.0", "md_twin-1.0.dist-info")}


def test_path_object_on_sys_path(copy: Any) -> None:
    # The import system passes over a pathlib.Path on sys.path; importlib-metadata reads it.
    twin = copy("twin1")
    setup = f"import pathlib, sys\nsys.path.insert(0, pathlib.Path({str(twin)!r}))"
    cold, _ = cold_and_warm([copy("base")], setup=setup)
    assert copies(cold, "md-twin") == {("1.0", "md_twin-1.0.dist-info")}


def test_zipapp(copy: Any, tmp_path: Path) -> None:
    installed = copy("twin2")
    app = tmp_path / "app.pyz"
    subprocess.run([sys.executable, "-m", "zipapp", str(installed), "-o", str(app),
                    "-m", "md_twin:first"], check=True)
    cold, _ = cold_and_warm([app, copy("base")])
    assert copies(cold, "md-twin") == {("2.0", "md_twin-2.0.dist-info")}


# -- Eggs, written as importlib-metadata reads them ----------------------------------------------


def egg_files(name: str, requires: str) -> dict[str, str]:
    """What an ``.egg`` of ``name`` 1.0 holds: its module at the top, EGG-INFO beside it."""
    module = name.replace("-", "_")
    return {
        f"{module}.py": plugin_module("egg"),
        "EGG-INFO/PKG-INFO": f"Metadata-Version: 1.1\nName: {name}\nVersion: 1.0\n",
        "EGG-INFO/entry_points.txt": f"[{GROUP}]\negg = {module}:egg\n",
        "EGG-INFO/requires.txt": f"{requires}\n",
        "EGG-INFO/top_level.txt": f"{module}\n",
    }


def test_egg_directory(copy: Any, tmp_path: Path) -> None:
    egg = tmp_path / f"md_egg-1.0-{EGG_TAG}.egg"
    for relative, text in egg_files("md-egg", "mdhost>=1").items():
        (egg / relative).parent.mkdir(parents=True, exist_ok=True)
        (egg / relative).write_text(text, encoding="utf-8")
    cold, _ = cold_and_warm([egg, copy("base")])
    assert copies(cold, "md-egg") == {("1.0", "EGG-INFO")}
    assert "md-egg" not in cold.gated


def test_zipped_egg(copy: Any, tmp_path: Path) -> None:
    egg = tmp_path / f"md_zegg-1.0-{EGG_TAG}.egg"
    with zipfile.ZipFile(egg, "w") as archive:
        for relative, text in egg_files("md-zegg", "mdhost>=2").items():
            archive.writestr(relative, text)
    cold, _ = cold_and_warm([egg, copy("base")])
    assert {key for key, *_ in cold.distributions()} >= {"md-zegg"}
    # Its requires.txt is read as its requirements: mdhost 1.0 does not do.
    assert "md-zegg" in cold.gated


# -- A finder of the test's own ---------------------------------------------------------------

FINDER = """
import importlib_metadata
import pathlib
import sys


class DictDistribution(importlib_metadata.Distribution):
    def __init__(self, name, files):
        self._name = name
        self._files = files

    def read_text(self, filename):
        return self._files.get(str(filename))

    def locate_file(self, path):
        return pathlib.Path(MODULES, path)

    def __str__(self):
        return f"dict-finder:{self._name}"


def distribution(name, version, entry_points):
    return DictDistribution(name, {
        "METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
        "entry_points.txt": f"[{GROUP}]\\n{entry_points}\\n",
    })


class DictFinder(importlib_metadata.DistributionFinder):
    def find_spec(self, *args, **kwargs):
        return None

    def find_distributions(self, context=importlib_metadata.DistributionFinder.Context()):
        found = [distribution("md-custom", "1.0", "custom = md_custom:custom"),
                 distribution("md-alpha", "9.0", "alpha-one = md_alpha:one")]
        wanted = context.name and importlib_metadata.Prepared.normalize(context.name)
        return iter(d for d in found if not wanted or d._normalized_name == wanted)


if FRONT:
    sys.meta_path.insert(0, DictFinder())
else:
    sys.meta_path.append(DictFinder())
"""


@pytest.mark.parametrize("front", [True, False], ids=["ahead-of-the-path", "after-the-path"])
def test_custom_distribution_finder(copy: Any, tmp_path: Path, front: bool) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "md_custom.py").write_text(plugin_module("custom"), encoding="utf-8")
    setup = f"MODULES = {str(modules)!r}\nFRONT = {front}\n{FINDER}"
    site = copy("base")
    cold, _ = cold_and_warm([modules, site], setup=setup, custom=True)
    assert copies(cold, "md-custom") == {("1.0", "dict-finder:md-custom")}
    # The finder's md-alpha 9.0 comes before the path's 1.0 exactly when the finder does.
    alpha = ("9.0", "dict-finder:md-alpha") if front else ("1.0", "md_alpha-1.0.dist-info")
    assert copies(cold, "md-alpha") == {alpha}
    assert len(cold.shadowed) == 1


SUBCLASS_FINDER = """
import importlib_metadata
import pathlib
import sys


class Declaring(importlib_metadata.PathDistribution):
    # A distribution of files on disk whose entry points are no file: the class gives them.
    def read_text(self, filename):
        if str(filename) == "entry_points.txt":
            return f"[{GROUP}]\\nfrom-class = md_fromclass:fromclass\\n"
        return super().read_text(filename)


class SubclassFinder(importlib_metadata.DistributionFinder):
    def find_spec(self, *args, **kwargs):
        return None

    def find_distributions(self, context=importlib_metadata.DistributionFinder.Context()):
        wanted = context.name and importlib_metadata.Prepared.normalize(context.name)
        if not wanted or wanted == "md_fromclass":
            yield Declaring(pathlib.Path(INFO))


sys.meta_path.insert(0, SubclassFinder())
"""


def test_a_path_distribution_of_its_own_class_is_asked_for_its_entry_points(
    copy: Any, tmp_path: Path
) -> None:
    """A directory without ``entry_points.txt`` declares nothing to importlib-metadata's own
    path distribution, which is therefore not asked; a subclass of it may declare entry points
    all the same, and is."""
    modules, info = tmp_path / "modules", tmp_path / "elsewhere" / "md_fromclass-1.0.dist-info"
    modules.mkdir()
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: md-fromclass\nVersion: 1.0\n",
                                   encoding="utf-8")
    (modules / "md_fromclass.py").write_text(plugin_module("fromclass"), encoding="utf-8")
    setup = f"INFO = {str(info)!r}\n{SUBCLASS_FINDER}"
    cold, _ = cold_and_warm([modules, copy("base")], setup=setup, custom=True)
    assert copies(cold, "md-fromclass") == {("1.0", "md_fromclass-1.0.dist-info")}


# -- Editable installs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def editables(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Venv:
    """A virtual environment with mdhost 1.0 and two PEP 660 editable installs: md-edit-st
    by setuptools from a ``src`` layout, with the ``src/md_edit_st.egg-info`` that setuptools'
    ``egg_info`` command leaves in a working copy (on ``sys.path`` through the editable
    install: a second copy), and md-edit-hatch by hatchling."""
    root = tmp_path_factory.mktemp("md-editables")
    setuptools = backend_project(root, "md-edit-st", "setuptools", package_dir="src",
                                 project='dependencies = ["mdhost>=1"]\n', tool="""\
        [tool.setuptools]
        package-dir = {"" = "src"}
        packages = ["md_edit_st"]
        """)
    hatch = backend_project(root, "md-edit-hatch", "hatchling", tool="""\
        [tool.hatch.build.targets.wheel]
        dev-mode-dirs = ["."]
        """)
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "egg_info"],
                   cwd=setuptools, check=True, capture_output=True)
    venv = Venv(root / "venv")
    venv.pip("install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
             str(wheels["mdhost-1.0"]), "--editable", str(setuptools), "--editable", str(hatch))
    return venv


def test_editable_installs(editables: Venv) -> None:
    cold, _ = cold_and_warm([], venv=editables)
    assert copies(cold, "md-edit-st") == {("1.0", "md_edit_st-1.0.dist-info")}
    assert copies(cold, "md-edit-hatch") == {("1.0", "md_edit_hatch-1.0.dist-info")}
    # The installed copy comes first on sys.path, and shadows src/md_edit_st.egg-info.
    assert {(key, Path(path).name) for key, _, path in cold.shadowed} == {
        ("md-edit-st", "md_edit_st.egg-info")}


def test_a_working_copy_s_egg_info_rewritten_in_place(copy: Any, tmp_path: Path) -> None:
    """A flat setuptools project first on ``sys.path`` (a program run from its working copy):
    ``pip install .`` (or ``-e .``) has setuptools' ``egg_info`` rewrite the project's own
    ``md_flat.egg-info`` in place, which changes nothing of the project directory's stamp.
    The first entry point in the group it gains counts in the next process."""
    project = tmp_path / "md-flat"
    project.mkdir()
    (project / "md_flat.py").write_text(plugin_module("md_flat"), encoding="utf-8")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "md-flat"\nversion = "1.0"\n'
        '[tool.setuptools]\npy-modules = ["md_flat"]\n'
        '[project.entry-points."md.other"]\nother = "md_flat:md_flat"\n', encoding="utf-8")

    def egg_info() -> tuple[int, int, int]:
        subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()",
                        "egg_info"], cwd=project, check=True, capture_output=True)
        return entry_stamp()

    def entry_stamp() -> tuple[int, int, int]:
        st = project.stat()
        return st.st_mtime_ns, st.st_size, st.st_nlink

    egg_info()
    site = copy("base")
    cold, _ = cold_and_warm([project, site])
    assert copies(cold, "md-flat") == set()
    before = entry_stamp()
    with pyproject.open("a", encoding="utf-8") as toml:
        toml.write(f'[project.entry-points."{GROUP}"]\nflat = "md_flat:md_flat"\n')
    assert egg_info() == before  # the entry looks as it did
    changed = compare([project, site])
    changed.assert_agrees()
    # That entry is read again, not the site.  (Others may be: the suite's own working copy
    # is an entry, with an egg-info that building compat_plugin rewrites.)
    assert str(project) in changed.reads()
    assert str(site) not in changed.reads()
    assert copies(changed, "md-flat") == {("1.0", "md_flat.egg-info")}
    # And its index is current again.
    assert str(project) not in compare([project, site]).reads()


def test_only_an_egg_info_outside_the_site_directories_is_watched(tmp_path: Path) -> None:
    """Installers make a new metadata directory, which changes their entry's stamp: where they
    write, a warm call stats no ``*.egg-info``."""
    for name in ("md_old.egg-info", "md_new-1.0.dist-info"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ("PKG-INFO" if "egg" in name else "METADATA")).write_text(
            f"Metadata-Version: 2.1\nName: {name.partition('.')[0]}\nVersion: 1.0\n")
    context = importlib_metadata.DistributionFinder.Context(path=[str(tmp_path)])  # type: ignore[no-untyped-call]
    found = list(importlib_metadata.MetadataPathFinder.find_distributions(context))
    assert len(found) == 2
    places = [_metadata.Copy(dist).where for dist in found]
    (watched,) = _metadata._rewritten_in_place(str(tmp_path), places)
    assert watched.where == str(tmp_path / "md_old.egg-info")
    assert not watched.changed(None)
    declared = tmp_path / "md_old.egg-info" / "entry_points.txt"
    declared.write_text("[md.other]\n")
    assert watched.changed(None)
    # Recorded, then copied into an image layer (times cut to whole seconds): the same file;
    # rewritten, another.
    (watched,) = _metadata._rewritten_in_place(str(tmp_path), places)
    assert watched.declared is not None
    second = watched.declared.mtime_ns // 10**9 * 10**9
    os.utime(declared, ns=(second, second))
    written_later = second + 5 * 10**9
    assert not watched.changed(written_later)
    declared.write_text("[md.other]\nx = y\n")
    assert watched.changed(written_later)
    for place in (*site.getsitepackages(), site.getusersitepackages(),
                  sysconfig.get_paths()["purelib"]):
        assert _metadata._rewritten_in_place(place, places) == ()


# -- What an index build looks at itself -----------------------------------------------------


def _layout(entry: Path, kind: str) -> None:
    """One distribution in ``entry``, of the ``kind`` the test below names."""
    declared = f"[{GROUP}]\nthing = md_{kind.replace('-', '_')}:thing\n"
    header = f"Metadata-Version: 2.1\nName: md-{kind}\nVersion: 1.0\n"
    name = f"md_{kind.replace('-', '_')}-1.0"
    info = entry / (f"{name}.egg-info" if kind.startswith("egg") else f"{name}.dist-info")
    if kind == "egg-file":  # setuptools' oldest form: the metadata is the file itself
        info.write_text(header, encoding="utf-8")
        return
    info.mkdir()
    if kind != "no-metadata":
        (info / ("PKG-INFO" if kind.startswith("egg") else "METADATA")).write_text(
            header, encoding="utf-8")
    declared_in = info / "entry_points.txt"
    if kind == "dangling-link":
        declared_in.symlink_to(entry / "gone.txt")
    elif kind == "directory":
        declared_in.mkdir()
    elif kind != "undeclared":
        declared_in.write_text(declared, encoding="utf-8")


KINDS = ["declared", "undeclared", "dangling-link", "directory", "no-metadata", "egg-file",
         "egg-directory"]


@pytest.mark.parametrize("through", ["plain", "link-then-parent"])
def test_an_index_build_sees_what_importlib_metadata_sees(tmp_path: Path, through: str) -> None:
    """Whether a copy has metadata and which entry points it declares, decided partly without
    asking importlib-metadata (with ``os.path``, and not at all where no ``entry_points.txt``
    is), agree with what importlib-metadata answers -- also on an entry that goes up from
    where a symbolic link leads, which text alone would take for another directory."""
    entry = tmp_path / "real" / "site"
    entry.mkdir(parents=True)
    for kind in KINDS:
        _layout(entry, kind)
    if through == "link-then-parent":
        (tmp_path / "real" / "deep").mkdir()
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "link").symlink_to(tmp_path / "real" / "deep")
        entry = tmp_path / "other" / "link" / ".." / "site"
    context = importlib_metadata.DistributionFinder.Context(path=[str(entry)])  # type: ignore[no-untyped-call]
    found = list(importlib_metadata.MetadataPathFinder.find_distributions(context))
    assert len(found) == len(KINDS)
    for dist in found:
        probe = getattr(dist, "_has_metadata", None)  # importlib-metadata 10's own judgement
        if probe is not None:
            assert _metadata.Copy(dist).has_metadata == probe(), dist._path
    index = _metadata.index_entry(str(entry), GROUP, None)
    compat = {d.key: [(e.name, e.value) for e in d.entry_points] for d in index.distributions}
    named = {}
    for dist in found:
        selected = [(e.name, e.value) for e in dist.entry_points.select(group=GROUP)]
        if selected:
            named[canonicalize_name(dist._normalized_name)] = selected
    assert named == {"md-declared": [("thing", "md_declared:thing")],
                     "md-egg-directory": [("thing", "md_egg_directory:thing")],
                     "md-no-metadata": [("thing", "md_no_metadata:thing")]}
    assert compat == named
    assert {d.metadata for d in index.distributions} == {
        str(entry / f"md_{key[3:].replace('-', '_')}-1.0.{'egg' if 'egg' in key else 'dist'}-info")
        for key in named}


def test_distribution_names_are_importlib_metadata_s_in_packaging_s_form(tmp_path: Path) -> None:
    """An index names each copy by what importlib-metadata tells copies apart by, in packaging's
    form -- from importlib-metadata's own normalization for its own class, from packaging for a
    subclass, which may name itself otherwise."""
    stems = {"Md.Odd__Name-1.0.dist-info": ("METADATA", "Md.Odd__Name"),
             "MD_Upper.egg-info": ("PKG-INFO", "MD_Upper"),
             "md-dashed-1.0.dist-info": ("METADATA", "md-dashed")}
    for stem, (core, name) in stems.items():
        (tmp_path / stem).mkdir()
        (tmp_path / stem / core).write_text(f"Metadata-Version: 2.1\nName: {name}\n"
                                            "Version: 1.0\n", encoding="utf-8")
        (tmp_path / stem / "entry_points.txt").write_text(f"[{GROUP}]\nthing = m:thing\n",
                                                          encoding="utf-8")
    context = importlib_metadata.DistributionFinder.Context(path=[str(tmp_path)])  # type: ignore[no-untyped-call]
    found = list(importlib_metadata.MetadataPathFinder.find_distributions(context))
    index = _metadata.index_entry(str(tmp_path), GROUP, None)
    keys = sorted(d.key for d in index.distributions)
    assert keys == sorted(canonicalize_name(d._normalized_name) for d in found)
    assert {"md-odd-name", "md-upper"} <= set(keys)

    class Renamed(importlib_metadata.PathDistribution):
        @property
        def _normalized_name(self) -> str:
            return "Md.Odd__Name"

    assert _metadata._key(_metadata.Copy(Renamed(tmp_path / "md-dashed-1.0.dist-info"))) == (
        "md-odd-name")


# -- METADATA edited after installation -------------------------------------------------------


def edit_metadata(info: Path, before_requirements: bytes) -> None:
    """Put ``before_requirements`` into ``info``'s METADATA just before its first
    Requires-Dist header."""
    path = info / "METADATA"
    text = path.read_bytes()
    at = text.index(b"Requires-Dist:")
    path.write_bytes(text[:at] + before_requirements + text[at:])


@pytest.mark.parametrize(("oddity", "gated"), [
    pytest.param(b"Summary: one\fpage\n", True, id="form-feed"),
    pytest.param("Summary: one\u2028line\n".encode(), True, id="line-separator"),
    # A line that is no header ends the headers: what follows is the description.
    pytest.param(b"Summary: one\nno colon on this line\n", False, id="line-without-colon"),
])
def test_header_oddities(copy: Any, oddity: bytes, gated: bool) -> None:
    site = copy("base")
    edit_metadata(site / "md_licensed_setuptools-1.0.dist-info", oddity)
    cold, _ = cold_and_warm([site])
    assert ("md-licensed-setuptools" in cold.gated) is gated
    assert "md-licensed-hatchling" in cold.gated


def test_metadata_that_is_not_utf8(copy: Any) -> None:
    site = copy("base")
    info = site / "md_alpha-1.0.dist-info"
    edit_metadata(info, b"Summary: caf\xe9\n")
    cold, _ = cold_and_warm([site])
    # importlib-metadata still lists its entry points (and cannot tell its version)...
    assert ("md-alpha", "", str(info), "alpha-one") in cold.counted
    # ... and compat_plugin says that its requirements could not be checked.
    (warning,) = [w for w in cold.warnings() if str(info) in w]
    assert "requirements are not checked" in warning


# -- Two copies of one distribution ------------------------------------------------------------


def test_two_copies_in_one_directory(copy: Any) -> None:
    both = copy("twin1", "both")
    shutil.copytree(copy("twin2") / "md_twin-2.0.dist-info", both / "md_twin-2.0.dist-info")
    cold, _ = cold_and_warm([both, copy("base")])
    # Which one comes first is the directory listing's order, for both libraries alike.
    (winner,) = copies(cold, "md-twin")
    assert winner in {("1.0", "md_twin-1.0.dist-info"), ("2.0", "md_twin-2.0.dist-info")}
    assert len(cold.shadowed) == 1


@pytest.mark.parametrize("order", ["upgrade-first", "upgrade-last"])
def test_two_copies_on_two_entries(copy: Any, order: str) -> None:
    site, upgrade = copy("base"), copy("alpha2")
    path = [upgrade, site] if order == "upgrade-first" else [site, upgrade]
    cold, _ = cold_and_warm(path)
    version = "2.0" if order == "upgrade-first" else "1.0"
    assert copies(cold, "md-alpha") == {(version, f"md_alpha-{version}.dist-info")}
    assert {(key, version) for key, version, _ in cold.shadowed} == {
        ("md-alpha", "1.0" if version == "2.0" else "2.0")}


def without_metadata(directory: Path, entry_points: str) -> Path:
    """A ``md_alpha-3.0.dist-info`` in ``directory`` with entry points and no METADATA."""
    info = directory / "md_alpha-3.0.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{entry_points}\n", encoding="utf-8")
    return info


@pytest.mark.parametrize("where", ["same-directory", "earlier-entry"])
def test_copy_without_metadata_yields_to_a_copy_with_it(
    copy: Any, tmp_path: Path, where: str
) -> None:
    site = copy("base")
    front = site if where == "same-directory" else tmp_path / "front"
    nameless = without_metadata(front, "alpha-one = md_alpha:two\nalpha-ghost = md_alpha:ghost")
    path = [site] if where == "same-directory" else [front, site]
    if PREFERS_METADATA:
        cold, _ = cold_and_warm(path)
    else:
        # importlib-metadata before 10 takes whichever copy it finds first; compat_plugin's
        # rule is importlib-metadata 10's on every version.
        cold = compare(path)
        assert compare(path).counted == cold.counted
    assert copies(cold, "md-alpha") == {("1.0", "md_alpha-1.0.dist-info")}
    assert cold.shadowed == {("md-alpha", "", str(nameless))}


def test_copy_whose_metadata_is_not_utf8_still_comes_first(copy: Any) -> None:
    site, front = copy("base"), copy("alpha2", "front")
    metadata = front / "md_alpha-2.0.dist-info" / "METADATA"
    metadata.write_bytes(metadata.read_bytes() + b"Summary: caf\xe9\n")
    cold, _ = cold_and_warm([front, site])
    assert copies(cold, "md-alpha") == {("", "md_alpha-2.0.dist-info")}


# -- Reading one entry (compat_plugin._metadata) ----------------------------------------------


def test_malformed_value_spoils_only_its_own_entry_point(tmp_path: Path) -> None:
    # importlib-metadata before 10 refuses the whole file for one malformed value; pip before
    # Python 3.11 refuses to install it, hence a metadata directory written here.
    info = tmp_path / "md_bad-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: md-bad\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\ngood = md_bad:good\nbroken = md_bad:x:y\n[other.group]\nx = a:b:c\n")
    index = _metadata.index_entry(str(tmp_path), GROUP, None)
    (distribution,) = index.distributions
    assert distribution.entry_points == (
        Declared("good", "md_bad:good", "md_bad", "good"),
        Declared("broken", "md_bad:x:y", None, None),
    )
