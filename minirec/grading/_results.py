"""Interpreting a run: each exercise's status, read from the genuine verdict records of its check
cells in the executed notebook (:mod:`._verdicts`; the cells' errors give the check's message,
or say why no check could report), as :class:`ExerciseResult`; the notebook's
(:class:`NotebookResult`); an error told in one line with its cell and line
(:func:`describe_error`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._kernel import RunOutcome
from ._notebook import ExerciseSpec
from ._statuses import ERROR, FAILED, NOT_ATTEMPTED, NOT_RUN, PASSED, RAN
from ._verdicts import RunKey, read_records, withheld

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)")
_IPYTHON_FILE = re.compile(r" \(\d+\.py, line \d+\)$")


@dataclass(frozen=True)
class ExerciseResult:
    name: str
    status: str
    message: str = ""


@dataclass
class NotebookResult:
    """The outcome of one notebook: its status (``RAN``, ``TIMED_OUT``, ...), its exercises,
    other cells' errors (one line each) and a detail line for a notebook-level problem."""

    status: str
    exercises: list[ExerciseResult] = field(default_factory=list)
    detail: str = ""
    other_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    review: list[str] = field(default_factory=list)  # flags for the instructor (_review, records)
    not_run: list[tuple[str, str]] = field(default_factory=list)  # (label, source): the
    # learner's cells that were not run (grade only: added or changed outside the exercises)

    @property
    def passed(self) -> int:
        return sum(e.status == PASSED for e in self.exercises)

    def ok(self) -> bool:
        """No attempted exercise fails and the notebook ran to the end."""
        return self.status == RAN and all(
            e.status in (PASSED, NOT_ATTEMPTED) for e in self.exercises)


def _first_error(cell) -> dict | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def _cell_label(nb, index: int, roles: dict[int, str]) -> str:
    if index in roles:
        return roles[index]
    first = nb.cells[index].source.strip().split("\n")[0][:50]
    return f"cell {index + 1} (`{first}`)"


def describe_error(nb, error: dict, roles: dict[int, str]) -> str:
    """``Name: value`` of a kernel error, with the cell and line where it happened (from the
    traceback's innermost ``Cell In[k], line n`` frame) - never the full traceback."""
    ename, evalue = error.get("ename", "Error"), str(error.get("evalue", ""))
    evalue = _IPYTHON_FILE.sub("", evalue)  # "(3445446865.py, line 4)": a temporary file
    text = _ANSI.sub("", "\n".join(error.get("traceback", [])))
    where = ""
    frames = _CELL_FRAME.findall(text)
    if frames:
        count, line = (int(v) for v in frames[-1])
        hits = [i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and c.get("execution_count") == count]
        if hits:
            lines = nb.cells[hits[0]].source.split("\n")
            code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            where = f" (in {_cell_label(nb, hits[0], roles)}, line {line}"
            where += f": `{code[:80]}`)" if code else ")"
    return f"{ename}: {evalue}{where}"


def interpret(outcome: RunOutcome, specs: list[ExerciseSpec], key: RunKey) -> NotebookResult:
    """Each exercise's status from the executed notebook: from the genuine verdict records of
    its check cells (:mod:`._verdicts`), the errors of its cells telling why there is none or
    giving the check's message (the rules: :mod:`minirec.grading`)."""
    nb = outcome.nb
    roles = {}
    for spec in specs:
        if spec.exercise_cell is not None:
            roles[spec.exercise_cell] = f"the exercise cell of {spec.name}"
        for c in spec.check_cells:
            roles[c] = f"the check cell of {spec.name}"
    records = read_records(nb, [c for s in specs for c in s.check_cells], key)
    stopped_at = outcome.stopped[1] if outcome.stopped else None
    results = [_exercise_result(nb, spec, roles, outcome.stopped, stopped_at, records.by_cell)
               for spec in specs]
    owned = set(roles)
    others = []
    for index, cell in enumerate(nb.cells):
        error = _first_error(cell) if cell.cell_type == "code" else None
        if error is not None and index not in owned:
            others.append(f"{_cell_label(nb, index, roles)} raised "
                          f"{describe_error(nb, error, roles)}")
    status, detail = RAN, ""
    if outcome.stopped:
        status, index, detail = outcome.stopped
        if index is not None:
            detail += f", in {_cell_label(nb, index, roles)}"
    if outcome.output_truncated:
        detail = (detail + "; " if detail else "") + "outputs over the limit were dropped"
    review = [f"{p}" for p in records.problems]
    review += [f"the kernel saw: {a}" for a in records.alerts]
    return NotebookResult(status, results, detail, others, round(outcome.seconds, 1),
                          review=review)


