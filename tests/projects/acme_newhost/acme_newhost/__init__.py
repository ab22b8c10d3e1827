"""Made for hostapp 2."""
