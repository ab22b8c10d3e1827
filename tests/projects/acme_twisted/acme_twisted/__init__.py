"""Twisted plugins that only entry points declare: nothing is installed in twisted/plugins."""
