"""Checks, made from outside, that each library's cache is what the warm rows measure.

A warm compat_plugin call must read no installed metadata (its DEBUG records say when it
does), import neither importlib-metadata nor packaging, and import only the plugin modules
whose records match; stevedore's cache must be read, not rebuilt (its file is not rewritten).
Each check is one child of the scenario's context using public interfaces only.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

from contexts import Context
from measure import ChildFailed

_COMPAT = """\
import json, logging, sys
$setup
records = []
handler = logging.Handler()
handler.emit = records.append
logger = logging.getLogger("compat_plugin")
logger.addHandler(handler)
logger.setLevel(logging.DEBUG)
before = set(sys.modules)
from compat_plugin import getPlugins
found = list(getPlugins($interface, $package))
imported = sorted(m for m in set(sys.modules) - before
                  if not m.startswith("compat_plugin") and m not in sys.builtin_module_names)
print(json.dumps({"found": len(found), "imported": imported,
                  "read": [r.getMessage() for r in records
                           if r.getMessage().startswith("reading installed metadata")],
                  "warnings": [r.getMessage() for r in records if r.levelno >= 30]}))
"""

_READERS = ("importlib_metadata", "importlib.metadata", "packaging")


def _child(context: Context, code: str) -> dict[str, Any]:
    completed = context.run(Template(code).substitute(context.substitutions), timeout=120)
    if completed.returncode != 0:
        raise ChildFailed(f"cache check: exit status {completed.returncode}\n{completed.stderr}")
    found: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return found


def check_compat(context: Context, setup: str, interface: str, package: str,
                 wanted: list[str]) -> str:
    """That a warm call in ``context`` reads no metadata and imports just ``wanted`` (with
    their packages); a line saying so, else ChildFailed."""
    code = Template(_COMPAT).safe_substitute(setup=setup, interface=interface, package=package)
    found = _child(context, code)
    packages = {name.rpartition(".")[0] for name in wanted} - {""}
    tops = {name.split(".")[0] for name in wanted}
    unexpected = [m for m in found["imported"] if m not in {*wanted, *packages, *tops}]
    readers = [m for m in found["imported"] if m.split(".")[0] in _READERS or m in _READERS]
    if (found["read"] or readers or unexpected or found["warnings"]
            or found["found"] != len(wanted)):
        raise ChildFailed(f"{context.group}: compat_plugin's caches are not used as expected: "
                          f"found {found['found']} of {len(wanted)}; read {found['read']}; "
                          f"also imported {(readers or unexpected)[:10]}; {found['warnings']}")
    return (f"{context.group}: a warm compat_plugin call read no metadata, imported neither "
            f"importlib-metadata nor packaging, and imported only the {len(wanted)} plugin "
            f"modules that match")


_STEVEDORE = """\
from stevedore import ExtensionManager
ExtensionManager($group, invoke_on_load=False)
"""


def check_stevedore(context: Context, cache_dir: Path) -> str:
    """That stevedore's warm run reads its cache file without rewriting it."""
    def stamps() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in cache_dir.glob("*")} if (
            cache_dir.is_dir()) else {}

    before = stamps()
    _ = context.run(Template(_STEVEDORE).substitute(context.substitutions), timeout=120)
    after = stamps()
    if not before or before != after:
        raise ChildFailed(f"stevedore's cache in {cache_dir} is not used: {before} -> {after}")
    return f"{context.group}: stevedore read its cache in {cache_dir} and did not rewrite it"
