"""Assembling a run: the notebook the grader runs for one submission, and the folder it runs in.

As nbgrader's autograde does, the notebook run is the *released* exercise notebook
(:mod:`._release`) with one change per exercise: the source of its exercise cell is the
learner's. Nothing else of the submission is run - not its other cells, not its check cells,
not its outputs, not its metadata - and what the learner added or changed there is listed for
the feedback.

The learner's cell for an exercise is found, in this order, as

1. the code cell with the released exercise cell's id (Jupyter keeps a cell's id while it is
   edited; ``minirec build`` writes the ids);
2. else a cell tagged ``exercise`` that defines the exercise's function (the cell was copied);
3. else, in a notebook whose tags were all lost, a cell that defines it.

An exercise with no such cell runs the released stub and is ``missing`` (a submission with none
at all is not run: ``no exercises``). Tagged cells that
match nothing, or repeat an exercise or a check cell, are ignored and flagged; a notebook of
another lesson (its metadata) is not run (``wrong lesson``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from minirec.notebooks import CHECK_TAG, EXERCISE_TAG

from ._kernel import RunOutcome
from ._notebook import ExerciseSpec, NotANotebook, cell_tags, read_notebook
from ._release import Release, defined_functions, lesson_of, variant_of
from ._results import ExerciseResult, NotebookResult, interpret
from ._review import review_exercise_cells
from ._statuses import MISSING, NO_EXERCISES, NOT_A_NOTEBOOK, WRONG_LESSON
from ._verdicts import RunKey


@dataclass
class Assembled:
    """The notebook to run for a submission, the exercises to read from its outputs, the
    learner's source of each exercise that has one (``answers``), the flags found while
    assembling and the learner's cells that are not run (label, source)."""

    nb: object
    specs: list[ExerciseSpec]
    answers: dict[str, str] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)
    not_run: list[tuple[str, str]] = field(default_factory=list)
    functions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the release's
    watch: tuple[Path, ...] = ()  # folders the kernel must not read (the grader's choice)

    @property
    def missing(self) -> list[str]:
        return [s.name for s in self.specs if s.name not in self.answers]


def assemble(data: bytes, release: Release, *, watch=()) -> Assembled | NotebookResult:
    """What to run for a submission's bytes, or the row of a submission that is not run
    (``NOT_A_NOTEBOOK``, ``WRONG_LESSON``, ``NO_EXERCISES``) saying why. ``watch``: kept for the run
    (:func:`minirec.grading._verdicts.install`)."""
    try:
        sub = read_notebook(data)
    except NotANotebook as exc:
        return NotebookResult(NOT_A_NOTEBOOK, detail=str(exc))
    lesson = lesson_of(sub)
    if lesson is not None and lesson != release.lesson:
        return NotebookResult(WRONG_LESSON, detail=f"a notebook of {lesson}; the class is "
                              f"graded on {release.lesson}")
    taken = match_answers(sub, release)
    if not taken:  # nothing to grade: no kernel is started for the released stubs
        return NotebookResult(NO_EXERCISES, [ExerciseResult(s.name, MISSING, _NO_ANSWER)
                                             for s in release.specs],
                              detail=f"no cell answers an exercise of {release.lesson} (none "
                              "with a released cell's id, none tagged exercise that defines "
                              "its function)")
    nb = copy.deepcopy(release.nb)
    answers = {}
    for spec in release.specs:
        if spec.name in taken:
            answers[spec.name] = sub.cells[taken[spec.name]].source
            nb.cells[spec.exercise_cell].source = answers[spec.name]
    review = []
    if variant_of(sub) == "solution":
        review.append("the submission is minirec's solution notebook (its metadata says so)")
    ignored = ignored_tagged_cells(sub, release, set(taken.values()))
    if ignored:
        review.append("tagged cells ignored: " + ", ".join(ignored))
    return Assembled(nb, list(release.specs), answers, review,
                     cells_not_run(sub, release, set(taken.values())), dict(release.functions),
                     tuple(watch))


