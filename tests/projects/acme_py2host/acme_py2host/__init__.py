"""Made for hostapp 1 on Python 2 only."""
