"""An application that finds materials through its plugin package, hostapp.plugins."""
