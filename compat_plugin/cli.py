"""The ``compat-plugin`` command: see, explain, cache and migrate plugin discovery.

Exit status (the same for every command):

====  =====================================================================================
0     success: every candidate loaded (``list``), the name is returned (``explain``), ...
1     the answer is "no" or something failed: ``list`` with load errors, ``explain`` of a name
      that is not returned, ``cache regenerate`` or ``migrate`` with modules failing to import
2     bad input: an unknown option or command, an unknown package, a package that is not a
      plugin package, an unknown or ambiguous interface name
====  =====================================================================================

Errors are one line on stderr, never a traceback.  ``--json`` output is described in the
README; tables fit an 80-column terminal (paths shortened; ``--wide`` for full paths).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from ._records import Discovery, LoadError, Origin, PluginRecord, Skip

PROG = "compat-plugin"


class UsageError(Exception):
    """Bad input: one line on stderr and exit status 2.  ``command`` names the sub-command
    whose usage is shown with it."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        command = self.prog[len(PROG):].strip() or None
        raise UsageError(message, command)


# -- what every command shares --------------------------------------------------------------------


def _package(name: str, command: str) -> ModuleType:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(f"no package named {name!r}", command) from None
        raise UsageError(f"cannot import {name}: {exc}", command) from None
    except (Exception, SystemExit) as exc:
        raise UsageError(f"cannot import {name}: {type(exc).__name__}: {exc}", command) from None
    if not hasattr(module, "__path__"):
        raise UsageError(f"{name} is a module, not a plugin package", command)
    return module


def _resolve(package: ModuleType) -> Discovery:
    from ._resolver import resolver

    return resolver().resolve(package)


def short_path(path: str | None, wide: bool = False) -> str:
    """``path`` as a table shows it: relative to the ``sys.path`` entry holding it, else with
    ``~`` for the home directory; unchanged with ``wide``."""
    if not path or wide:
        return path or ""
    absolute = os.path.abspath(path)
    entries = sorted((os.path.abspath(e or ".") for e in sys.path if isinstance(e, str)),
                     key=len, reverse=True)
    for entry in entries:
        if absolute.startswith(entry + os.sep):
            return absolute[len(entry) + 1:]
    home = os.path.expanduser("~")
    if home not in ("", "/") and absolute.startswith(home + os.sep):
        return "~" + absolute[len(home):]
    return absolute


def _source(origin: Origin, wide: bool) -> str:
    if origin.kind == "directory":
        return short_path(origin.path, wide)
    return f"{origin.distribution} {origin.version} ({origin.entry_point})"


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _short(names: Sequence[str]) -> str:
    return ", ".join(name.rpartition(".")[2] for name in names)


