"""A toy materials simulator whose materials are found as plugins."""
