"""Plugins of hostapp: modules here, in hostapp/plugins on sys.path, and entry points."""

from compat_plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
