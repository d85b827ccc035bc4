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
        if e.status in (FAILED, ERROR, NOT_RUN, MISSING) and e.message:
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
             for s in (PASSED, FAILED, ERROR, NOT_RUN, MISSING, NOT_ATTEMPTED) if counts[s]]
    if not result.ok():
        verdict = "not there yet"
    elif counts[PASSED]:
        verdict = "all attempted exercises pass"
    else:
        verdict = "nothing attempted yet"
    lines.append(f"  {', '.join(parts)} of {len(result.exercises)}: {verdict}.")
    return "\n".join(lines)


_MAX_SHOWN_CELLS = 10
_MAX_SHOWN_LINES = 15


def format_graded(label: str, result: NotebookResult) -> str:
    """The feedback of a graded submission: :func:`format_check`'s report, then the review
    flags with their reasons, then the learner's cells that were not run (added or changed
    outside the exercise cells), each shown."""
    parts = [format_check(label, result)]
    if result.review:
        parts.append("Flagged for the instructor's review:\n" + "\n".join(
            f"  - {flag}" for flag in result.review))
    if result.not_run:
        shown = []
        for cell_label, source in result.not_run[:_MAX_SHOWN_CELLS]:
            lines = source.rstrip().split("\n")
            more = len(lines) - _MAX_SHOWN_LINES
            body = "\n".join(lines[:_MAX_SHOWN_LINES]) + (f"\n... ({more} more lines)" if more > 0
                                                         else "")
            shown.append(f"  {cell_label}:\n{_indent(body, '      ')}")
        if len(result.not_run) > _MAX_SHOWN_CELLS:
            shown.append(f"  ... and {len(result.not_run) - _MAX_SHOWN_CELLS} more cells")
        parts.append("Not run: the grader runs the released notebook with your exercise cells "
                     "put in, and nothing else of yours. Code an exercise needs belongs in its "
                     "exercise cell. Your other cells that differ from the released notebook:\n"
                     + "\n".join(shown))
    return "\n".join(parts)


def write_feedback(report: GradeReport, folder) -> list[Path]:
    """One text file per submission, ``<submission>.txt``: the report ``minirec check`` prints
    (each exercise's status, the check's table and diagnosis), the review flags and the cells
    not run (:func:`format_graded`), to hand back to the learner."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sub, result in report.rows:
        path = folder / (sub.name.replace(os.sep, "_") + ".txt")
        path.write_text(format_graded(sub.name, result) + "\n", encoding="utf-8")
        written.append(path)
    return written
