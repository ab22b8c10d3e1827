"""Materials for hostapp, release 1.0."""
