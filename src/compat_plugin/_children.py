"""Running another process and reading what it printed, as text: in the locale's encoding, or
in UTF-8 in UTF-8 mode, as Python reads text by default."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

# What text=True decodes with, named: the default would warn under ``-X warn_default_encoding``
# (and fail under ``-W error``).  In UTF-8 mode (``LC_ALL=C`` turns it on) the children inherit,
# they write UTF-8 whatever the locale's encoding.  Python 3.9 has neither that option nor the
# name "locale", and decodes as this does by default.
_ENCODING = ("utf-8" if sys.flags.utf8_mode else "locale") if sys.version_info >= (3, 10) else None


def captured(command: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, **options)``, its output captured and decoded; raises what
    ``subprocess.run`` raises."""
    return subprocess.run(command, capture_output=True, text=True, encoding=_ENCODING, **options)
