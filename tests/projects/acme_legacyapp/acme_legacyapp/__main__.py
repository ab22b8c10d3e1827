"""``python -m acme_legacyapp``: the same as the ``acme-legacyapp`` command."""

from .cli import main

raise SystemExit(main())
