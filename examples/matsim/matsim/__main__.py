"""``python -m matsim``: every known material, and where it came from."""

import matsim.plugins
from compat_plugin import discover, load
from matsim.imatsim import IMaterial, displayMaterial

for record in discover(matsim.plugins, IMaterial).plugins:
    print(f"{displayMaterial(load(record))}\n    from {record.origin}")
