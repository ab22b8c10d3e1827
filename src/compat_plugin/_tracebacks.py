"""Where a plugin's own code raised, for messages: the frame worth showing a plugin's author."""

from __future__ import annotations

import importlib
import os
import traceback

# Frames of the import system (``<frozen importlib._bootstrap>``, ``importlib/__init__.py``)
# and of this package say nothing about the plugin.
_MACHINERY = (
    "<frozen ",
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep,
)


def plugin_frame(error: BaseException, module: str) -> str:
    """``file:line: source`` of the last frame of ``error``'s traceback that ran code of the
    plugin module ``module``; failing that, of the innermost frame that is neither the import
    system's nor compat_plugin's; for a SyntaxError, the offending line.  Empty if there is
    none (the plugin's code never ran: its module is not there)."""
    if isinstance(error, SyntaxError) and error.filename:
        return _where(error.filename, error.lineno, error.text)
    frames = []
    tb = error.__traceback__
    for summary in traceback.extract_tb(tb):
        name = tb.tb_frame.f_globals.get("__name__") if tb is not None else None
        frames.append((summary, name))
        tb = tb.tb_next if tb is not None else None
    own = [s for s, name in frames if name == module]
    others = [s for s, _ in frames if not s.filename.startswith(_MACHINERY)]
    chosen = own or others
    return _where(chosen[-1].filename, chosen[-1].lineno, chosen[-1].line) if chosen else ""


def _where(filename: str, line: int | None, source: str | None) -> str:
    text = (source or "").strip()
    return f"{filename}:{line}" + (f": {text}" if text else "")