def _code_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def match_answers(sub, release: Release) -> dict[str, int]:
    """Exercise → the index of the submission's cell that answers it (rules 1-3 above)."""
    code = [i for i in _code_cells(sub) if CHECK_TAG not in cell_tags(sub.cells[i])]
    by_id: dict[str, int] = {}
    for i in code:
        by_id.setdefault(sub.cells[i].get("id"), i)
    taken: dict[str, int] = {}
    for spec in release.specs:
        found = by_id.get(release.nb.cells[spec.exercise_cell].get("id"))
        if found is not None:
            taken[spec.name] = found
    tags_lost = not any(EXERCISE_TAG in cell_tags(sub.cells[i]) for i in code)
    for spec in release.specs:
        wanted = release.functions[spec.name][:1]
        if spec.name in taken or not wanted:
            continue
        for i in code:
            if i not in taken.values() and wanted[0] in defined_functions(sub.cells[i].source) \
                    and (tags_lost or EXERCISE_TAG in cell_tags(sub.cells[i])):
                taken[spec.name] = i
                break
    return taken


def ignored_tagged_cells(sub, release: Release, used: set[int]) -> list[str]:
    """The submission's tagged cells that are not run: exercise cells not taken (a second copy
    of an exercise, or one the release does not have) and check cells that are not one of the
    release's (by id or source), or repeat one."""
    owners = {f: name for name, fns in release.functions.items() for f in fns}
    release_checks = {}
    for spec in release.specs:
        for c in spec.check_cells:
            cell = release.nb.cells[c]
            release_checks[cell.get("id")] = release_checks[cell.source.strip()] = c
    seen_checks: set[int] = set()
    ignored = []
    for i in _code_cells(sub):
        cell, tags = sub.cells[i], cell_tags(sub.cells[i])
        if EXERCISE_TAG in tags and i not in used:
            owner = next((owners[f] for f in defined_functions(cell.source) if f in owners), None)
            ignored.append(f"cell {i + 1} (a second exercise cell of {owner})" if owner
                           else f"cell {i + 1} (an exercise the release does not have)")
        elif CHECK_TAG in tags:
            match = release_checks.get(cell.get("id"), release_checks.get(cell.source.strip()))
            if match is None or match in seen_checks:
                ignored.append(f"cell {i + 1} (an extra check cell)")
            else:
                seen_checks.add(match)
    return ignored


def cells_not_run(sub, release: Release, used: set[int]) -> list[tuple[str, str]]:
    """The submission's code cells that differ from the release and are not run: (label,
    source), e.g. ``("cell 4, added", "def helper(x): ...")``."""
    by_id = {c.get("id"): c.source for c in release.nb.cells if c.cell_type == "code"}
    sources = {s.strip() for s in by_id.values()}
    listed = []
    for i in _code_cells(sub):
        source = sub.cells[i].source
        if i in used or not source.strip():
            continue
        cell_id = sub.cells[i].get("id")
        if cell_id in by_id and source.strip() != by_id[cell_id].strip():
            listed.append((f"cell {i + 1}, changed", source))
        elif cell_id not in by_id and source.strip() not in sources:
            listed.append((f"cell {i + 1}, added", source))
    return listed


def result_of(run: Assembled, outcome: RunOutcome, key: RunKey, armed: bool) -> NotebookResult:
    """The row of an assembled run: each exercise's status from its verified verdicts
    (:func:`~minirec.grading.interpret`), ``missing`` where the submission has no answer, the
    review flags (assembling, the exercise cells read, the kernel's alerts and forged records)
    and the cells not run. ``armed``: the kernel read its key file (else no check could
    report, and the detail says so)."""
    result = interpret(outcome, run.specs, key)
    result.exercises = [ExerciseResult(e.name, MISSING, _NO_ANSWER) if e.name in run.missing
                        else e for e in result.exercises]
    result.review = (run.review + review_exercise_cells(run.answers, run.functions)
                     + result.review)
    result.not_run = run.not_run
    if not armed:
        note = ("minirec's verdict records were not armed in the kernel (its startup script did "
                "not run): no check could report")
        result.detail = f"{result.detail}; {note}" if result.detail else note
    return result


_NO_ANSWER = ("the submission has no cell for it (none with the released cell's id, none "
              "tagged exercise that defines its function)")


def make_workdir(run_root: Path) -> Path:
    """A run's fresh, empty working folder, ``run_root/work``."""
    workdir = run_root / "work"
    workdir.mkdir(parents=True)
    return workdir
