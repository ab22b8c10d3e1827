"""What each ``compat-plugin`` command does and prints (the options are in ``cli``)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ._interfaces import MARKER_NAMES
from ._output import (
    cache_columns,
    columns,
    count,
    cut,
    describe_error,
    error_json,
    first_line,
    origin_json,
    print_json,
    record_json,
    short,
    short_path,
    shown,
    skip_json,
    source,
    table,
    unexported_reason,
    width,
)
from ._records import Discovery, Origin, Skip, missing_module


class UsageError(Exception):
    """Bad input: one line on stderr and exit status 2.  ``command`` names the sub-command
    whose usage is shown with it."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


# -- what every command shares --------------------------------------------------------------------


def package_named(name: str, command: str) -> ModuleType:
    """The plugin package ``name``, imported; a ``UsageError`` for ``command`` if there is no
    such package, it fails to import, or it is a plain module."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise UsageError(f"{name!r} is not a dotted package name", command)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if missing_module(exc, name):
            raise UsageError(f"no package named {name!r}", command) from None
        raise UsageError(f"cannot import {name}: {exc}", command) from None
    except (Exception, SystemExit) as exc:
        raise UsageError(f"cannot import {name}: {type(exc).__name__}: {exc}", command) from None
    if not hasattr(module, "__path__"):
        raise UsageError(f"{name} is a module, not a plugin package", command)
    return module


def resolve(package: ModuleType) -> Discovery:
    """Everything discovery finds for ``package`` in this process."""
    from ._resolver import resolver

    return resolver().resolve(package)


def _not_a_plugin_package(package: ModuleType, found: Discovery, command: str) -> None:
    """Refuse a package that has neither plugin modules with plugins nor entry points."""
    if found.plugins or found.errors or found.skipped:
        return
    name = package.__name__
    hint = f"; did you mean {name}.plugins?" if importlib.util.find_spec(f"{name}.plugins") else ""
    raise UsageError(
        f"{name} is not a plugin package: none of its {count(len(found.modules), 'module')} "
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
        if candidates and set(candidates) <= set(MARKER_NAMES):  # one concept to a caller
            return MARKER_NAMES[0]
        if candidates:
            raise UsageError(f"interface {name!r} is ambiguous: {', '.join(candidates)}", "list")
    from ._interfaces import resolve_interface

    if resolve_interface(name) is None:
        provided = sorted({i.rpartition(".")[2] for i in known} - {"IPlugin", "Interface"})
        hint = f" (the plugins provide {', '.join(provided)})" if provided else ""
        raise UsageError(f"unknown interface {name!r}{hint}", "list")
    return name


def cmd_list(args: argparse.Namespace) -> int:
    package = package_named(args.package, "list")
    found = resolve(package)
    _not_a_plugin_package(package, found, "list")
    wanted = _interface_filter(found, args.interface)
    from ._matching import answering

    records = list(found.plugins) if wanted is None else answering(found.plugins, wanted)
    if args.json:
        print_json({
            "package": package.__name__,
            "interface": wanted,
            "plugins": [record_json(record) for record in records],
            "errors": [error_json(error) for error in found.errors],
            "skipped": [skip_json(skip) for skip in found.skipped] + [
                skip_json(Skip(module.module, module.origin, reason))
                for module in found.modules if (reason := unexported_reason(module))],
        })
    else:
        rows: list[Sequence[str]] = [
            (source(r.origin, args.wide), r.qualified_name, short(r.provided),
             first_line(r.description)) for r in records]
        print(table(("SOURCE", "PLUGIN", "PROVIDES", "DESCRIPTION"), rows, width(args.wide)))
        for error in found.errors:
            print(shown(f"error: {error.target} from {error.origin}: {describe_error(error)}"),
                  file=sys.stderr)
    return 1 if found.errors else 0


# -- explain ---------------------------------------------------------------------------------------


def _names_of(target: str, origin: Origin) -> set[str]:
    module, _, attribute = target.partition(":")
    names = {target, module, module.rpartition(".")[2], attribute}
    names.update(filter(None, [origin.distribution, origin.entry_point]))
    return names - {""}


def _declared_names(origin: Origin, group: str) -> set[str]:
    """The names of the entry points in ``group`` of the distribution ``origin`` names (an
    error about a whole distribution names none of them), as its entry's index keeps them."""
    from ._resolver import resolver

    return {declared.name for contribution in resolver().entry_points.view(group).contributions
            if (contribution.distribution.key, contribution.distribution.metadata)
            == (origin.distribution, origin.path)
            for declared in contribution.distribution.entry_points}


