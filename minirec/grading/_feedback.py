"""Feedback for a learner: the report ``minirec check`` prints for one notebook
(:func:`format_check`: each exercise's status, with the check's table and diagnosis under each
failure), and the same report written per submission by ``minirec grade --feedback DIR``
(:func:`write_feedback`)."""

from __future__ import annotations

import os
from pathlib import Path

from ._report import GradeReport
from ._results import NotebookResult
from ._statuses import ERROR, FAILED, MISSING, NOT_ATTEMPTED, NOT_RUN, PASSED, RAN

_SYMBOL = {PASSED: "✓", NOT_ATTEMPTED: "·", FAILED: "✗", ERROR: "!", NOT_RUN: "-",
           MISSING: "?"}


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line if line else line for line in text.rstrip().split("\n"))


def format_check(label: str, result: NotebookResult) -> str:
    """The report ``minirec check`` prints for one notebook."""
    head = f"{label}"
    if not result.exercises:
        return f"{head}: {result.status}: {result.detail}"
    lines = [f"{head} (ran in {result.seconds:.1f} s)"]
    width = max((len(e.name) for e in result.exercises), default=0)
    for e in result.exercises:
        status = "not yet attempted" if e.status == NOT_ATTEMPTED else e.status
        lines.append(f"  {_SYMBOL[e.status]} {e.name:<{width}}  {status}")
        if e.status in (FAILED, ERROR, NOT_RUN) and e.message:
            lines.append(_indent(e.message))
    if result.status != RAN:
        lines.append(f"  The run stopped: {result.status}: {result.detail}")
    elif result.detail:
        lines.append(f"  Note: {result.detail}")
    for other in result.other_errors[:5]:
        lines.append(f"  Note: {other}")
    if len(result.other_errors) > 5:
        lines.append(f"  Note: ... and {len(result.other_errors) - 5} more cells raised errors")
    counts = {s: sum(e.status == s for e in result.exercises) for s in _SYMBOL}
    parts = [f"{counts[s]} {'not yet attempted' if s == NOT_ATTEMPTED else s}"
             for s in (PASSED, FAILED, ERROR, NOT_RUN, NOT_ATTEMPTED) if counts[s]]
    if not result.ok():
        verdict = "not there yet"
    elif counts[PASSED]:
        verdict = "all attempted exercises pass"
    else:
        verdict = "nothing attempted yet"
    lines.append(f"  {', '.join(parts)} of {len(result.exercises)}: {verdict}.")
    return "\n".join(lines)


def write_feedback(report: GradeReport, folder) -> list[Path]:
    """One text file per submission, ``<submission>.txt``: the report ``minirec check`` prints
    (each exercise's status, the check's table and diagnosis), to hand back to the learner."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sub, result in report.rows:
        path = folder / (sub.name.replace(os.sep, "_") + ".txt")
        path.write_text(format_check(sub.name, result) + "\n", encoding="utf-8")
        written.append(path)
    return written
