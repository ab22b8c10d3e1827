"""The ``compat_plugin`` logger, created on first use, and the quiet levels' shortcuts.

Importing :mod:`logging` costs more than the rest of a warm call; most calls log nothing.  A
DEBUG or INFO message is dropped without importing it when nothing has: until :mod:`logging`
is imported no handler is configured and every level is at its default (WARNING), so such a
message could reach no one.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

_logger: logging.Logger | None = None


def logger() -> logging.Logger:
    """The ``compat_plugin`` logger of the standard :mod:`logging` module."""
    global _logger
    if _logger is None:
        import logging

        _logger = logging.getLogger("compat_plugin")
    return _logger


def _heard() -> bool:
    """Whether a message below WARNING could reach a handler: only once logging is imported."""
    return _logger is not None or "logging" in sys.modules


def debug(message: str, *args: object) -> None:
    """``logger().debug(message, *args)``, said to be from its caller -- if it can be heard."""
    if _heard():
        logger().debug(message, *args, stacklevel=2)


def info(message: str, *args: object) -> None:
    """``logger().info(message, *args)``, said to be from its caller -- if it can be heard."""
    if _heard():
        logger().info(message, *args, stacklevel=2)
