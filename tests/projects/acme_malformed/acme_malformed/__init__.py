"""A distribution with one malformed entry point, so built by hand rather than by setuptools."""
