"""The benchmark's tables: medians, ratios against each peer, targets met or not, and the
spread of every contender's samples."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from measure import Samples
from scenarios import SCENARIOS, SUBJECT, Scenario, Target, libraries


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    medians: dict[str, float | None]
    ratios: dict[str, float | None]
    verdicts: tuple[tuple[Target, float | None, bool | None], ...]

    @property
    def passed(self) -> bool | None:
        if not self.verdicts or any(ok is None for _, _, ok in self.verdicts):
            return None
        return all(ok for _, _, ok in self.verdicts)


def build_rows(samples: Samples, group: str) -> list[Row]:
    """The rows of ``group``'s table: every scenario compat_plugin was measured in."""
    names = libraries(group)
    rows = []
    for scenario in SCENARIOS:
        if scenario.group != group or samples.median(scenario.name, SUBJECT) is None:
            continue
        medians = {library: samples.median(scenario.name, library) for library in names}
        subject = medians[SUBJECT]
        ratios = {library: _ratio(subject, medians[library]) for library in names[1:]}
        verdicts = []
        for target in scenario.targets:
            other = samples.median(target.scenario or scenario.name, target.library)
            ratio = _ratio(subject, other)
            verdicts.append((target, ratio, None if ratio is None else ratio <= target.ratio))
        rows.append(Row(scenario, medians, ratios, tuple(verdicts)))
    return rows


def _ratio(subject: float | None, other: float | None) -> float | None:
    return subject / other if subject is not None and other else None


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.2f}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _verdict(row: Row) -> str:
    if not row.verdicts:
        return "—"
    parts = []
    for target, ratio, ok in row.verdicts:
        state = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        measured = f"{_times(ratio)} " if target.scenario else ""
        parts.append(f"{target.describe()}: {measured}{state}")
    return "; ".join(parts)


def markdown_table(rows: list[Row], group: str) -> str:
    names = libraries(group)
    others = [name for name in names[1:] if any(row.medians[name] is not None for row in rows)]
    shown = [SUBJECT, *others]
    header = ["scenario", *(f"{name} (ms)" for name in shown),
              *(f"compat/{name.split()[0]}" for name in others), "target"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---", *(["---:"] * (len(header) - 2)), "---"]) + "|"]
    for row in rows:
        cells = [row.scenario.name, *(_ms(row.medians[name]) for name in shown),
                 *(_times(row.ratios[name]) for name in others), _verdict(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_table(samples: Samples) -> str:
    """Per contender: runs, min, quartiles, max, in ms -- to judge how noisy a median is."""
    lines = ["| contender | n | min | p25 | median | p75 | max |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, values in samples.seconds.items():
        ordered = sorted(values)
        if len(ordered) >= 2:
            p25, p50, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            p25 = p50 = p75 = ordered[0]
        figures = (ordered[0], p25, p50, p75, ordered[-1])
        lines.append("| " + " | ".join([key, str(len(ordered)), *map(_ms, figures)]) + " |")
    return "\n".join(lines)


def report_document(samples: Samples, rounds: int, groups: list[str]) -> dict[str, object]:
    """Everything measured, for ``--json``."""
    scenarios = [
        {"scenario": row.scenario.name, "group": group, "median_seconds": row.medians,
         "ratios": row.ratios, "passed": row.passed,
         "targets": [{"library": t.library, "scenario": t.scenario, "max_ratio": t.ratio,
                      "ratio": ratio, "passed": ok} for t, ratio, ok in row.verdicts]}
        for group in groups for row in build_rows(samples, group)
    ]
    return {"rounds": rounds, "samples_seconds": samples.seconds, "scenarios": scenarios}
