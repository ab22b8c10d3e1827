"""A plugin project installed in development mode."""
