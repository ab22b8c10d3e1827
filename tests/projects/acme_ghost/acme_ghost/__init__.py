"""Ships no plugin module, though its entry point names one."""
