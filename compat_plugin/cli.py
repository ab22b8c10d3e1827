"""The ``compat-plugin`` command: see, explain, cache and migrate plugin discovery.

Exit status: 0 on success, 1 when the answer is "no" (a plugin module failed, a name is not a
candidate), 2 for bad input (unknown package, not a plugin package, unknown interface, bad
option) -- always one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from . import _twisted_site
from ._cache import DirectoryCache, fallback_path, primary_path, user_cache_root
from ._entrypoints import (
    current_index,
    distribution_files,
    index_files,
    index_path,
    path_stamps,
)
from ._interfaces import resolve_interface
from ._records import LoadError, Origin, PluginRecord, Skip
from ._resolver import Resolution, forget_state, plugin_directories, resolve

PROG = "compat-plugin"


class UsageError(Exception):
    """Bad input: reported as one line on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _package(name: str) -> ModuleType:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(f"no package named {name!r}") from None
        raise UsageError(f"cannot import {name}: {exc}") from None
    except (Exception, SystemExit) as exc:
        raise UsageError(f"cannot import {name}: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, "__path__"):
        raise UsageError(f"{name} is a module, not a plugin package")
    return module


def _source(origin: Origin) -> str:
    if origin.kind == "directory":
        return str(origin.path)
    return f"{origin.distribution} {origin.version} ({origin.entry_point})"


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _short(names: Sequence[str]) -> str:
    return ", ".join(name.rpartition(".")[2] for name in names)


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _origin_json(origin: Origin) -> dict[str, Any]:
    return dict(origin._asdict())


def _error_line(error: BaseException) -> str:
    """Where ``error`` was raised: ``file:line: source`` of the innermost frame that is not
    the import system's own (``<frozen ...>``); empty if there is none."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<frozen ")
    ]
    if not frames:
        return ""
    frame = frames[-1]
    source = (frame.line or "").strip()
    return f"{frame.filename}:{frame.lineno}" + (f": {source}" if source else "")


def _describe_error(error: LoadError) -> str:
    text = f"{type(error.error).__name__}: {error.error}"
    where = _error_line(error.error)
    return f"{text} (raised at {where})" if where else text


# -- list ------------------------------------------------------------------------------------


def _interface_filter(resolution: Resolution, name: str | None) -> str | None:
    """Check an --interface name: known to a record, or importable as an interface."""
    if name is None:
        return None
    if any(name in record.interfaces for record in resolution.plugins()):
        return name
    if resolve_interface(name) is None:
        raise UsageError(f"unknown interface {name!r}")
    return name


def _cmd_list(args: argparse.Namespace) -> int:
    resolution = resolve(_package(args.package))
    wanted = _interface_filter(resolution, args.interface)
    records = [r for r in resolution.plugins() if wanted is None or wanted in r.interfaces]
    if args.json:
        document = {
            "plugins": [_record_json(record) for record in records],
            "errors": [_load_error_json(error) for error in resolution.errors],
        }
        print(json.dumps(document, indent=2))
        return 0
    rows: list[Sequence[str]] = [
        (_source(r.origin), r.qualified_name, _short(r.provided), _first_line(r.description))
        for r in records
    ]
    print(_table(("SOURCE", "PLUGIN", "PROVIDES", "DESCRIPTION"), rows))
    for error in resolution.errors:
        print(f"error: {error.target} from {error.origin}: {_describe_error(error)}",
              file=sys.stderr)
    return 0


def _record_json(record: PluginRecord) -> dict[str, Any]:
    return {
        "module": record.module,
        "attribute": record.attribute,
        "description": record.description,
        "provided": list(record.provided),
        "interfaces": list(record.interfaces),
        "origin": _origin_json(record.origin),
    }


def _load_error_json(error: LoadError) -> dict[str, Any]:
    return {
        "target": error.target,
        "origin": _origin_json(error.origin),
        "error": f"{type(error.error).__name__}: {error.error}",
        "raised_at": _error_line(error.error) or None,
    }


# -- explain ---------------------------------------------------------------------------------


def _names_of(target: str, origin: Origin) -> set[str]:
    module, _, attribute = target.partition(":")
    names = {target, module, module.rpartition(".")[2], attribute}
    names.update(filter(None, [origin.distribution, origin.entry_point]))
    return names - {""}


def _cmd_explain(args: argparse.Namespace) -> int:
    resolution = resolve(_package(args.package))
    name = args.name
    lines: list[str] = []
    for record in resolution.plugins():
        if name in _names_of(record.qualified_name, record.origin):
            lines.append(f"{record.qualified_name}: returned, from {record.origin}; provides "
                         f"{_short(record.provided)}")
    for module in resolution.modules:
        if not module.plugins and name in _names_of(module.module, module.origin):
            lines.append(f"{module.module}: not returned: imported from {module.origin}, but no "
                         "module-level object in it provides IPlugin")
    for skip in resolution.skipped:
        if name in _names_of(skip.target, skip.origin):
            lines.append(f"{skip.target}: not returned: {skip.reason} ({_explain_origin(skip)})")
    for error in resolution.errors:
        if name in _names_of(error.target, error.origin):
            lines.append(f"{error.target}: not returned: {_error_kind(error)} "
                         f"({error.origin}): {_describe_error(error)}")
    if not lines:
        print(f"{name}: not a plugin candidate of {args.package}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _explain_origin(skip: Skip) -> str:
    return str(skip.origin) if skip.origin.entry_point or skip.origin.kind == "directory" else (
        f"{skip.origin.distribution} {skip.origin.version} at {skip.origin.path}"
    )


def _error_kind(error: LoadError) -> str:
    from ._records import IncompatiblePlugin, MalformedEntryPoint, NotAPlugin

    kinds = {IncompatiblePlugin: "incompatible with the host", NotAPlugin: "does not provide "
             "IPlugin", MalformedEntryPoint: "malformed entry point"}
    for kind, text in kinds.items():
        if isinstance(error.error, kind):
            return text
    return "import error"


# -- cache -----------------------------------------------------------------------------------


def _cache_files(package: ModuleType) -> list[str]:
    """Every cache file that may describe ``package``: beside and for each of its directories,
    and every entry-point index of its group (one per ``sys.path`` it was used with)."""
    files: list[str] = []
    for directory in list(getattr(package, "__path__", ())):
        if isinstance(directory, str):
            absolute = os.path.abspath(directory)
            files += [primary_path(absolute), fallback_path(absolute)]
    return files + index_files(package.__name__)


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        print(f"cannot remove {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _cmd_regenerate(args: argparse.Namespace) -> int:
    packages = [_package(name) for name in args.packages]
    failed = 0
    for package in packages:
        for path in _cache_files(package):
            _remove(path)
        forget_state()
        resolution = resolve(package)
        count = sum(1 for _ in resolution.plugins())
        print(f"{package.__name__}: {_count(len(resolution.modules), 'module')}, "
              f"{_count(count, 'plugin')}")
        for error in resolution.errors:
            failed += 1
            print(f"  FAILED {error.target} ({error.origin}): {_describe_error(error)}")
    return 1 if failed else 0


def _cmd_clear(args: argparse.Namespace) -> int:
    removed = 0
    for package in [_package(name) for name in args.packages]:
        removed += sum(_remove(path) for path in _cache_files(package))
    if not args.packages:
        root = user_cache_root()
        for folder, _, files in os.walk(root):
            removed += sum(_remove(os.path.join(folder, f)) for f in files if f.endswith(".json"))
    print(f"removed {_count(removed, 'cache file')}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    rows: list[Sequence[str]] = []
    for name in args.packages:
        package = _package(name)
        index = current_index(package.__name__)
        taken: set[str] = set()
        for listing in plugin_directories(package):
            # Read only: a module is current if the cache holds its present stamp.
            cache = DirectoryCache(listing, package.__name__, index.environment)
            own = [c for c in listing.candidates if c.name not in taken]
            taken.update(c.name for c in own)
            missing = sorted(c.name for c in own if cache.lookup(c) is None)
            current = f"no: {', '.join(missing)} not cached" if missing else "yes"
            for path in cache.locations():
                if os.path.isfile(path):
                    rows.append((name, listing.directory, path, str(os.path.getsize(path)),
                                 current))
        path = index_path(package.__name__, index.path)
        if os.path.isfile(path):
            fresh = index.stamps == path_stamps(index.path) and not index.dirty
            rows.append((name, "entry points", path, str(os.path.getsize(path)),
                         "yes" if fresh else "no"))
    print(_table(("PACKAGE", "FOR", "CACHE FILE", "BYTES", "CURRENT"), rows))
    return 0


# -- migrate ---------------------------------------------------------------------------------


def _distribution_files(name: str) -> set[str]:
    path = [entry for entry in sys.path if isinstance(entry, str)]
    files = distribution_files(name, path)
    if files is None:
        raise UsageError(f"no distribution named {name!r}")
    return files


def _cmd_migrate(args: argparse.Namespace) -> int:
    if args.to is not None and not all(part.isidentifier() for part in args.to.split(".")):
        raise UsageError(f"--to needs a dotted package name, not {args.to!r}")
    package = _package(args.package)
    owned = _distribution_files(args.dist) if args.dist else None
    resolution = resolve(package)
    # Every directory module counts, plugins or not (some define them only conditionally),
    # and those that fail to import too: a migration must not lose any.
    found = {m.module: m.origin for m in resolution.modules if m.origin.kind == "directory"}
    failed = {e.target: e.origin for e in resolution.errors if e.origin.kind == "directory"}
    directories = [listing.directory for listing in plugin_directories(package)]
    order = {directory: position for position, directory in enumerate(directories)}
    entries: list[tuple[str, str]] = []
    for module, origin in sorted(
        {**found, **failed}.items(), key=lambda item: (order.get(str(item[1].path), 0), item[0])
    ):
        short = module.rpartition(".")[2]
        if owned is not None and not _module_owned(str(origin.path), short, owned):
            continue
        if module in failed:
            print(f"warning: {module} does not import here; check its entry point",
                  file=sys.stderr)
        entries.append((short, f"{args.to}.{short}" if args.to else module))
    if not entries:
        which = f" installed by {args.dist}" if args.dist else ""
        print(f"{args.package} has no directory plugin modules{which}", file=sys.stderr)
        return 1
    group = package.__name__
    if args.format == "setup.cfg":
        print("[options.entry_points]")
        print(f"{group} =")
        for name, value in entries:
            print(f"    {name} = {value}")
    else:
        print(f'[project.entry-points."{group}"]')
        for name, value in entries:
            print(f'{name} = "{value}"')
    return 0


def _module_owned(directory: str, short: str, owned: set[str]) -> bool:
    candidates = [f"{short}.py", f"{short}.pyc", f"{short}/__init__.py", f"{short}/__init__.pyc"]
    return any(os.path.realpath(os.path.join(directory, c)) in owned for c in candidates)


# -- entry -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="See, explain, cache and migrate plugin discovery.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = commands.add_parser("list", help="every plugin of a package, with its source")
    listing.add_argument("package", help="the plugin package, e.g. matsim.plugins")
    listing.add_argument("--interface", metavar="DOTTED.NAME", help="only plugins providing it")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_cmd_list)

    explain = commands.add_parser("explain", help="why a plugin is or is not returned")
    explain.add_argument("package")
    explain.add_argument("name", help="module, attribute, module:attr, distribution or entry point")
    explain.set_defaults(run=_cmd_explain)

    cache = commands.add_parser("cache", help="regenerate, clear or inspect caches")
    actions = cache.add_subparsers(dest="action", required=True, parser_class=_Parser)
    regenerate = actions.add_parser("regenerate", help="rescan packages and rewrite their caches")
    regenerate.add_argument("packages", nargs="+", metavar="PACKAGE")
    regenerate.set_defaults(run=_cmd_regenerate)
    clear = actions.add_parser("clear", help="remove caches (all per-user ones if no PACKAGE)")
    clear.add_argument("packages", nargs="*", metavar="PACKAGE")
    clear.set_defaults(run=_cmd_clear)
    info = actions.add_parser("info", help="where each cache lives, its size, whether current")
    info.add_argument("packages", nargs="+", metavar="PACKAGE")
    info.set_defaults(run=_cmd_info)

    migrate = commands.add_parser("migrate", help="print entry points for directory plugins")
    migrate.add_argument("package")
    migrate.add_argument("--dist", metavar="NAME", help="only modules this distribution installs")
    migrate.add_argument("--format", choices=("pyproject", "setup.cfg"), default="pyproject")
    migrate.add_argument("--to", metavar="PACKAGE",
                         help="the package the modules will live in (default: where they are)")
    migrate.set_defaults(run=_cmd_migrate)

    twisted = commands.add_parser(
        "twisted", help="Twisted's plugin lookups through compat_plugin in every interpreter of "
        "this environment, child processes included"
    )
    twisted.add_argument("action", choices=("enable", "disable", "status"))
    twisted.set_defaults(run=_twisted_site.command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    The library's log records are held back while it runs: every problem they describe is
    part of the command's own output.
    """
    import logging

    library_logger = logging.getLogger("compat_plugin")
    quiet = logging.NullHandler()
    propagate = library_logger.propagate
    library_logger.addHandler(quiet)
    library_logger.propagate = False
    try:
        args = _parser().parse_args(argv)
        status: int = args.run(args)
    except UsageError as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    finally:
        library_logger.removeHandler(quiet)
        library_logger.propagate = propagate
    return status
