"""Where a plugin's own code raised, for messages: the frame worth showing a plugin's author."""

from __future__ import annotations

import os
import traceback

# Frames of the import system (``<frozen importlib._bootstrap>``) and of this package say
# nothing about the plugin.
_OURS = os.path.dirname(os.path.abspath(__file__)) + os.sep


def plugin_frame(error: BaseException) -> str:
    """``file:line: source`` of the innermost frame of ``error``'s traceback that is neither
    the import system's nor compat_plugin's; for a SyntaxError, its own file and line.
    Empty if there is none (the plugin's code never ran)."""
    if isinstance(error, SyntaxError) and error.filename:
        source = (error.text or "").strip()
        return f"{error.filename}:{error.lineno}" + (f": {source}" if source else "")
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith(("<frozen ", _OURS))
    ]
    if not frames:
        return ""
    frame = frames[-1]
    source = (frame.line or "").strip()
    return f"{frame.filename}:{frame.lineno}" + (f": {source}" if source else "")
