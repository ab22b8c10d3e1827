"""The API reference names every public name; the fault table names tests that exist.

``docs/api.rst`` lists the public names one by one (autodoc's ``automodule :members:`` finds
nothing in a package whose names come from a module-level ``__getattr__``), so a name added to
``__all__`` must be added there too, and a name taken out of ``__all__`` taken out there.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import compat_plugin
import compat_plugin.cli
import compat_plugin.testing
import compat_plugin.twisted

API = Path(__file__).resolve().parent.parent / "docs" / "api.rst"
DIRECTIVE = re.compile(r"^\.\. auto(?:function|class|exception|data|attribute)::\s+([\w.]+)", re.M)


PUBLIC = [compat_plugin, compat_plugin.twisted, compat_plugin.testing]


def documented() -> set[str]:
    return set(DIRECTIVE.findall(API.read_text(encoding="utf-8")))


@pytest.mark.parametrize("module", PUBLIC, ids=lambda m: m.__name__)
def test_every_public_name_is_documented(module: ModuleType) -> None:
    missing = [name for name in module.__all__ if f"{module.__name__}.{name}" not in documented()]
    assert not missing, f"add to docs/api.rst: {missing}"


@pytest.mark.parametrize("module", PUBLIC, ids=lambda m: m.__name__)
def test_only_public_names_are_documented(module: ModuleType) -> None:
    prefix = f"{module.__name__}."
    names = {target[len(prefix):] for target in documented() if target.startswith(prefix)}
    stale = sorted(name for name in names if "." not in name and name not in module.__all__)
    assert not stale, f"not in {module.__name__}.__all__, remove from docs/api.rst: {stale}"


def test_command_line_entry_point_is_documented() -> None:
    assert "compat_plugin.cli.main" in documented()


def test_the_readme_module_map_is_the_package() -> None:
    """The README's architecture section names every module of the package, and no other."""
    readme = (API.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    drawn = set(re.findall(r"\b(_?[a-z_]+)\.py\b", section.split("The flow of one", 1)[0]))
    package = Path(compat_plugin.__file__).parent
    modules = {path.stem for path in package.glob("*.py")}
    assert drawn - {"_compat_plugin_twisted_hook"} == modules
    # Every module the flow of a call names is one of them.
    flow = section.split("The flow of one", 1)[1]
    assert set(re.findall(r"\b(_[a-z_]+)\.[A-Za-z_]", flow)) <= modules


FAULTS = API.parent / "FAULTS.md"
TEST_REFERENCE = re.compile(r"tests/(test_\w+\.py)::(test_\w+)")


def test_every_test_the_fault_table_names_exists() -> None:
    """``docs/FAULTS.md`` says which test proves each row: a test moved or renamed must be
    named anew there."""
    tests = API.parent.parent / "tests"
    references = TEST_REFERENCE.findall(FAULTS.read_text(encoding="utf-8"))
    assert references
    missing = sorted({f"{module}::{name}" for module, name in references
                      if not re.search(rf"^def {name}\(", (tests / module).read_text(
                          encoding="utf-8"), re.M)})
    assert not missing, f"docs/FAULTS.md names tests that do not exist: {missing}"
