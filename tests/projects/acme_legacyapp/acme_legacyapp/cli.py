"""The ``acme-legacyapp`` command.

It prints, one line each: its arguments; the commands it finds through ``getPlugins`` imported
from ``twisted.plugin`` when this module is imported (as ``axiom.scripts.axiomatic`` does); the
commands the host-side code finds through its default argument; and, given ``--child``, the
same lines of a child process (``python -m acme_legacyapp``) prefixed with ``child``.
"""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.plugin import getPlugins

from . import host, plugins
from .icommand import ICommand


def main() -> int:
    arguments = sys.argv[1:]
    print("argv:", json.dumps(arguments))
    names = sorted(command.name for command in getPlugins(ICommand, plugins))
    print("module-level:", " ".join(names))
    print("default-argument:", " ".join(host.command_names()))
    if "--child" in arguments:
        child = subprocess.run(
            [sys.executable, "-m", "acme_legacyapp"], capture_output=True, text=True, check=True
        )
        for line in child.stdout.splitlines():
            print("child", line)
    return 0
