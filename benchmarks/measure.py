"""Timing the contenders: each run one fresh interpreter, medians over rotated rounds.

A child imports what its contender's setup names, starts ``time.perf_counter()``, runs the
timed code, stops the clock, and prints the elapsed seconds and the result as JSON (``json`` is
imported only after the clock stopped, so it is not already loaded for a library whose import
is timed).  Every contender runs once untimed first, to compile the corpus and fill its caches;
then each round runs every contender once, the order rotated by one place per round so that
drift on the machine reaches all alike.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any

from contexts import Context
from scenarios import Contender, scenario_named

_CHILD = """\
import time as _time
$setup
_start = _time.perf_counter()
$timed
_elapsed = _time.perf_counter() - _start
import json as _json
print(_json.dumps({"seconds": _elapsed, "result": $result}))
"""


class ChildFailed(RuntimeError):
    """A benchmark child failed, or found something other than what its scenario expects."""


def child_code(contender: Contender, context: Context) -> str:
    values = dict(context.substitutions)
    return Template(_CHILD).substitute(
        setup=Template(contender.setup).substitute(values),
        timed=Template(contender.timed).substitute(values),
        result=contender.result,
    )


def run_child(contender: Contender, context: Context) -> tuple[float, object]:
    """Run one fresh interpreter for ``contender``; return (seconds, result)."""
    if contender.prepare is not None:
        contender.prepare(context)
    completed = context.run(child_code(contender, context))
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise ChildFailed(f"{contender.key}: exit status {completed.returncode}\n"
                          f"{completed.stderr}")
    report: dict[str, Any] = json.loads(lines[-1])
    return float(report["seconds"]), report["result"]


def check_result(contender: Contender, context: Context, result: object) -> None:
    expect = contender.expect or scenario_named(contender.scenario).expect
    if expect is not None and result != expect(context):
        raise ChildFailed(f"{contender.key}: found {result!r}, expected {expect(context)!r}")


@dataclass
class Samples:
    """Every timing, by contender key."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, contender: Contender, value: float) -> None:
        self.seconds.setdefault(contender.key, []).append(value)

    def median(self, scenario: str, library: str) -> float | None:
        values = self.seconds.get(f"{scenario} / {library}")
        return statistics.median(values) if values else None


def measure(
    contenders: Sequence[Contender],
    contexts: Mapping[str, Context],
    rounds: int,
    after_warmup: Callable[[], None] | None = None,
) -> Samples:
    """Warm up every contender once, then run ``rounds`` rotated rounds of all of them, each
    in the context of its scenario's group."""

    def context_of(contender: Contender) -> Context:
        return contexts[scenario_named(contender.scenario).group]

    for contender in contenders:
        _, result = run_child(contender, context_of(contender))
        check_result(contender, context_of(contender), result)
    if after_warmup is not None:
        after_warmup()
    samples = Samples()
    count = len(contenders)
    for round_number in range(rounds):
        shift = round_number % count if count else 0
        for contender in [*contenders[shift:], *contenders[:shift]]:
            seconds, result = run_child(contender, context_of(contender))
            check_result(contender, context_of(contender), result)
            samples.add(contender, seconds)
        print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return samples
