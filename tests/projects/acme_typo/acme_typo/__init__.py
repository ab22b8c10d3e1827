"""A plugin declared in the wrong entry-point group ("hostapp.plugin")."""