def _table(header: Sequence[str], rows: list[Sequence[str]], width: int | None = None) -> str:
    """Rows in aligned columns; the last column is cut to keep lines within ``width``."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        if width is not None and len(line) > width:
            line = line[: width - 1] + "…"
        lines.append(line)
    return "\n".join(lines)


def _width(wide: bool) -> int | None:
    return None if wide else max(80, min(100, _columns()))


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _print_json(document: object) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


def origin_json(origin: Origin) -> dict[str, Any]:
    return dict(origin._asdict())


def record_json(record: PluginRecord) -> dict[str, Any]:
    return {
        "module": record.module,
        "attribute": record.attribute,
        "qualified_name": record.qualified_name,
        "description": record.description,
        "provided": list(record.provided),
        "interfaces": list(record.interfaces),
        "origin": origin_json(record.origin),
    }


def error_json(error: LoadError) -> dict[str, Any]:
    return {
        "target": error.target,
        "origin": origin_json(error.origin),
        "kind": error.kind,
        "exception": type(error.error).__name__,
        "message": str(error.error),
        "raised_at": error.raised_at() or None,
    }


def skip_json(skip: Skip) -> dict[str, Any]:
    return {"target": skip.target, "origin": origin_json(skip.origin), "reason": skip.reason}


def describe_error(error: LoadError) -> str:
    """The exception, and where the plugin's own code raised it (or which entry point named
    what could not be imported)."""
    text = f"{type(error.error).__name__}: {error.error}"
    where = error.raised_at()
    if where:
        return f"{text} (raised at {where})"
    if error.origin.kind == "entry-point":
        return f"{text} (named by entry point {error.origin.entry_point!r} of " \
               f"{error.origin.distribution} {error.origin.version})"
    return text


def _not_a_plugin_package(package: ModuleType, found: Discovery, command: str) -> None:
    """Refuse a package that has neither plugin modules with plugins nor entry points."""
    if found.plugins or found.errors or found.skipped:
        return
    name = package.__name__
    hint = ""
    if importlib.util.find_spec(f"{name}.plugins") is not None:
        hint = f"; did you mean {name}.plugins?"
    raise UsageError(
        f"{name} is not a plugin package: none of its {_count(len(found.modules), 'module')} "
        f"holds a plugin and no installed distribution declares entry points in the group "
        f"{name!r}{hint}", command)


# -- list ------------------------------------------------------------------------------------------


def _interface_filter(found: Discovery, name: str | None) -> str | None:
    """The dotted interface name ``name`` stands for: itself if some record or importable
    module knows it; a short name if exactly one interface the plugins provide is called so."""
    if name is None:
        return None
    known = {iface for record in found.plugins for iface in record.interfaces}
    if name in known:
        return name
    if "." not in name:
        candidates = sorted(iface for iface in known if iface.rpartition(".")[2] == name)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise UsageError(f"interface {name!r} is ambiguous: {', '.join(candidates)}", "list")
    from ._interfaces import resolve_interface

    if resolve_interface(name) is None:
        provided = sorted({i.rpartition(".")[2] for i in known} - {"IPlugin", "Interface"})
        hint = f" (the plugins provide {', '.join(provided)})" if provided else ""
        raise UsageError(f"unknown interface {name!r}{hint}", "list")
    return name


def _cmd_list(args: argparse.Namespace) -> int:
    package = _package(args.package, "list")
    found = _resolve(package)
    _not_a_plugin_package(package, found, "list")
    wanted = _interface_filter(found, args.interface)
    records = [r for r in found.plugins if wanted is None or wanted in r.interfaces]
    if args.json:
        _print_json({
            "package": package.__name__,
            "interface": wanted,
            "plugins": [record_json(record) for record in records],
            "errors": [error_json(error) for error in found.errors],
            "skipped": [skip_json(skip) for skip in found.skipped],
        })
    else:
        rows: list[Sequence[str]] = [
            (_source(r.origin, args.wide), r.qualified_name, _short(r.provided),
             _first_line(r.description))
            for r in records
        ]
        print(_table(("SOURCE", "PLUGIN", "PROVIDES", "DESCRIPTION"), rows, _width(args.wide)))
        for error in found.errors:
            print(f"error: {error.target} from {error.origin}: {describe_error(error)}",
                  file=sys.stderr)
    return 1 if found.errors else 0


# -- explain ---------------------------------------------------------------------------------------


def _names_of(target: str, origin: Origin) -> set[str]:
    module, _, attribute = target.partition(":")
    names = {target, module, module.rpartition(".")[2], attribute}
    names.update(filter(None, [origin.distribution, origin.entry_point]))
    return names - {""}


def _verdicts(found: Discovery, name: str) -> list[dict[str, Any]]:
    """Everything ``found`` says about candidates called ``name``, as explain reports it."""
    verdicts: list[dict[str, Any]] = []

    def add(target: str, status: str, origin: Origin, reason: str, **more: Any) -> None:
        verdicts.append({"target": target, "status": status, "origin": origin_json(origin),
                         "reason": reason, **more})

    for record in found.plugins:
        if name in _names_of(record.qualified_name, record.origin):
            add(record.qualified_name, "returned", record.origin,
                f"provides {_short(record.provided)}")
    for module in found.modules:
        if not module.plugins and name in _names_of(module.module, module.origin):
            reason = "no module-level object in it provides IPlugin"
            if module.unexported:
                reason = (f"class {', '.join(module.unexported)} implements IPlugin; "
                          "export an instance")
            add(module.module, "not a plugin", module.origin, reason)
    for skip in found.skipped:
        if name in _names_of(skip.target, skip.origin):
            add(skip.target, skip.reason.split(" ")[0], skip.origin, skip.reason)
    for error in found.errors:
        if name in _names_of(error.target, error.origin):
            add(error.target, error.kind, error.origin, describe_error(error),
                exception=type(error.error).__name__, raised_at=error.raised_at() or None)
    return verdicts


def _other_groups(name: str, group: str) -> str:
    """Where else a distribution called ``name`` declares entry points, if it is installed."""
    import importlib_metadata

    try:
        distribution = importlib_metadata.distribution(name)
    except (importlib_metadata.PackageNotFoundError, ValueError):
        return ""
    groups = sorted({entry.group for entry in distribution.entry_points} - {group})
    if not groups:
        return (f"; the distribution {name} is installed but declares no entry points in "
                f"{group!r}")
    return (f"; the distribution {name} declares entry points in {', '.join(map(repr, groups))}, "
            f"but {group} reads the group {group!r}")


def _cmd_explain(args: argparse.Namespace) -> int:
    package = _package(args.package, "explain")
    found = _resolve(package)
    verdicts = _verdicts(found, args.name)
    returned = any(v["status"] == "returned" for v in verdicts)
    if args.json:
        _print_json({"package": package.__name__, "name": args.name, "returned": returned,
                     "verdicts": verdicts})
        return 0 if returned else 1
    if not verdicts:
        print(f"{args.name}: not a plugin candidate of {package.__name__}"
              f"{_other_groups(args.name, package.__name__)}", file=sys.stderr)
        return 1
    for verdict in verdicts:
        where = _explain_origin(Origin(**verdict["origin"]), args.wide)
        if verdict["status"] == "returned":
            print(f"{verdict['target']}: returned, from {where}; {verdict['reason']}")
        else:
            print(f"{verdict['target']}: not returned: {verdict['status']} ({where}): "
                  f"{verdict['reason']}")
    return 0 if returned else 1


def _explain_origin(origin: Origin, wide: bool) -> str:
    if origin.kind == "directory":
        return f"directory {short_path(origin.path, wide)}"
    if origin.entry_point is None:
        return f"{origin.distribution} {origin.version} at {short_path(origin.path, wide)}"
    return str(origin)


# -- cache -----------------------------------------------------------------------------------------


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        print(f"cannot remove {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _cache_files(package: ModuleType) -> list[str]:
    from ._inventory import cache_states

    return [state.place for state in cache_states(package)]


def _cmd_regenerate(args: argparse.Namespace) -> int:
    from ._resolver import forget_state, resolver

    packages = [_package(name, "cache regenerate") for name in args.packages]
    progress = _Progress(len(packages))
    failed = 0
    for package in packages:
        for path in _cache_files(package):
            _remove(path)
        forget_state()
        process = resolver()
        process.regenerating = True
        process.on_scan = progress.module
        progress.package(package.__name__)
        found = process.resolve(package)
        progress.done()
        print(f"{package.__name__}: {_count(len(found.modules), 'module')}, "
              f"{_count(len(found.plugins), 'plugin')}")
        for error in found.errors:
            failed += 1
            print(f"  FAILED {error.target} ({error.origin}): {describe_error(error)}")
    return 1 if failed else 0


class _Progress:
    """What ``cache regenerate`` is doing, on stderr when it is a terminal (quiet when piped)."""

    def __init__(self, packages: int) -> None:
        self.shown = sys.stderr.isatty()
        self.packages = packages
        self.current = 0
        self.modules = 0
        self.name = ""

    def package(self, name: str) -> None:
        self.current, self.modules, self.name = self.current + 1, 0, name
        self._show("")

    def module(self, module: str) -> None:
        self.modules += 1
        self._show(f": {_count(self.modules, 'module')} scanned, now {module}")

    def _show(self, detail: str) -> None:
        if self.shown:
            text = f"[{self.current}/{self.packages}] {self.name}{detail}"[: _columns() - 1]
            sys.stderr.write(f"\r\x1b[K{text}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _cmd_clear(args: argparse.Namespace) -> int:
    from ._store import user_cache_root

    removed = 0
    for package in [_package(name, "cache clear") for name in args.packages]:
        removed += sum(_remove(path) for path in _cache_files(package))
    if not args.packages:
        for folder, _, files in os.walk(user_cache_root()):
            removed += sum(_remove(os.path.join(folder, f)) for f in files if f.endswith(".json"))
    print(f"removed {_count(removed, 'cache file')}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from ._inventory import cache_states

    states = [state for name in args.packages
              for state in cache_states(_package(name, "cache info"))]
    if args.json:
        _print_json({"caches": [state._asdict() for state in states]})
        return 0
    rows: list[Sequence[str]] = []
    for state in states:
        current = "not written" if not state.written else ("yes" if state.current else
                                                         f"no: {state.why}")
        rows.append((state.package, f"{state.kind} {short_path(state.describes, args.wide)}",
                     short_path(state.place, args.wide),
                     str(state.size) if state.size is not None else "-", current))
    print(_table(("PACKAGE", "FOR", "CACHE FILE", "BYTES", "CURRENT"), rows, _width(args.wide)))
    return 0


# -- migrate ---------------------------------------------------------------------------------------


def _distribution_files(name: str) -> set[str]:
    import importlib_metadata

    try:
        files = importlib_metadata.distribution(name).files or []
    except (importlib_metadata.PackageNotFoundError, ValueError):
        raise UsageError(f"no distribution named {name!r}", "migrate") from None
    return {os.path.realpath(str(file.locate())) for file in files}


def _cmd_migrate(args: argparse.Namespace) -> int:
    from ._directories import plugin_directories

    if args.to is not None and not all(part.isidentifier() for part in args.to.split(".")):
        raise UsageError(f"--to needs a dotted package name, not {args.to!r}", "migrate")
    package = _package(args.package, "migrate")
    owned = _distribution_files(args.dist) if args.dist else None
    found = _resolve(package)
    # Every directory module counts, plugins or not (some define them only conditionally),
    # and those that fail to import too: a migration must not lose any.
    modules = {m.module: m.origin for m in found.modules if m.origin.kind == "directory"}
    failed = {e.target: e.origin for e in found.errors if e.origin.kind == "directory"}
    order = {listing.directory: at for at, listing in enumerate(plugin_directories(package))}
    entries: list[tuple[str, str]] = []
    for module, origin in sorted({**modules, **failed}.items(),
                                 key=lambda item: (order.get(str(item[1].path), 0), item[0])):
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
    _print_entry_points(package.__name__, entries, args.format)
    return 1 if any(m in failed for m in modules.keys() | failed.keys()) else 0


def _print_entry_points(group: str, entries: list[tuple[str, str]], form: str) -> None:
    if form == "setup.cfg":
        print("[options.entry_points]")
        print(f"{group} =")
        for name, value in entries:
            print(f"    {name} = {value}")
    else:
        print(f'[project.entry-points."{group}"]')
        for name, value in entries:
            print(f'{name} = "{value}"')


def _module_owned(directory: str, short: str, owned: set[str]) -> bool:
    candidates = [f"{short}.py", f"{short}.pyc", f"{short}/__init__.py", f"{short}/__init__.pyc"]
    return any(os.path.realpath(os.path.join(directory, c)) in owned for c in candidates)


# -- the parser ------------------------------------------------------------------------------------


def _command(commands: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help[0].upper() + help[1:] + ".",
        epilog=f"example: {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
    _COMMANDS[parser.prog[len(PROG):].strip()] = parser
    return parser


# Every sub-command's parser by its name ("list", "cache info"), for usage lines.
_COMMANDS: dict[str, argparse.ArgumentParser] = {}


def _reporting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--wide", action="store_true", help="full paths, no cut lines")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="See, explain, cache and migrate plugin discovery.",
                     epilog="try 'compat-plugin COMMAND --help' for a command's options")
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    listing = _command(commands, "list", "every plugin of a package, with its source",
                       "compat-plugin list matsim.plugins --interface IMaterial")
    listing.add_argument("package", help="the plugin package, e.g. matsim.plugins")
    listing.add_argument("--interface", metavar="NAME",
                         help="only plugins providing it (dotted, or a short name)")
    _reporting(listing)
    listing.set_defaults(run=_cmd_list)

    explain = _command(commands, "explain", "why a plugin is or is not returned",
                       "compat-plugin explain matsim.plugins steel")
    explain.add_argument("package")
    explain.add_argument("name", help="module, attribute, module:attr, distribution or entry point")
    _reporting(explain)
    explain.set_defaults(run=_cmd_explain)

    cache = _command(commands, "cache", "regenerate, clear or inspect caches",
                     "compat-plugin cache info matsim.plugins")
    actions = cache.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    regenerate = _command(actions, "regenerate", "rescan packages and rewrite their caches",
                          "compat-plugin cache regenerate matsim.plugins twisted.plugins")
    regenerate.add_argument("packages", nargs="+", metavar="PACKAGE")
    regenerate.set_defaults(run=_cmd_regenerate)
    clear = _command(actions, "clear", "remove caches (all per-user ones if no PACKAGE)",
                     "compat-plugin cache clear matsim.plugins")
    clear.add_argument("packages", nargs="*", metavar="PACKAGE")
    clear.set_defaults(run=_cmd_clear)
    info = _command(actions, "info", "where each cache lives, its size, whether current",
                    "compat-plugin cache info matsim.plugins --json")
    info.add_argument("packages", nargs="+", metavar="PACKAGE")
    _reporting(info)
    info.set_defaults(run=_cmd_info)

    migrate = _command(commands, "migrate", "print entry points for directory plugins",
                       "compat-plugin migrate matsim.plugins --dist acme-plates --to acme_plates")
    migrate.add_argument("package")
    migrate.add_argument("--dist", metavar="NAME", help="only modules this distribution installs")
    migrate.add_argument("--format", choices=("pyproject", "setup.cfg"), default="pyproject")
    migrate.add_argument("--to", metavar="PACKAGE",
                         help="the package the modules will live in (default: where they are)")
    migrate.set_defaults(run=_cmd_migrate)
    return parser


def _version() -> str:
    from ._version import version

    return version()


def _usage_error(parser: argparse.ArgumentParser, error: UsageError) -> int:
    command = error.command
    usage = _COMMANDS.get(command or "", parser).format_usage().strip()
    message = " ".join(str(error).split())
    print(usage, file=sys.stderr)
    print(f"{PROG}: error: {message}", file=sys.stderr)
    print(f"try '{PROG} {command or 'COMMAND'} --help'", file=sys.stderr)
    return 2


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
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "run", None) is None:
            missing = "an action" if args.command == "cache" else "a command"
            raise UsageError(f"{missing} is required", args.command)
        status: int = args.run(args)
    except UsageError as exc:
        return _usage_error(parser, exc)
    except BrokenPipeError:
        return 0
    finally:
        library_logger.removeHandler(quiet)
        library_logger.propagate = propagate
    return status
