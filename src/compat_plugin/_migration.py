"""``compat-plugin migrate``: the entry-point declarations that would replace a package's
directory plugin modules, printed for ``pyproject.toml`` or ``setup.cfg``."""

from __future__ import annotations

import argparse
import os
import sys

from ._commands import UsageError, package_named, resolve


def _distribution_files(name: str) -> set[str]:
    import importlib_metadata

    try:
        files = importlib_metadata.distribution(name).files or []
    except (importlib_metadata.PackageNotFoundError, ValueError):
        raise UsageError(f"no distribution named {name!r}", "migrate") from None
    return {os.path.realpath(str(file.locate())) for file in files}


def cmd_migrate(args: argparse.Namespace) -> int:
    from ._directories import is_module_name, plugin_directories

    if args.to is not None and not all(map(is_module_name, args.to.split("."))):
        raise UsageError(f"--to needs a dotted package name, not {args.to!r}", "migrate")
    package = package_named(args.package, "migrate")
    owned = _distribution_files(args.dist) if args.dist else None
    found = resolve(package)
    # Every directory module counts, plugins or not (some define them only conditionally),
    # and those that fail to import too: a migration must not lose any.
    modules = {m.module: m.origin for m in found.modules if m.origin.kind == "directory"}
    failed = {e.target: e.origin for e in found.errors if e.origin.kind == "directory"}
    order = {listing.directory: at for at, listing in enumerate(plugin_directories(package))}
    entries: list[tuple[str, str]] = []
    failing = False
    for module, origin in sorted({**modules, **failed}.items(),
                                 key=lambda item: (order.get(str(item[1].path), 0), item[0])):
        short = module.rpartition(".")[2]
        if owned is not None and not _module_owned(str(origin.path), short, owned):
            continue
        if module in failed:
            failing = True
            print(f"warning: {module} does not import here; check its entry point",
                  file=sys.stderr)
        entries.append((short, f"{args.to}.{short}" if args.to else module))
    if not entries:
        which = f" installed by {args.dist}" if args.dist else ""
        print(f"{args.package} has no directory plugin modules{which}", file=sys.stderr)
        return 1
    _print_entry_points(package.__name__, entries, args.format)
    return 1 if failing else 0


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
