"""An entry point naming a plugin class instead of an instance of it."""
