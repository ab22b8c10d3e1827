"""compat_plugin.testing, the pytest plugin for plugin authors, exercised the way they use
it: test files run by pytest's own ``pytester``, with the plugin enabled by ``-p``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import runtime_only

pytest_plugins = ["pytester"]

# A plugin distribution's own test file, using every fixture and helper.
AUTHOR_TESTS = '''
import json
import subprocess
import sys

import pytest
from zope.interface import Interface, implementer

import compat_plugin
from compat_plugin import IPlugin, discover, getPlugins
from compat_plugin.testing import expect_plugins, run_python


def test_directory_plugins(plugin_package):
    host = plugin_package("gadgets")
    host.write("ifaces.py", """
        from zope.interface import Interface
        class IGadget(Interface):
            "A gadget."
    """)
    host.module("lamp", """
        from zope.interface import implementer
        from compat_plugin import IPlugin
        from {pkg}.ifaces import IGadget
        @implementer(IPlugin, IGadget)
        class Lamp:
            "Gives light."
        lamp = Lamp()
    """)
    package = host.package()
    from gadgets.ifaces import IGadget
    expect_plugins(IGadget, package, ["gadgets.plugins.lamp:lamp"], errors=[], skipped=[])


def test_an_installed_distribution(plugin_package, make_distribution):
    host = plugin_package("hosting")
    host.write("ifaces.py",
               "from zope.interface import Interface\\nclass ITool(Interface): pass\\n")
    site = make_distribution(
        "acme-tools",
        files={
            "acme_tools/__init__.py": "",
            "acme_tools/hammer.py": (
                "from zope.interface import implementer\\n"
                "from compat_plugin import IPlugin\\n"
                "from hosting.ifaces import ITool\\n"
                "@implementer(IPlugin, ITool)\\n"
                "class Hammer: pass\\n"
                "hammer = Hammer()\\n"
            ),
        },
        entry_points={"hosting.plugins": {"hammer": "acme_tools.hammer:hammer"}},
    )
    assert str(site) in sys.path
    from hosting.ifaces import ITool
    expect_plugins(ITool, host.package(), ["acme_tools.hammer:hammer"])
    (record,) = discover(host.package(), ITool).plugins
    assert (record.origin.distribution, record.origin.entry_point) == ("acme-tools", "hammer")


def test_a_fresh_process(plugin_package):
    host = plugin_package("fresh")
    result = run_python("import fresh.plugins, sys; print(fresh.plugins.__name__)",
                        path=[host.root])
    assert result.stdout.split() == ["fresh.plugins"]


def test_caches_are_this_test_s_own(tmp_path_factory):
    import os
    cache = os.environ["COMPAT_PLUGIN_CACHE_DIR"]
    assert cache.startswith(str(tmp_path_factory.getbasetemp()))
    for variable in ("DISABLE", "NO_CACHE_READ", "NO_CACHE_WRITE"):
        assert "COMPAT_PLUGIN_" + variable not in os.environ
'''


def test_a_test_file_using_every_fixture_passes(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Set where the tests run; each test runs without them.
    for variable in ("DISABLE", "NO_CACHE_READ", "NO_CACHE_WRITE"):
        monkeypatch.setenv("COMPAT_PLUGIN_" + variable, "1")
    pytester.makepyfile(test_author=AUTHOR_TESTS)
    result = pytester.runpytest_subprocess("-p", "compat_plugin.testing", "-q")
    result.assert_outcomes(passed=4)


def test_a_wrong_expectation_fails_with_a_readable_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_wrong='''
def test_wrong(plugin_package):
    from compat_plugin.testing import expect_plugins
    host = plugin_package("wrong")
    host.write("ifaces.py", "from zope.interface import Interface\\nclass I(Interface): pass\\n")
    host.module("one", (
        "from zope.interface import implementer\\n"
        "from compat_plugin import IPlugin\\n"
        "from wrong.ifaces import I\\n"
        "@implementer(IPlugin, I)\\n"
        "class One: pass\\n"
        "one = One()\\n"
    ))
    from wrong.ifaces import I
    expect_plugins(I, host.package(), ["wrong.plugins.one:one", "wrong.plugins.two:two"])
''')
    result = pytester.runpytest_subprocess("-p", "compat_plugin.testing", "-q")
    result.assert_outcomes(failed=1)
    assert ("AssertionError: discover() plugins: expected ['wrong.plugins.one:one', "
            "'wrong.plugins.two:two'], got ['wrong.plugins.one:one'], missing "
            "['wrong.plugins.two:two']") in result.stdout.str()


def test_nothing_leaks_into_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks='''
import os
import sys

SEEN = {}


def test_first(plugin_package, make_distribution):
    host = plugin_package("leaky")
    host.module("one", "")
    site = make_distribution("leaky-extra", files={"leaky_extra/__init__.py": ""})
    import leaky.plugins.one, leaky_extra
    SEEN.update(path=list(sys.path), root=str(host.root), site=str(site),
                cache=os.environ["COMPAT_PLUGIN_CACHE_DIR"], meta=len(sys.meta_path))
    from compat_plugin import getPlugins, IPlugin
    list(getPlugins(IPlugin, host.package()))


def test_second():
    assert SEEN["root"] not in sys.path and SEEN["site"] not in sys.path
    assert not [m for m in sys.modules if m.split(".")[0] in ("leaky", "leaky_extra")]
    assert os.environ["COMPAT_PLUGIN_CACHE_DIR"] != SEEN["cache"]
    assert not os.listdir(os.environ["COMPAT_PLUGIN_CACHE_DIR"])
    assert len(sys.meta_path) == SEEN["meta"]
    from compat_plugin import _resolver
    assert _resolver._resolver is None
    # Nor an entry-point index of the test's group beside the environment's entries.
    import glob
    left = [index for entry in sys.path for index in glob.glob(os.path.join(
        entry or ".", "__pycache__", "compat_plugin.entry-points.leaky.plugins.*"))]
    assert not left
''')
    result = pytester.runpytest_subprocess("-p", "compat_plugin.testing", "-q")
    result.assert_outcomes(passed=2)


def test_distributions_made_into_one_site_install_as_pip_installs(
    pytester: pytest.Pytester,
) -> None:
    """A drop-in distribution into its host's site puts its module into the host's plugin
    directory; a second version replaces the first; one distribution made twice is made."""
    pytester.makepyfile(test_site='''
import os
from compat_plugin import IPlugin
from compat_plugin.testing import expect_plugins

LAMP = (
    "from zope.interface import implementer\\n"
    "from compat_plugin import IPlugin\\n"
    "@implementer(IPlugin)\\n"
    "class Lamp: pass\\n"
    "lamp = Lamp()\\n"
)
INIT = ("from compat_plugin import pluginPackagePaths\\n"
        "__path__.extend(pluginPackagePaths(__name__))\\n")


def test_drop_in_and_upgrade(make_distribution):
    site = make_distribution("gadgets", files={"gadgets/__init__.py": "",
                                               "gadgets/plugins/__init__.py": INIT})
    make_distribution("gadget-lamp", site=site, files={"gadgets/plugins/lamp.py": LAMP})
    assert {"__init__.py", "lamp.py"} <= set(os.listdir(site / "gadgets" / "plugins"))
    import gadgets.plugins
    expect_plugins(IPlugin, gadgets.plugins, ["gadgets.plugins.lamp:lamp"])

    make_distribution("acme", site=site, files={"acme/__init__.py": "", "acme/a.py": ""})
    make_distribution("acme", site=site, version="2.0",
                      files={"acme/__init__.py": "", "acme/b.py": ""})
    assert sorted(name for name in os.listdir(site) if name.startswith("acme")) == [
        "acme", "acme-2.0.dist-info"]
    assert {"__init__.py", "b.py"} <= set(os.listdir(site / "acme"))
    assert not (site / "acme" / "a.py").exists()


def test_one_distribution_made_twice(make_distribution):
    first = make_distribution("twice", files={"twice.py": ""})
    second = make_distribution("twice", files={"twice.py": ""})
    assert first != second
    assert {"twice-1.0.dist-info", "twice.py"} <= set(os.listdir(second))
''')
    result = pytester.runpytest_subprocess("-p", "compat_plugin.testing", "-q")
    result.assert_outcomes(passed=2)


def test_the_plugin_is_not_loaded_unless_asked_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
def test_plain(request):
    assert not request.config.pluginmanager.has_plugin("compat_plugin.testing")
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    """The README's complete example of a plugin distribution's test, run as written."""
    text = README.read_text(encoding="utf-8")
    marker = "<!-- tests/test_testing.py runs this example -->"
    example = text.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(test_lamps=example)
    result = pytester.runpytest_subprocess("-p", "compat_plugin.testing", "-q")
    result.assert_outcomes(passed=1)


def test_building_without_a_recent_setuptools_says_what_to_install(tmp_path: Path) -> None:
    """A new virtual environment's setuptools (none from Python 3.12 on, an older one before)
    cannot build the projects: the failure says so first."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    code = ("import importlib.metadata as m, pathlib, sys\n"
            "from compat_plugin._wheels import build_wheel\n"
            "try:\n    has = 'setuptools ' + m.version('setuptools')\n"
            "except m.PackageNotFoundError:\n    has = 'no setuptools'\n"
            "try:\n    build_wheel('acme-x', pathlib.Path(sys.argv[1]), files={'x.py': ''})\n"
            "except AssertionError as failed:\n    print(has)\n    print(failed)\n")
    done = subprocess.run(
        [python, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(runtime_only(tmp_path / "runtime"))})
    assert done.returncode == 0, done.stderr
    has, first = done.stdout.splitlines()[:2]
    assert first == ("building a distribution needs setuptools 70.1 or later where the tests "
                     f"run, and {python} has {has}: python -m pip install 'setuptools>=70.1'")
