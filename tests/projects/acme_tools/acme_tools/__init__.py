"""Tools for hostapp."""
