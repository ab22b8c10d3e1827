"""How the command line shows things: aligned tables that fit a terminal, short paths, and
the JSON forms of records, errors and left-out candidates (documented in the README)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._records import LoadError, ModuleRecords, Origin, PluginRecord, Skip


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


def source(origin: Origin, wide: bool) -> str:
    if origin.kind == "directory":
        return short_path(origin.path, wide)
    if origin.entry_point is None:  # the distribution as a whole
        return f"{origin.distribution} {origin.version}"
    return f"{origin.distribution} {origin.version} ({origin.entry_point})"


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 module``, ``2 modules``."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def short(names: Sequence[str]) -> str:
    return ", ".join(name.rpartition(".")[2] for name in names)


def cache_columns(state: Any, wide: bool) -> tuple[str, str, str]:
    """FOR, CACHE and FILE of a cache (an ``_inventory.CacheState``) as tables show them: what
    it describes, whether it is kept beside that or per user, and its file."""
    place = state.place if wide else (
        os.path.basename(state.place) if not state.per_user else short_path(state.place))
    return (f"{state.kind} {short_path(state.describes, wide)}",
            "per-user" if state.per_user else "beside", place)


# Characters a terminal acts on rather than shows -- controls (C0 but the newline, DEL, C1)
# and those that reorder what follows (bidirectional overrides and isolates) -- as escapes: a
# docstring, a name or an exception message (a plugin's, a cache's) must not move the cursor
# or reverse a line.
_ACTED_ON = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))
             if code != 0x0A}
_ACTED_ON.update({code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F),
                                                       *range(0x2066, 0x206A))})


def shown(text: str) -> str:
    """``text`` with the characters a terminal would act on written as escapes (its lines
    kept); shown twice, it is as shown once."""
    return text.translate(_ACTED_ON)


def display_width(text: str) -> int:
    """The terminal columns ``text`` (one line) takes: two for each East Asian wide or
    full-width character; none for a combining mark, a format character (a joiner; not the
    soft hyphen, which terminals show) or a Hangul vowel or final consonant that joins the
    syllable before it (decomposed Hangul: macOS file names)."""
    if text.isascii():
        return len(text)
    from unicodedata import category, east_asian_width

    def columns_of(c: str) -> int:
        if (category(c) in ("Mn", "Me") or (category(c) == "Cf" and c != "\xad")
                or "\u1160" <= c <= "\u11ff" or "\ud7b0" <= c <= "\ud7ff"):
            return 0
        return 2 if east_asian_width(c) in "WF" else 1

    return sum(map(columns_of, text))


def cut(line: str, width: int) -> str:
    """``line`` ending in "…" where it would go beyond ``width`` columns."""
    if display_width(line) <= width:
        return line
    kept = used = 0
    for character in line:
        used += display_width(character)
        if used > width - 1:
            break
        kept += 1
    return line[:kept] + "…"


def table(header: Sequence[str], rows: Sequence[Sequence[str]],
          width: int | None = None) -> str:
    """Rows in aligned columns, each cell :func:`shown` and padded by the columns it takes in a
    terminal (:func:`display_width`); the last column is cut to keep lines within ``width``."""
    cells = [[shown(cell) for cell in row] for row in [header, *rows]]
    spans = [[display_width(cell) for cell in row] for row in cells]
    widths = [max(row[i] for row in spans) for i in range(len(header))]
    lines = []
    for row, span in zip(cells, spans):
        line = "  ".join(cell + " " * (w - n) for cell, n, w in zip(row, span, widths)).rstrip()
        lines.append(line if width is None else cut(line, width))
    return "\n".join(lines)


def width(wide: bool) -> int | None:
    """How wide a table may be: the terminal's width when output goes to one (at least 80
    columns), unlimited with ``--wide`` or when output is piped."""
    return None if wide or not sys.stdout.isatty() else max(80, columns())


def columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def print_json(document: object) -> None:
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


def unexported_reason(module: ModuleRecords) -> str | None:
    """Why ``module`` gives no plugin if it defines plugin classes but no instance of one."""
    if module.plugins or not module.unexported:
        return None
    return f"class {', '.join(module.unexported)} implements IPlugin; export an instance"


def describe_error(error: LoadError) -> str:
    """The exception, and where the plugin's own code raised it (or which entry point named
    what could not be imported).  As raised: what prints it shows it (:func:`shown`), and JSON
    escapes it its own way."""
    text = f"{type(error.error).__name__}: {error.error}"
    where = error.raised_at()
    if where:
        text = f"{text} (raised at {where})"
    elif isinstance(error.error, ImportError) and error.origin.entry_point is not None:
        text = (f"{text} (named by the entry point {error.origin.entry_point!r} of "
                f"{error.origin.distribution} {error.origin.version})")
    return text


