"""The released exercise notebook: what every submission of a lesson is graded against.

``minirec build`` writes ``exercises/NN_slug.ipynb`` with the notebook metadata
``{"minirec": {"generated_from": "lessons/NN_slug.py", "notebook": "exercise"}}``. The grader
runs that notebook, with only the learner's exercise cells put in (:mod:`._assemble`); its
exercises are the CSV's columns and their number is ``out_of``, for every row.

Where it comes from: ``grade(..., release=PATH)`` (``minirec grade --release PATH``); without
it, the lesson most submissions name in their metadata, found as
``exercises/<lesson>.ipynb`` in the repository (the one the current folder is in, else the one
holding the installed minirec).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from minirec import notebooks

from ._notebook import (
    ExerciseSpec,
    NotANotebook,
    _defined_functions,
    cell_tags,
    find_exercises,
    read_notebook,
)


class ReleaseError(RuntimeError):
    """The released exercise notebook cannot be found or is not one; ``str()`` says why."""


@dataclass(frozen=True)
class Release:
    """A released exercise notebook: where it was read, the lesson it was generated from, the
    notebook, its exercises and, per exercise, the functions its exercise cell defines."""

    path: Path
    lesson: str
    nb: object
    specs: list[ExerciseSpec]
    functions: dict[str, tuple[str, ...]]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]


def lesson_of(nb) -> str | None:
    """The lesson a notebook says it was generated from (``lessons/03_scans.py``), if any."""
    meta = nb.get("metadata", {}).get("minirec", {})
    lesson = meta.get("generated_from") if isinstance(meta, dict) else None
    return lesson if isinstance(lesson, str) else None


def variant_of(nb) -> str | None:
    """``exercise`` or ``solution``: which of minirec's notebooks it says it is."""
    meta = nb.get("metadata", {}).get("minirec", {})
    variant = meta.get("notebook") if isinstance(meta, dict) else None
    return variant if isinstance(variant, str) else None


def defined_functions(source: str) -> tuple[str, ...]:
    """The functions a cell defines at its top level, in order (read from ``def`` lines where
    the cell does not parse: a learner's cell may have a syntax error)."""
    return tuple(_defined_functions(source))


def load_release(path) -> Release:
    """Read a released exercise notebook; refuse one that is not (a solution notebook would
    run the solutions for every exercise a submission leaves out)."""
    path = Path(path)
    try:
        nb = read_notebook(path.read_bytes())
    except OSError as exc:
        raise ReleaseError(f"cannot read the released notebook {path}: {exc.strerror}") from None
    except NotANotebook as exc:
        raise ReleaseError(f"the released notebook {path} is {exc}") from None
    if variant_of(nb) != "exercise":
        raise ReleaseError(f"{path} is not an exercise notebook written by `minirec build` (its "
                           "metadata should say minirec.notebook: exercise)")
    specs = [s for s in find_exercises(nb) if s.exercise_cell is not None]
    if not specs:
        raise ReleaseError(f"{path} has no exercise cell followed by its check cell")
    functions = {s.name: defined_functions(nb.cells[s.exercise_cell].source) for s in specs}
    return Release(path, lesson_of(nb) or path.stem, nb, specs, functions)


def find_release(datas, root=None) -> Release:
    """The release of the lesson most of the submissions (their bytes, ``datas``) name, from
    ``exercises/`` of the repository ``root`` (default: :func:`repository_root`)."""
    named = Counter()
    for data in datas:
        try:
            lesson = lesson_of(read_notebook(data))
        except NotANotebook:
            continue
        if lesson:
            named[lesson] += 1
    if not named:
        raise ReleaseError("no submission says which lesson it is (notebook metadata "
                           "minirec.generated_from): name the released notebook with --release")
    (lesson, count), *rest = named.most_common()
    if rest and rest[0][1] == count:
        raise ReleaseError(f"as many submissions name {lesson} as {rest[0][0]}: name the "
                           "released notebook with --release")
    folder = Path(root) if root is not None else repository_root()
    path = folder / "exercises" / f"{Path(lesson).stem}.ipynb"
    if not path.is_file():
        raise ReleaseError(f"the submissions are of {lesson}, but {path} does not exist: name "
                           "the released notebook with --release")
    return load_release(path)


def repository_root() -> Path:
    """The repository the current folder is in, else the one holding the installed minirec."""
    try:
        return notebooks.find_root()
    except FileNotFoundError:
        return Path(notebooks.__file__).resolve().parents[1]


def tagged_code_cells(nb, tag: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and tag in cell_tags(c)]


def watched_folders(submissions, release: Release) -> list[Path]:
    """Folders a graded kernel must not read from (it is told, and any read of them makes its
    verdicts ``tampered``): the submissions, and the release's repository's solutions and
    lessons."""
    repository = release.path.resolve().parent.parent
    return [Path(submissions).resolve(), repository / "solutions", repository / "lessons"]
