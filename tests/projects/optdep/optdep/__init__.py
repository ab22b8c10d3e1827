"""An optional dependency: a plugin is only offered when this imports."""
