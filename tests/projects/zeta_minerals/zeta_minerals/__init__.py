"""Minerals for hostapp."""
