"""The virtual environment every benchmark child runs in, created on first use.

It holds the peers and compat_plugin's dependencies -- stevedore, zope.interface, Twisted,
importlib-metadata, packaging -- pinned to the versions the running interpreter has, where it
has them; compat_plugin itself comes from this working tree through ``PYTHONPATH`` (an
editable install would load a finder at every start-up, before the clock, and with it modules
compat_plugin would then find already imported).

Two constraints place it: stevedore keeps no cache for an interpreter under ``/tmp`` (so the
default is ``/var/tmp/compat-plugin-bench-venv``), and the site-wide scenario runs children as
an unprivileged user, who must be able to run the interpreter: the venv is made from the
system's Python (``/usr/bin/python3``) when there is one every user can run, else from this one.

Usage: ``python benchmarks/benchvenv.py [VENV]`` creates (or checks) it and prints its python.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_VENV = Path("/var/tmp/compat-plugin-bench-venv")
# Where the children import this tree's compat_plugin from (the src layout).
PROJECT = Path(__file__).resolve().parent.parent / "src"
# Distribution names as pip takes them.
REQUIREMENTS = ("stevedore", "zope.interface", "twisted", "importlib-metadata", "packaging")
SYSTEM_PYTHON = Path("/usr/bin/python3")

_PROBE = """\
import json, sys
import stevedore, twisted, zope.interface, importlib_metadata, packaging
print(json.dumps({"version": list(sys.version_info[:3]), "base": sys.base_prefix}))
"""


def say(message: str) -> None:
    """Tell what is being done (on stderr, away from the benchmark's report)."""
    print(f"[bench venv] {message}", file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    """The interpreter of ``venv`` (not resolved: its own path is what ``sys.executable``
    says in it)."""
    return venv / "bin" / "python"


def base_python() -> Path:
    """The interpreter to make the venv from: the system's, if every user can run it and it
    is new enough, else this one."""
    try:
        if _everyone_can_run(SYSTEM_PYTHON.resolve()):
            found = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info "
                                    ">= (3, 9))"], capture_output=True, text=True, check=False)
            if found.stdout.strip() == "True":
                return SYSTEM_PYTHON
    except OSError:
        pass
    return Path(sys.executable)


def _everyone_can_run(path: Path) -> bool:
    """Whether every user can reach and run ``path`` (each directory above it searchable)."""
    if not path.exists() or not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


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


def probe(python: Path) -> dict[str, object] | None:
    """What the venv's interpreter is, or None if it lacks something the benchmarks import."""
    if not python.exists():
        return None
    completed = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True,
                               check=False, cwd="/")
    if completed.returncode != 0:
        return None
    found: dict[str, object] = json.loads(completed.stdout)
    return found


def ensure_venv(venv: Path = DEFAULT_VENV) -> Path:
    """Return the python of ``venv``, creating the venv or completing it first if needed."""
    venv = venv.absolute()
    python = venv_python(venv)
    if str(python).startswith("/tmp"):
        raise ValueError(f"{venv} is under /tmp, where stevedore turns its cache off")
    if probe(python) is not None:
        say(f"reusing {venv}")
        return python
    base = base_python()
    say(f"creating {venv} with {base}")
    _run([str(base), "-m", "venv", "--clear", str(venv)])
    # Readable and runnable by every user (the site-wide scenario runs one).
    os.chmod(venv, 0o755)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, *pinned_requirements()])
    if probe(python) is None:
        raise RuntimeError(f"{venv} still cannot import the benchmark's packages")
    say(f"ready: {python}")
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create or check the benchmarks' venv.")
    parser.add_argument("venv", type=Path, nargs="?", default=DEFAULT_VENV)
    args = parser.parse_args(argv)
    print(ensure_venv(args.venv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