def _verdicts(found: Discovery, name: str, group: str) -> list[dict[str, Any]]:
    """Everything ``found`` (for the plugin package ``group``) says about candidates called
    ``name``, as explain reports it."""
    verdicts: list[dict[str, Any]] = []

    def add(target: str, status: str, origin: Origin, reason: str, **more: Any) -> None:
        verdicts.append({"target": target, "status": status, "origin": origin_json(origin),
                         "reason": reason, **more})

    for record in found.plugins:
        if name in _names_of(record.qualified_name, record.origin):
            add(record.qualified_name, "returned", record.origin,
                f"provides {short(record.provided)}")
    for module in found.modules:
        if not module.plugins and name in _names_of(module.module, module.origin):
            add(module.module, "not a plugin", module.origin, unexported_reason(module)
                or "no module-level object in it provides IPlugin")
    for skip in found.skipped:
        # A candidate left out is not imported: of ``module:attr``, its module is what is known.
        if {name, name.partition(":")[0]} & _names_of(skip.target, skip.origin):
            add(skip.target, skip.reason.split(" ")[0], skip.origin, skip.reason)
    for error in found.errors:
        names = _names_of(error.target, error.origin)
        if error.origin.kind == "entry-point" and error.origin.entry_point is None:
            names |= _declared_names(error.origin, group)  # a distribution found incompatible
        if name in names:
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


def cmd_explain(args: argparse.Namespace) -> int:
    package = package_named(args.package, "explain")
    found = resolve(package)
    verdicts = _verdicts(found, args.name, package.__name__)
    returned = any(v["status"] == "returned" for v in verdicts)
    if args.json:
        print_json({"package": package.__name__, "name": args.name, "returned": returned,
                     "verdicts": verdicts})
        return 0 if returned else 1
    if not verdicts:
        print(f"{args.name}: not a plugin candidate of {package.__name__}"
              f"{_other_groups(args.name, package.__name__)}", file=sys.stderr)
        return 1
    for verdict in verdicts:
        print(shown(_explanation(verdict, args.wide)))
    return 0 if returned else 1


def _explanation(verdict: dict[str, Any], wide: bool) -> str:
    target, status, reason = verdict["target"], verdict["status"], verdict["reason"]
    where = _explain_origin(Origin(**verdict["origin"]), wide)
    if status == "returned":
        return f"{target}: returned, from {where}; {reason}"
    if status == "not a plugin" and "exception" not in verdict:
        return f"{target}: not returned: imported from {where}, but {reason}"
    if "exception" in verdict:
        return f"{target}: not returned: {status} ({where}): {reason}"
    return f"{target}: not returned: {reason} ({where})"


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


