"""The ``compat-plugin`` command: see, explain, cache and migrate plugin discovery.

Exit status (the same for every command):

====  =====================================================================================
0     success: every candidate loaded (``list``), the name is returned (``explain``), ...
1     the answer is "no" or something failed: ``list`` with load errors, ``explain`` of a name
      that is not returned, ``cache regenerate`` with candidates that failed, ``migrate``
      with modules failing to import, ``doctor`` finding a problem, ``twisted status`` not
      enabled or not working
2     bad input: an unknown option or command, an unknown package, a package that is not a
      plugin package, an unknown or ambiguous interface name, an unknown distribution,
      ``cache regenerate`` with cache writing turned off
====  =====================================================================================

Errors are one line on stderr, never a traceback.  ``--json`` output is described in the
README; tables fit the terminal, 80 columns at least (paths shortened; ``--wide`` for full
paths).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._commands import (
    UsageError,
    cmd_clear,
    cmd_doctor,
    cmd_explain,
    cmd_info,
    cmd_list,
    cmd_regenerate,
    cmd_twisted,
)
from ._migration import cmd_migrate

PROG = "compat-plugin"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        command = self.prog[len(PROG):].strip() or None
        raise UsageError(message, command)


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
    parser.add_argument("-V", "--version", action=_Version, nargs=0,
                        help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _looking(commands)
    _caching(commands)
    _migrating(commands)
    return parser


def _looking(commands: Any) -> None:
    """The commands that report what discovery finds: ``list``, ``explain``, ``doctor``."""
    listing = _command(commands, "list", "every plugin of a package, with its source",
                       "compat-plugin list matsim.plugins --interface IMaterial")
    listing.add_argument("package", metavar="PACKAGE",
                         help="the plugin package, e.g. matsim.plugins")
    listing.add_argument("--interface", metavar="NAME",
                         help="only plugins providing it (dotted, or a short name)")
    _reporting(listing)
    listing.set_defaults(run=cmd_list)

    explain = _command(commands, "explain", "why a plugin is or is not returned",
                       "compat-plugin explain matsim.plugins steelPlate")
    explain.add_argument("package", metavar="PACKAGE", help="the plugin package")
    explain.add_argument("name", metavar="NAME",
                         help="module, attribute, module:attr, distribution or entry point")
    _reporting(explain)
    explain.set_defaults(run=cmd_explain)

    doctor = _command(commands, "doctor",
                      "report every candidate's fate, the caches, import costs and name clashes",
                      "compat-plugin doctor twisted.plugins --key authType")
    doctor.add_argument("packages", nargs="+", metavar="PACKAGE")
    doctor.add_argument("--key", action="append", default=[], metavar="ATTR",
                        help="also report plugins sharing a value of this attribute")
    _reporting(doctor)
    doctor.set_defaults(run=cmd_doctor)


def _caching(commands: Any) -> None:
    """``cache`` and its actions."""
    cache = _command(commands, "cache", "regenerate, clear or inspect caches",
                     "compat-plugin cache info matsim.plugins")
    actions = cache.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    regenerate = _command(actions, "regenerate", "rescan packages and rewrite their caches",
                          "compat-plugin cache regenerate matsim.plugins twisted.plugins")
    regenerate.add_argument("packages", nargs="+", metavar="PACKAGE")
    regenerate.set_defaults(run=cmd_regenerate)
    clear = _command(actions, "clear", "remove caches (all per-user ones if no PACKAGE)",
                     "compat-plugin cache clear matsim.plugins")
    clear.add_argument("packages", nargs="*", metavar="PACKAGE")
    clear.set_defaults(run=cmd_clear)
    info = _command(actions, "info", "where each cache lives, its size, whether current",
                    "compat-plugin cache info matsim.plugins --json")
    info.add_argument("packages", nargs="+", metavar="PACKAGE")
    _reporting(info)
    info.set_defaults(run=cmd_info)


def _migrating(commands: Any) -> None:
    """The commands that move an application or its plugins: ``migrate``, ``twisted``."""
    migrate = _command(commands, "migrate", "print entry points for directory plugins",
                       "compat-plugin migrate matsim.plugins --dist acme-plates --to acme_plates")
    migrate.add_argument("package", metavar="PACKAGE", help="the plugin package")
    migrate.add_argument("--dist", metavar="NAME", help="only modules this distribution installs")
    migrate.add_argument("--format", choices=("pyproject", "setup.cfg"), default="pyproject",
                         help="the file the declarations go into (default: pyproject)")
    migrate.add_argument("--to", metavar="PACKAGE",
                         help="the package the modules will live in (default: where they are)")
    migrate.set_defaults(run=cmd_migrate)

    twisted = _command(commands, "twisted",
                       "put compat_plugin behind Twisted's plugin lookups in every interpreter "
                       "of this environment, child processes included",
                       "compat-plugin twisted enable")
    twisted.add_argument("action", choices=("enable", "disable", "status"),
                         help="enable or disable it, or say whether it is enabled")
    twisted.set_defaults(run=cmd_twisted)


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (reading metadata
    costs more than the rest of most commands)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from ._version import version

        print(f"{PROG} {version()}")
        parser.exit()


def _usage_error(parser: argparse.ArgumentParser, error: UsageError) -> int:
    command = error.command
    usage = " ".join(_COMMANDS.get(command or "", parser).format_usage().split())
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
    escaped = _escaping()
    try:
        # Known, not all: what a command does not take is its own usage error, not the
        # top-level one argparse would make of it.
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)}",
                             _taking(args, unknown, argv))
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
        for stream, errors in escaped:
            stream.reconfigure(errors=errors)
    return status


def _taking(args: argparse.Namespace, unknown: list[str], argv: Sequence[str] | None
            ) -> str | None:
    """The command whose usage an unknown argument is an error of: the one it follows, or
    none if it comes before the command's name."""
    given = list(sys.argv[1:] if argv is None else argv)
    named = given.index(args.command) if args.command in given else len(given)
    if any(given.index(token) < named for token in unknown if token in given):
        return None
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    return command if command in _COMMANDS else args.command


def _escaping() -> list[tuple[Any, str]]:
    """Make standard output and error print what their encoding cannot show (a docstring's
    arrow on a Latin-1 terminal, a lone surrogate) as an escape, not fail on it -- those that
    would fail: another handler, as the C locale's ``surrogateescape``, is kept; return each
    stream changed with how it handled errors before."""
    changed: list[tuple[Any, str]] = []
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure) and getattr(stream, "errors", None) == "strict":
            changed.append((stream, "strict"))
            reconfigure(errors="backslashreplace")
    return changed
