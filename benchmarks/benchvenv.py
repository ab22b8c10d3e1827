"""The virtual environment the entry-point benchmarks run in, created on first use.

stevedore keeps no cache when ``sys.executable`` starts with ``/tmp`` (see
``stevedore._cache.Cache``), so a comparison with its cache warm needs an interpreter elsewhere:
a venv outside ``/tmp``, by default ``/var/tmp/compat-plugin-bench-venv``, holding stevedore,
zope.interface, Twisted and this project (editable).  The third-party packages are pinned to
the versions the running interpreter has, where it has them, so both benchmark groups use the
same library versions.  Every contender of the entry-point scenario runs with this venv's
interpreter.

Usage: ``python benchmarks/benchvenv.py [VENV]`` creates (or checks) it and prints its python.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_VENV = Path("/var/tmp/compat-plugin-bench-venv")
PROJECT = Path(__file__).resolve().parent.parent
# Distribution names as pip takes them.
REQUIREMENTS = ("stevedore", "zope.interface", "twisted")

_PROBE = """\
import json, sys
import compat_plugin, stevedore, twisted, zope.interface
print(json.dumps({"version": list(sys.version_info[:3]), "compat_plugin": compat_plugin.__file__}))
"""


def say(message: str) -> None:
    """Tell what is being done (on stderr, away from the benchmark's report)."""
    print(f"[bench venv] {message}", file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    """The interpreter of ``venv`` (not resolved: its own path is what ``sys.executable``
    says in it)."""
    return venv / "bin" / "python"


def pinned_requirements(names: Sequence[str] = REQUIREMENTS) -> list[str]:
    """``name==version`` for each distribution the running interpreter has, else ``name``."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def _run(command: list[str]) -> None:
    say("$ " + " ".join(command))
    subprocess.run(command, check=True)


def _probe(python: Path) -> dict[str, object] | None:
    """What the venv's interpreter has, or None if it lacks something the benchmarks import."""
    if not python.exists():
        return None
    completed = subprocess.run(
        [str(python), "-c", _PROBE], capture_output=True, text=True, check=False, cwd="/"
    )
    if completed.returncode != 0:
        return None
    found: dict[str, object] = json.loads(completed.stdout)
    return found


def _usable(found: dict[str, object] | None) -> bool:
    """Whether a probed venv runs this interpreter's Python version and this project."""
    if found is None:
        return False
    here = Path(str(found["compat_plugin"])).resolve()
    return found["version"] == list(sys.version_info[:3]) and here.is_relative_to(PROJECT)


def ensure_venv(venv: Path = DEFAULT_VENV) -> Path:
    """Return the python of ``venv``, creating the venv or completing it first if needed.

    Reused as it is when its interpreter is this one's Python version and it imports stevedore,
    zope.interface, Twisted and compat_plugin from this project.
    """
    venv = venv.absolute()
    python = venv_python(venv)
    if str(python).startswith("/tmp"):
        raise ValueError(
            f"{venv} is under /tmp, where stevedore turns its cache off: choose another place"
        )
    found = _probe(python)
    if _usable(found):
        say(f"reusing {venv} (stevedore, zope.interface, twisted, compat_plugin from {PROJECT})")
        return python
    if found is not None and found["version"] != list(sys.version_info[:3]):
        say(f"{venv} runs Python {found['version']}, not {list(sys.version_info[:3])}: "
            "recreating it")
        _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    elif not python.exists():
        say(f"creating {venv} with Python {sys.version.split()[0]}")
        _run([sys.executable, "-m", "venv", str(venv)])
    else:
        say(f"{venv} exists but lacks a package or this project: installing")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, *pinned_requirements()])
    _run([*pip, "-e", str(PROJECT)])
    found = _probe(python)
    if not _usable(found):
        raise RuntimeError(f"{venv} still cannot import the benchmark's packages: {found}")
    say(f"ready: {python}")
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create or check the entry-point bench venv.")
    parser.add_argument("venv", type=Path, nargs="?", default=DEFAULT_VENV)
    args = parser.parse_args(argv)
    print(ensure_venv(args.venv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
