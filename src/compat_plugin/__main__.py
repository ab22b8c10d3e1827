"""``python -m compat_plugin``: the same as the ``compat-plugin`` command."""

import sys

from .cli import main

sys.exit(main())
