"""Assembling a run: what the grader runs for one submission, and the folder it runs in.

Today the notebook run is the submission as it was submitted (its saved outputs are cleared
before the run by :func:`minirec.grading.run_notebook`, so they count for nothing), and its
exercises are the ones found in it (:func:`minirec.grading.find_exercises`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._notebook import ExerciseSpec, NotANotebook, find_exercises, read_notebook
from ._results import NotebookResult
from ._statuses import NO_EXERCISES, NOT_A_NOTEBOOK


@dataclass(frozen=True)
class Assembled:
    """The notebook to run for a submission and the exercises to read from its outputs."""

    nb: object
    specs: list[ExerciseSpec]


def assemble(data: bytes) -> Assembled | NotebookResult:
    """What to run for a submission's bytes, or the row of a submission that cannot be run
    (``NOT_A_NOTEBOOK``, ``NO_EXERCISES``) saying why."""
    try:
        nb = read_notebook(data)
    except NotANotebook as exc:
        return NotebookResult(NOT_A_NOTEBOOK, detail=str(exc))
    specs = find_exercises(nb)
    if not specs:
        return NotebookResult(NO_EXERCISES, detail="no cell tagged `check` and no call of a "
                              "check_... function")
    return Assembled(nb, specs)


def make_workdir(run_root: Path, data: bytes) -> Path:
    """A run's fresh working folder, ``run_root/work``, holding the submission as
    ``submission.ipynb``."""
    workdir = run_root / "work"
    workdir.mkdir(parents=True)
    (workdir / "submission.ipynb").write_bytes(data)
    return workdir
