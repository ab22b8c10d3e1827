"""Materials for hostapp, release 2.0."""
