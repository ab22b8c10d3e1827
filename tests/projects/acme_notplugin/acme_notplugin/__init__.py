"""An entry point naming an object that is no plugin."""
