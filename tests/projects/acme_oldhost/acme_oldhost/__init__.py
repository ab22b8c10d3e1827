"""Made for hostapp 1."""
