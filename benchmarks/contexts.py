"""Where the benchmark children run: a corpus on disk, private caches, an interpreter, a
working directory, a user -- and the one way a child is run.

A context is made once per scenario group; every child of the group runs in it, with
``PYTHONPATH`` holding the corpus and this working tree (so children import the compat_plugin
being measured, not an installed one), ``COMPAT_PLUGIN_CACHE_DIR`` a private directory, and,
for the site-wide group, the identity of an unprivileged user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchvenv import PROJECT

NOBODY = 65534


@dataclass(frozen=True)
class Context:
    """What the children of one scenario group share.

    ``roots`` go on ``PYTHONPATH`` (ahead of this working tree); ``plugin_dir`` is the
    plugin directory whose caches the cold scenarios clear; ``group_name`` the entry-point
    group of its plugin package; ``entries`` the children's ``sys.path`` (learnt from one
    child); ``substitutions`` fill ``$name`` placeholders in the children's code; ``user`` runs
    children as that uid.
    """

    group: str
    python: str
    workdir: Path
    roots: tuple[Path, ...]
    plugin_dir: Path
    group_name: str
    user_cache: Path
    substitutions: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    user: int | None = None
    entries: tuple[Path, ...] = ()

    def with_entries(self) -> Context:
        """This context, knowing its children's ``sys.path``."""
        import dataclasses
        import json

        found = self.run("import json, sys; print(json.dumps(sys.path))")
        if found.returncode != 0:
            raise RuntimeError(f"cannot start a child of {self.group}: {found.stderr}")
        paths = [Path(entry or self.workdir) for entry in json.loads(found.stdout)]
        return dataclasses.replace(self, entries=tuple(dict.fromkeys(paths)))

    def environment(self) -> dict[str, str]:
        """The environment every child runs in."""
        env = dict(os.environ)
        for name in ("PYTHONDONTWRITEBYTECODE", "COMPAT_PLUGIN_NO_CACHE_WRITE",
                     "COMPAT_PLUGIN_NO_CACHE_READ", "COMPAT_PLUGIN_DISABLE", "PYTHONSTARTUP",
                     "PYTHONPATH", "XDG_CACHE_HOME"):
            env.pop(name, None)
        env["PYTHONPATH"] = os.pathsep.join(map(str, [*self.roots, PROJECT]))
        env["COMPAT_PLUGIN_CACHE_DIR"] = str(self.user_cache)
        env.update(self.env)
        return env

    def run(self, code: str, *, timeout: float = 300,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in a fresh interpreter of this context and capture its output."""
        groups: list[int] | None = None if self.user is None else []
        return subprocess.run(
            [self.python, "-c", code], env={**self.environment(), **(env or {})},
            cwd=self.workdir, capture_output=True, text=True, timeout=timeout, check=False,
            user=self.user, group=self.user, extra_groups=groups,
        )


Prepare = Callable[[Context], None]


def clear_directory_cache(context: Context) -> None:
    """Remove compat_plugin's caches of the plugin directory (beside it, and per user),
    keeping the compiled modules and the entry-point indexes."""
    for path in (context.plugin_dir / "__pycache__").glob("compat_plugin.*.json"):
        path.unlink()
    for path in context.user_cache.glob("*.json"):
        path.unlink()


def clear_indexes(context: Context) -> None:
    """Remove the entry-point indexes of the context's group kept beside its children's
    ``sys.path`` entries."""
    pattern = f"compat_plugin.entry-points.{context.group_name}.*.json"
    for entry in context.entries:
        for path in (entry / "__pycache__").glob(pattern):
            path.unlink()


def clear_compat_caches(context: Context) -> None:
    """Remove every cache compat_plugin keeps for the context: the directory's, the group's
    entry-point indexes, and the per-user cache (the compiled modules stay)."""
    clear_directory_cache(context)
    clear_indexes(context)
    for path in context.user_cache.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def clear_twisted_cache(context: Context) -> None:
    """Remove Twisted's ``dropin.cache`` of the plugin directory."""
    (context.plugin_dir / "dropin.cache").unlink(missing_ok=True)


def open_to_everyone(base: Path) -> None:
    """Directories 0755 and files 0644 below (and including) ``base``: readable by every user,
    writable by their owner alone."""
    base.chmod(0o755)
    for directory, dirnames, filenames in os.walk(base):
        for name in dirnames:
            os.chmod(os.path.join(directory, name), 0o755)
        for name in filenames:
            os.chmod(os.path.join(directory, name), 0o644)


def owned_by(path: Path, uid: int) -> Path:
    """``path``, a directory, made and handed to user ``uid`` (when running as root)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path
