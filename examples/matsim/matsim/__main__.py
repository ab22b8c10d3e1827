"""``python -m matsim``: list every known material."""

from matsim.imatsim import displayAllKnownMaterials

for line in displayAllKnownMaterials():
    print(line)
