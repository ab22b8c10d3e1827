"""Extra materials for matsim, found through an entry point."""
