"""Host-side code that binds Twisted's lookup as a default argument, as
``axiom.listversions.getSystemVersions`` does: the value is taken when this module is imported."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted import plugin

from . import plugins
from .icommand import ICommand


def command_names(getPlugins: Callable[..., Iterable[Any]] = plugin.getPlugins) -> list[str]:
    return sorted(command.name for command in getPlugins(ICommand, plugins))
