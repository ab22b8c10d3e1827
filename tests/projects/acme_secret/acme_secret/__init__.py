"""A plugin that users may want to turn off."""
