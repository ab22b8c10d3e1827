"""The installed version of compat_plugin, from its distribution's metadata.

The version is written once, in ``pyproject.toml``; installing the project records it in the
distribution's metadata, and this reads it from there (only when asked: reading metadata costs
more than importing compat_plugin does).
"""

from __future__ import annotations

DISTRIBUTION = "compat-plugin"


def version() -> str:
    """The version of the installed compat-plugin distribution (``"unknown"`` if compat_plugin
    runs from a source tree that was never installed)."""
    from importlib_metadata import PackageNotFoundError
    from importlib_metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