_RANK = {PASSED: 0, NOT_ATTEMPTED: 1, FAILED: 2, ERROR: 3, NOT_RUN: 4}
_NO_VERDICT = ("the check cell ran, but no check reported a verdict (a check that did not run, "
               "or whose report was suppressed, counts as not run)")


def _exercise_result(nb, spec, roles, stopped, stopped_at, by_cell) -> ExerciseResult:
    exercise_error = None
    if spec.exercise_cell is not None:
        exercise_error = _first_error(nb.cells[spec.exercise_cell])
    worst = None
    for index in spec.check_cells:
        if stopped and stopped_at is not None and index >= stopped_at:
            if index == stopped_at or (spec.exercise_cell is not None
                                       and spec.exercise_cell == stopped_at):
                return ExerciseResult(spec.name, ERROR, f"{stopped[0]}: {stopped[2]}")
            return ExerciseResult(spec.name, NOT_RUN, f"the run stopped earlier ({stopped[0]})")
        cell = nb.cells[index]
        if cell.get("execution_count") is None:
            return ExerciseResult(spec.name, NOT_RUN, "the check cell was not run")
        for result in _check_cell_results(nb, spec, cell, by_cell.get(index, []), roles,
                                          exercise_error):
            if worst is None or _RANK[result.status] > _RANK[worst.status]:
                worst = result
    if stopped and stopped_at is not None and spec.exercise_cell == stopped_at:
        return ExerciseResult(spec.name, ERROR, f"{stopped[0]}: {stopped[2]}")
    return worst or ExerciseResult(spec.name, NOT_RUN, "it has no check cell")


def _check_cell_results(nb, spec, cell, records, roles, exercise_error) -> list[ExerciseResult]:
    """The results one check cell gives its exercise: one per genuine record, and one for an
    error of the cell that no record accounts for - an error that stopped a check from running
    (``error``), or a check's exception whose record is missing (``not run``)."""
    error = _first_error(cell)
    results = [_record_result(nb, spec, record, error, roles, exercise_error)
               for record in records]
    if error is not None:
        raised = _RAISED.get(error.get("ename"), ERROR)
        if not any(r.status == raised for r in results):
            results.append(ExerciseResult(spec.name, ERROR, _error_message(
                nb, error, roles, exercise_error)) if raised == ERROR
                else ExerciseResult(spec.name, NOT_RUN, _NO_VERDICT))
    return results or [ExerciseResult(spec.name, NOT_RUN, _NO_VERDICT)]


_RAISED = {"NotAttempted": NOT_ATTEMPTED, "CheckFailed": FAILED}


def _record_result(nb, spec, record, error, roles, exercise_error) -> ExerciseResult:
    """A genuine record's result, with the check's message from the cell's error output."""
    verdict = record["verdict"]
    if withheld(record):
        return ExerciseResult(spec.name, NOT_RUN, "the check withheld its verdict: "
                              + "; ".join(record.get("alerts", [])[:3]))
    if verdict == PASSED:
        return ExerciseResult(spec.name, PASSED)
    if verdict in (NOT_ATTEMPTED, FAILED):
        shown = error is not None and _RAISED.get(error.get("ename")) == verdict
        return ExerciseResult(spec.name, verdict, str(error.get("evalue", "")) if shown
                              else "(the check's message was not shown)")
    return ExerciseResult(spec.name, ERROR, _error_message(nb, error, roles, exercise_error)
                          if error is not None else "the check raised an error (not shown)")


def _error_message(nb, error, roles, exercise_error) -> str:
    ename = error.get("ename")
    message = f"the check raised {describe_error(nb, error, roles)}"
    if exercise_error is not None:
        message = (f"the exercise cell raised {describe_error(nb, exercise_error, roles)}"
                   f"\n(so the check could not run: {ename}: {error.get('evalue', '')})")
    return message
