"""A plugin for acme-legacyapp that installs nothing in ``acme_legacyapp/plugins``."""
