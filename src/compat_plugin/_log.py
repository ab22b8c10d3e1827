"""The ``compat_plugin`` logger, created on first use.

Importing :mod:`logging` costs more than the rest of a warm call; most calls log nothing.
"""

from __future__ import annotations

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
