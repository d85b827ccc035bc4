"""The grades: :class:`GradeReport` (every submission's row, in memory until the end), written
once as a CSV (:func:`write_csv`) and told as the summary ``minirec grade`` prints
(:func:`format_summary`)."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._results import NotebookResult
from ._statuses import ERROR, MISSING, PASSED, RAN, TAMPERED
from ._submissions import Submission


@dataclass
class GradeReport:
    """Every submission's row in grading order, the exercise columns (the released notebook's),
    whether the kernels were sandboxed (and if not, why), the entries ignored, the wall time,
    what changed while grading (submissions on disk, and minirec's files not by a kernel), the
    released notebook graded against, and how many runs were in flight at once (``jobs``;
    ``jobs_note`` says why fewer than asked)."""

    exercises: list[str]
    rows: list[tuple[Submission, NotebookResult]]
    sandboxed: bool
    sandbox_note: str
    ignored: list[str]
    seconds: float
    changed_on_disk: list[str] = field(default_factory=list)
    changed_outside: list[str] = field(default_factory=list)  # minirec files, not by a kernel
    release: str = ""  # the released exercise notebook graded against
    jobs: int = 1
    jobs_note: str = ""

    def score(self, result: NotebookResult) -> int:
        return 0 if result.status == TAMPERED else result.passed


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: a string starting with = + - @, a tab or a
    carriage return (a formula, e.g. a submission named ``=HYPERLINK(...).ipynb``) gets a
    leading ``'``, as OWASP's "CSV injection" advises; other values are unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(report: GradeReport, out) -> None:
    """One row per submission: submission, status, score, out_of, the exercises (the released
    notebook's, for every row), seconds, review (the flags, separated by semicolons) and note.
    Every text cell is :func:`spreadsheet_safe`. Written to a temporary file and moved into
    place."""
    out = Path(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "status", "score", "out_of", *report.exercises, "seconds",
                     "review", "note"])
    for sub, result in report.rows:
        by_name = {e.name: e.status for e in result.exercises}
        cells = [by_name.get(name, MISSING if result.exercises else "") for name in
                 report.exercises]
        note = result.detail or _first_problem(result)
        review = "; ".join(result.review)
        row = [sub.name, result.status, report.score(result), len(report.exercises), *cells,
               f"{result.seconds:.1f}", review.replace("\n", " ")[:1000],
               note.replace("\n", " ")[:500]]
        writer.writerow([spreadsheet_safe(v) for v in row])
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, out)


def _first_problem(result: NotebookResult) -> str:
    """The first error of an exercise, else of another cell: one line for the CSV."""
    for e in result.exercises:
        if e.status == ERROR:
            return f"{e.name}: {e.message.splitlines()[0]}"
    return result.other_errors[0] if result.other_errors else ""


def format_summary(report: GradeReport) -> str:
    """The summary ``minirec grade`` prints at the end."""
    n = len(report.rows)
    mode = ("kernels sandboxed: read-only file system outside each working folder" if
            report.sandboxed else f"NO sandbox ({report.sandbox_note}): minirec's files "
            "checked and restored after each run")
    lines = [f"Graded {n} submission{'s' * (n != 1)} in {report.seconds:.0f} s ({mode})."]
    if report.jobs_note:
        lines.append(f"Ran {report.jobs_note}.")
    else:
        lines.append(f"Ran {report.jobs} at a time (--jobs), each in its own sandbox."
                     if report.jobs > 1 else "Ran one at a time (--jobs 1).")
    if report.release:
        lines.append(f"Against the released notebook {report.release}.")
    statuses: dict[str, list[str]] = {}
    for sub, result in report.rows:
        statuses.setdefault(result.status, []).append(sub.name)
    for status, names in sorted(statuses.items(), key=lambda kv: kv[0] != RAN):
        shown = "" if status == RAN else ": " + ", ".join(names[:8]) + (
            " ..." if len(names) > 8 else "")
        lines.append(f"  {status:<15} {len(names):>3}{shown}")
    if report.exercises:
        lines.append("Exercises passed:")
        width = max(len(e) for e in report.exercises)
        for name in report.exercises:
            count = sum(any(e.name == name and e.status == PASSED for e in r.exercises)
                        and r.status != TAMPERED for _s, r in report.rows)
            lines.append(f"  {name:<{width}}  {count:>3} / {n}")
        scores = [report.score(r) for _s, r in report.rows]
        lines.append(f"Mean score {sum(scores) / max(n, 1):.2f} out of {len(report.exercises)}.")
    flagged = [sub.name for sub, result in report.rows if result.review]
    if flagged:
        lines.append("Review (the machinery reached into, tagged cells ignored or verdicts "
                     "forged: see the review column): " + ", ".join(flagged))
    for name in report.changed_on_disk:
        lines.append(f"Warning: {name} changed on disk during grading; the copy read before "
                     "any run was graded.")
    if report.changed_outside:
        shown = ", ".join(f"minirec/{p}" for p in report.changed_outside[:5])
        lines.append(f"Warning: minirec's files changed during grading ({shown}), not by a "
                     "submission (they are read-only in the sandbox): grade again with a "
                     "minirec nobody edits.")
    for entry in report.ignored:
        lines.append(f"Ignored: {entry}")
    return "\n".join(lines)