def cmd_regenerate(args: argparse.Namespace) -> int:
    from ._entry_indexes import make_pycaches
    from ._inventory import cache_places
    from ._resolver import forget_state, resolver
    from ._store import writes_disabled

    if writes_disabled():  # removing the caches and writing none would leave every call cold
        raise UsageError("COMPAT_PLUGIN_NO_CACHE_WRITE is set: nothing would be written",
                         "cache regenerate")
    packages = [package_named(name, "cache regenerate") for name in args.packages]
    make_pycaches()
    _after_this_second()
    progress = _Progress(len(packages))
    failed = 0
    for package in packages:
        for path in cache_places(package):
            _remove(path)
        forget_state()
        process = resolver()
        process.regenerating = True
        process.on_scan = progress.module
        progress.package(package.__name__)
        found = process.resolve(package)
        progress.done()
        print(f"{package.__name__}: {count(len(found.modules), 'module')}, "
              f"{count(len(found.plugins), 'plugin')}")
        for error in found.errors:
            failed += 1
            print(shown(f"  FAILED {error.target} ({error.origin}): {describe_error(error)}"))
    return 1 if failed else 0


def _after_this_second() -> None:
    """Wait for the second now running to end (a second at most).

    A cache written within the second of a time it records holds only for that exact time
    (``Stamp.matches``); after this, every time the caches record is of an earlier second
    than their writing, so they also hold once an image layer has cut the times to whole
    seconds -- as in ``pip install ... && compat-plugin cache regenerate ...``, one build step.
    """
    import time

    second = 1_000_000_000
    # A little past the second: file times come from a clock that may lag a few ms.
    time.sleep((second - time.time_ns() % second) / second + 0.02)


class _Progress:
    """What ``cache regenerate`` is doing, on stderr when it is a terminal (quiet when piped)."""

    def __init__(self, packages: int) -> None:
        self.shown, self.packages = sys.stderr.isatty(), packages
        self.current, self.modules, self.name = 0, 0, ""

    def package(self, name: str) -> None:
        self.current, self.modules, self.name = self.current + 1, 0, name
        self._show("")

    def module(self, module: str) -> None:
        self.modules += 1
        self._show(f": {count(self.modules, 'module')} scanned, now {module}")

    def _show(self, detail: str) -> None:
        if self.shown:
            text = cut(f"[{self.current}/{self.packages}] {self.name}{detail}", columns() - 1)
            sys.stderr.write(f"\r\x1b[K{text}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def cmd_clear(args: argparse.Namespace) -> int:
    from ._inventory import cache_places, per_user_files

    removed = 0
    for package in [package_named(name, "cache clear") for name in args.packages]:
        removed += sum(_remove(path) for path in cache_places(package, every_level=True))
    if not args.packages:
        removed += sum(_remove(path) for path in per_user_files())
    print(f"removed {count(removed, 'cache file')}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ._inventory import cache_states

    states = [state for name in args.packages
              for state in cache_states(package_named(name, "cache info"))]
    if args.json:
        print_json({"caches": [state._asdict() for state in states]})
        return 0
    rows: list[Sequence[str]] = []
    for state in states:
        if not state.written:
            current = "not written"
        elif not state.current:
            current = f"no: {state.why}"
        else:  # a current index may say what it could not read
            current = f"yes ({state.why})" if state.why else "yes"
        described, where, place = cache_columns(state, args.wide)
        size = str(state.size) if state.size is not None else "-"
        rows.append((state.package, described, where, size, current, place))
    print(table(("PACKAGE", "FOR", "CACHE", "BYTES", "CURRENT", "FILE"), rows,
                width(args.wide)))
    return 0


# -- doctor ----------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from ._doctor import DEFAULT_KEYS, examine, report_json, report_text

    keys = (*DEFAULT_KEYS, *args.key)
    reports = [examine(package_named(name, "doctor"), keys) for name in args.packages]
    problems = sum(len(report.problems) for report in reports)
    if args.json:
        print_json({"reports": [report_json(report) for report in reports],
                     "problems": problems})
    else:
        for report in reports:
            print(shown(report_text(report, args.wide)))
    return 1 if problems else 0


# -- twisted ---------------------------------------------------------------------------------------


def cmd_twisted(args: argparse.Namespace) -> int:
    from ._twisted_site import command
    if sys.flags.no_site:  # then no .pth file is read, nor a virtual environment known
        raise UsageError("python -S reads no .pth file: run it without -S", "twisted")
    return command(args)
