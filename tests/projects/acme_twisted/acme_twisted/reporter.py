"""A trial reporter that ends its output with a recognizable line."""

# Twisted annotates only part of its API; calling its unannotated parts is expected here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from twisted.trial.reporter import TreeReporter

MARKER = "ACME-TWISTED-REPORTER"


class MarkerReporter(TreeReporter):
    def done(self) -> None:
        super().done()
        self._writeln(
            "%s: %d run, %s", MARKER, self.testsRun, "passed" if self.wasSuccessful() else "failed"
        )
