"""Material plugins: modules here, in matsim/plugins/ on sys.path, or entry points."""

from compat_plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
