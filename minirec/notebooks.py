"""Lessons -> notebooks: split a lesson into its solution and exercise notebooks, run them, build.

A lesson is ``lessons/NN_slug.py`` in jupytext's percent format; it is the only source of the
generated notebooks (see CONTRIBUTING.md for the full conventions):

- A code cell tagged ``exercise`` holds one or more solution regions::

      # BEGIN SOLUTION: update h from h and x[t]
      h = a * h + (1 - a) * x[t]
      # END SOLUTION

  In ``solutions/NN_slug.ipynb`` the two marker lines are removed. In
  ``exercises/NN_slug.ipynb`` each region becomes one line, at the marker's indentation::

      raise NotImplementedError("Exercise: update h from h and x[t]")

  (``Exercise: replace this line with your code`` when the marker has no ``: hint``).
- The next code cell after an exercise cell is tagged ``check`` and calls a ``minirec.check``
  function; run against the blank exercise it raises ``minirec.check.NotAttempted``.
- Cells tagged ``solution-only`` are left out of the exercise notebook.
- Other tags (``nbval-ignore-output``, ``hide-input``, ...) pass through unchanged.

Solution notebooks are executed with nbclient (kernel ``python3``) with ``lessons/`` as the
working directory - the same depth below the repository root as ``solutions/`` and
``exercises/``, where nbval and Jupyter run a notebook - and with ``TQDM_DISABLE=1``.
Generated notebooks are nbformat 4.5 with fixed notebook metadata, cell ids derived from the
cell's content and no timing metadata, so a rebuild is byte-for-byte identical wherever the
outputs are deterministic.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import nbformat

__all__ = [
    "LessonError",
    "BookBuildError",
    "split_lesson",
    "execute",
    "timeout_advice",
    "check_exercise",
    "blank_run_cells",
    "blank_isolation_problems",
    "build",
    "stale",
    "sync_book",
    "build_book",
    "find_root",
    "lesson_paths",
    "current_env_kernel_manager",
    "EXERCISE_TAG",
    "CHECK_TAG",
    "SOLUTION_ONLY_TAG",
    "RAISES_EXCEPTION_TAG",
]

NBFORMAT_MINOR = 5
DEFAULT_HINT = "replace this line with your code"
EXECUTION_ENV = {"TQDM_DISABLE": "1"}
LESSON_BUDGET_S = 60.0  # CONTRIBUTING.md: a whole lesson runs in under a minute on 2 CPU cores
LESSON_LIMIT_S = 90.0  # over this a build fails where CI is set (a warning above the budget)
CELL_TIMEOUT_S = 300  # per cell; `minirec build --timeout S` changes it
TIMES_FILE = "lesson_times.json"  # in book/; gitignored (see book/.gitignore)

#: Cell tags the pipeline writes and :mod:`minirec.grading` reads (CONTRIBUTING.md, "Exercises:
#: markers and tags"); other tags pass through unchanged.
EXERCISE_TAG = "exercise"  # a code cell with solution regions, blanked in exercises/
CHECK_TAG = "check"  # a check cell: follows an exercise cell, kept in both notebooks
SOLUTION_ONLY_TAG = "solution-only"  # left out of exercises/
RAISES_EXCEPTION_TAG = "raises-exception"  # raises by design (nbval's tag): not a blank's failure

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}

_LESSON_NAME = re.compile(r"^\d{2}_[A-Za-z0-9_]+$")
_CELL_HEADER = re.compile(r"^#\s*%%(?!%)")
_MARKER = re.compile(r"^(?P<indent>[ \t]*)#[ \t]*(?P<kind>BEGIN|END) SOLUTION(?P<rest>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours in tracebacks
_MARKERISH = re.compile(r"\b(BEGIN|END)[ _]SOLUTION")
# Cell metadata that only serves jupytext's round trip; everything else is kept.
_JUPYTEXT_CELL_KEYS = {"lines_to_next_cell", "lines_to_end_of_cell_marker", "cell_marker"}


class LessonError(ValueError):
    """A lesson source breaks the conventions; ``str()`` reads ``path:line: message``."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed (a warning counts as a failure)."""


# --------------------------------------------------------------------------------------------
# Splitting a lesson
# --------------------------------------------------------------------------------------------


def split_lesson(text: str, *, path: str = "<lesson>"):
    """Split a percent-format lesson into ``(solution_nb, exercise_nb)``, neither executed.

    ``path`` is only used in error messages. Raises :class:`LessonError` (with the lesson's
    line number) for unbalanced or malformed markers, a marker outside an exercise cell, an
    exercise cell without a region, or a check cell that does not follow an exercise.
    """
    solution, exercise, _ = _split(text, path)
    return solution, exercise


def _split(text: str, path: str):
    import jupytext

    source = jupytext.reads(text, fmt="py:percent")
    spans = _cell_spans(text, len(source.cells))
    ids = _stable_ids(source.cells)
    sol_cells, ex_cells, sol_lines = [], [], []
    previous_code_tags: list[str] | None = None
    previous_code_line: int | None = None
    for index, (cell, span) in enumerate(zip(source.cells, spans, strict=True)):
        tags = list(cell.metadata.get("tags", []))
        header_line = span[0] if span else None
        raw_marker_lines = _markerish_lines(text, span)
        lines = cell.source.split("\n")
        marker_lines = [k for k, line in enumerate(lines) if _MARKERISH.search(line)]

        def lesson_line(k, _raw=raw_marker_lines, _ours=marker_lines, _head=header_line):
            if k in _ours and len(_raw) == len(_ours):
                return _raw[_ours.index(k)]
            return _head

        if EXERCISE_TAG in tags:
            if cell.cell_type != "code":
                raise LessonError(path, header_line, "only a code cell can be tagged `exercise`")
            for other in (CHECK_TAG, SOLUTION_ONLY_TAG):
                if other in tags:
                    raise LessonError(
                        path, header_line, f"a cell cannot be tagged both `exercise` and `{other}`"
                    )
            sol_source, ex_source = _split_exercise(lines, path, lesson_line, header_line)
        else:
            if marker_lines:
                k = marker_lines[0]
                raise LessonError(
                    path,
                    lesson_line(k),
                    f"solution marker outside an exercise cell: {lines[k].strip()!r} "
                    '(tag the cell `# %% tags=["exercise"]`, or reword the text)',
                )
            sol_source = ex_source = cell.source
        if CHECK_TAG in tags:
            if cell.cell_type != "code":
                raise LessonError(path, header_line, "only a code cell can be tagged `check`")
            if not previous_code_tags or not {EXERCISE_TAG, CHECK_TAG} & set(previous_code_tags):
                raise LessonError(
                    path,
                    header_line,
                    "a `check` cell must follow an `exercise` cell (or another `check` cell) "
                    "with no code cell in between",
                )
        if cell.cell_type == "code":
            if EXERCISE_TAG in (previous_code_tags or []) and CHECK_TAG not in tags:
                raise LessonError(
                    path,
                    header_line,
                    "the code cell after an `exercise` cell must be its `check` cell "
                    '(`# %% tags=["check"]`)',
                )
            previous_code_tags, previous_code_line = tags, header_line

        metadata = {
            k: copy.deepcopy(v) for k, v in cell.metadata.items() if k not in _JUPYTEXT_CELL_KEYS
        }
        sol_cells.append(_new_cell(cell.cell_type, sol_source, metadata, ids[index]))
        sol_lines.append(header_line)
        if SOLUTION_ONLY_TAG not in tags:
            ex_cells.append(_new_cell(cell.cell_type, ex_source, metadata, ids[index]))
    if previous_code_tags is not None and EXERCISE_TAG in previous_code_tags:
        raise LessonError(
            path, previous_code_line, "the last exercise cell has no `check` cell after it"
        )
    return (
        _new_notebook(sol_cells, path, "solution"),
        _new_notebook(ex_cells, path, "exercise"),
        sol_lines,
    )


def _split_exercise(lines, path, lesson_line, header_line):
    sol, ex = [], []
    open_at = None  # index of the open BEGIN line
    region_size = 0
    regions = 0
    for k, line in enumerate(lines):
        match = _MARKER.match(line)
        if match is None:
            if _MARKERISH.search(line):
                raise LessonError(
                    path,
                    lesson_line(k),
                    f"malformed solution marker {line.strip()!r}: write `# BEGIN SOLUTION`, "
                    "`# BEGIN SOLUTION: <hint>` or `# END SOLUTION` on a line of its own",
                )
            sol.append(line)
            if open_at is None:
                ex.append(line)
            elif line.strip():
                region_size += 1
            continue
        kind, rest, indent = match["kind"], match["rest"], match["indent"]
        if kind == "BEGIN":
            if open_at is not None:
                raise LessonError(
                    path,
                    lesson_line(k),
                    "`# BEGIN SOLUTION` inside an open region (the one opened at line "
                    f"{lesson_line(open_at)} has no `# END SOLUTION` before this one)",
                )
            if rest.strip() and not rest.lstrip().startswith(":"):
                raise LessonError(
                    path,
                    lesson_line(k),
                    f"malformed marker {line.strip()!r}: a hint follows a colon, "
                    "`# BEGIN SOLUTION: <hint>`",
                )
            hint = rest.lstrip()[1:].strip() if rest.strip() else ""
            stub = _quote(f"Exercise: {hint or DEFAULT_HINT}")
            ex.append(f"{indent}raise NotImplementedError({stub})")
            open_at, region_size = k, 0
        else:
            if rest.strip():
                raise LessonError(
                    path,
                    lesson_line(k),
                    f"malformed marker {line.strip()!r}: nothing may follow `# END SOLUTION`",
                )
            if open_at is None:
                raise LessonError(
                    path, lesson_line(k), "`# END SOLUTION` without a `# BEGIN SOLUTION`"
                )
            if region_size == 0:
                raise LessonError(path, lesson_line(open_at), "empty solution region")
            open_at = None
            regions += 1
    if open_at is not None:
        raise LessonError(
            path,
            lesson_line(open_at),
            "`# BEGIN SOLUTION` has no `# END SOLUTION` in the same cell",
        )
    if regions == 0:
        raise LessonError(
            path, header_line, "an `exercise` cell needs at least one `# BEGIN SOLUTION` region"
        )
    return "\n".join(sol), "\n".join(ex)


def _quote(text: str) -> str:
    """A double-quoted Python string literal for ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def _cell_spans(text: str, n_cells: int):
    """Per cell: ``(line, start, stop)`` - the 1-based line of its ``# %%`` header (of its
    first line for a cell before any header) and the 0-based range of its body lines - or
    None for every cell when the lesson's cells cannot be matched with jupytext's."""
    lines = text.split("\n")
    headers = [i for i, line in enumerate(lines) if _CELL_HEADER.match(line)]
    spans = [(a + 1, a + 1, b) for a, b in zip(headers, headers[1:] + [len(lines)], strict=True)]
    if n_cells == len(headers) + 1:  # a cell before the first `# %%`, after any YAML header
        start = 0
        if lines and lines[0].startswith("# ---"):
            start = next((i + 1 for i in range(1, len(lines)) if lines[i].startswith("# ---")), 0)
        first = headers[0] if headers else len(lines)
        while start < first and not lines[start].strip():
            start += 1
        spans.insert(0, (start + 1, start, first))
    if len(spans) != n_cells:
        return [None] * n_cells
    return spans


def _markerish_lines(text: str, span):
    """1-based numbers of the lesson lines in ``span`` that mention a solution marker."""
    if span is None:
        return []
    lines = text.split("\n")
    return [i + 1 for i in range(span[1], span[2]) if _MARKERISH.search(lines[i])]


def _stable_ids(cells) -> list[str]:
    """Cell ids derived from the cells' content (not random), unique within the lesson."""
    ids, seen = [], {}
    for cell in cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        ids.append(digest if seen[digest] == 1 else f"{digest}-{seen[digest]}")
    return ids


def _new_cell(cell_type: str, source: str, metadata: dict, cell_id: str):
    if cell_type == "code":
        cell = nbformat.v4.new_code_cell(source, metadata=metadata)
    elif cell_type == "markdown":
        cell = nbformat.v4.new_markdown_cell(source, metadata=metadata)
    else:
        cell = nbformat.v4.new_raw_cell(source, metadata=metadata)
    cell["id"] = cell_id
    return cell


def _new_notebook(cells, path: str, variant: str):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.nbformat, nb.nbformat_minor = 4, NBFORMAT_MINOR
    nb.metadata = _notebook_metadata(path, variant)
    return nb


def _notebook_metadata(path: str, variant: str) -> dict:
    return {
        "kernelspec": dict(KERNELSPEC),
        "language_info": copy.deepcopy(LANGUAGE_INFO),
        "minirec": {"generated_from": path, "notebook": variant},
    }


# --------------------------------------------------------------------------------------------
# Running notebooks
# --------------------------------------------------------------------------------------------


def execute(
    nb,
    timeout: int = CELL_TIMEOUT_S,
    *,
    cwd: str | os.PathLike | None = None,
    allow_errors=False,
    cell_seconds: dict[int, float] | None = None,
):
    """Run ``nb`` top to bottom in a fresh ``python3`` kernel; return the executed copy.

    ``timeout`` is per cell, in seconds. The kernel gets ``TQDM_DISABLE=1``; ``MPLBACKEND`` is
    left alone (the inline backend keeps the figures). Timing metadata is not recorded and the
    notebook metadata is reset to the fixed values, so that outputs are all that changes.
    ``cell_seconds``, when given, receives each executed cell's index -> wall seconds (the
    kernel's start-up belongs to no cell).
    Raises ``nbclient.exceptions.CellExecutionError`` on the first error unless
    ``allow_errors``, and ``nbclient.exceptions.CellTimeoutError`` when a cell runs past
    ``timeout``, with ``cell_index`` set on the exception.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    nb = copy.deepcopy(nb)
    env = {**os.environ, **EXECUTION_ENV}
    clock = _CellClock(cell_seconds)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=current_env_kernel_manager(),
        allow_errors=allow_errors,
        record_timing=False,
        resources={"metadata": {"path": str(cwd or os.getcwd())}},
        on_cell_execute=clock.start,
        on_cell_executed=clock.stop,
    )
    try:
        client.execute(env=env)
    except CellTimeoutError as exc:
        exc.cell_index = clock.running
        raise
    finally:
        _normalise_after_execution(nb)
    return nb


class _CellClock:
    """nbclient hooks: which cell is running, and how long each one took."""

    def __init__(self, seconds: dict[int, float] | None):
        self.seconds = {} if seconds is None else seconds
        self.running: int | None = None
        self._started = 0.0

    def start(self, cell, cell_index: int) -> None:
        self.running, self._started = cell_index, time.perf_counter()

    def stop(self, cell, cell_index: int, execute_reply=None) -> None:
        self.seconds[cell_index] = time.perf_counter() - self._started
        self.running = None


def timeout_advice(nb, index: int | None, timeout: float) -> str:
    """The message for cell ``index`` of ``nb`` (a generated notebook) having run past the
    per-cell time limit: which lesson, notebook and cell, and what to try."""
    variant = nb.metadata.get("minirec", {})
    lesson = Path(variant.get("generated_from", "lessons/NN_slug.py")).stem
    notebook = {"solution": "solutions", "exercise": "exercises"}.get(variant.get("notebook"), "")
    where = f"{notebook}/{lesson}.ipynb" if notebook else "the notebook"
    check = " --check" if notebook == "exercises" else ""
    first = nb.cells[index].source.strip().split("\n")[0][:60] if index is not None else ""
    cell = f"cell {index} ({first!r})" if index is not None else "a cell"
    return (
        f"{cell} of {where} ran past the per-cell time limit of {timeout:g} s. The lesson is "
        "sized to run in under a minute on two quiet CPU cores, so other programs probably keep "
        "the cores busy: stop them, or build later. To allow more time per cell, run "
        f"`minirec build {lesson}{check} --timeout {max(2 * timeout, 600):g}`; to see where the "
        f"time goes, `python benchmarks/lesson_times.py {lesson} --cells` times every cell, "
        "quiet and with two busy processes beside it."
    )


def current_env_kernel_manager(prefix: Iterable[str] = ()):
    """A kernel manager class whose ``python3`` is this interpreter (like nbval's
    ``--nbval-current-env``), whatever ``python3`` kernelspec the user has installed elsewhere.

    ``prefix``: a command the kernel is started behind, e.g. the grader's sandbox
    (:func:`minirec.grading.sandbox_prefix`); the kernel's own command line follows it."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    prefix = list(prefix)

    class CurrentEnvKernelSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name == KERNELSPEC["name"]:
                spec = ipykernel.kernelspec.get_kernel_dict()
                spec = {**spec, "argv": [*prefix, *spec["argv"]]}
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)
            return super().get_kernel_spec(kernel_name)

    class CurrentEnvKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return CurrentEnvKernelSpecs(data_dir=self.data_dir)

    return CurrentEnvKernelManager


def _normalise_after_execution(nb) -> None:
    variant = nb.metadata.get("minirec", {})
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": copy.deepcopy(LANGUAGE_INFO),
    }
    if variant:
        nb.metadata["minirec"] = variant
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            output.pop("transient", None)


# --------------------------------------------------------------------------------------------
# The blank exercise notebook: what runs, and what is proved without running it
# --------------------------------------------------------------------------------------------
#
# The solution notebook is executed (by `minirec build`, and by strict nbval in the tests). Its
# blank exercise notebook differs only in the exercise cells (solutions replaced by a stub that
# raises) and in the cells tagged solution-only (left out). So a cell other than an exercise or
# a check cell runs in the blank notebook exactly as in the solution notebook, provided it uses
# no name that an exercise, check or solution-only cell defines: blank_isolation_problems
# proves that from the sources. What remains to be run is small: the exercise cells, their
# check cells and the cells that define what those use (blank_run_cells); check_exercise runs
# only them, so the blank notebook's training runs are not executed a second time.


class _CellNames:
    """The names a code cell binds and uses at module level, read from its source (after
    IPython's magics are turned into Python) by the compiler's symbol tables.

    ``binds``: assigned, defined or imported at module level (and ``global`` names assigned in
    its functions); ``uses``: read at module level (decorators and default values included);
    ``uses_later``: read as globals inside its functions and classes, when they are called;
    ``star``: the cell has a ``from ... import *`` (it may bind any name); ``unread``: the
    code of a magic that could not be read as Python (``%time f(x)`` is read as ``f(x)``).
    """

    def __init__(self, source: str):
        import symtable

        from IPython.core.inputtransformer2 import TransformerManager

        python = TransformerManager().transform_cell(source)
        magics, self.unread = _magic_code(python)
        table = symtable.symtable("\n".join([python, *magics]), "<cell>", "exec")
        self.binds: set[str] = set()
        self.uses: set[str] = set()
        self.uses_later: set[str] = set()
        self.star = "import *" in python
        for symbol in table.get_symbols():
            if symbol.is_assigned() or symbol.is_imported():
                self.binds.add(symbol.get_name())
            if symbol.is_referenced():
                self.uses.add(symbol.get_name())
        pending = list(table.get_children())
        while pending:
            scope = pending.pop()
            pending.extend(scope.get_children())
            for symbol in scope.get_symbols():
                if symbol.is_global() and symbol.is_referenced():
                    self.uses_later.add(symbol.get_name())
                if symbol.is_declared_global() and symbol.is_assigned():
                    self.binds.add(symbol.get_name())

    @property
    def all_uses(self) -> set[str]:
        return self.uses | self.uses_later


def _magic_code(python: str) -> tuple[list[str], list[str]]:
    """The code that the magics of a transformed cell run (``get_ipython().run_line_magic("time",
    "f(x)")``: ``f(x)``), as Python; a line magic's leading options (``-n 3``) are dropped. Also
    the magics' code that reads as no Python at all."""
    import ast

    readable, unread = [], []
    for node in ast.walk(ast.parse(python)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_line_magic", "run_cell_magic") and node.args
                and isinstance(node.args[-1], ast.Constant)):
            continue
        words = str(node.args[-1].value).split(" ")
        for start in range(len(words)):
            code = " ".join(words[start:])
            try:
                ast.parse(code)
            except SyntaxError:
                continue
            readable.append(code)
            break
        else:
            unread.append(str(node.args[-1].value))
    return readable, unread


def _code_cells(nb) -> dict[int, _CellNames]:
    return {i: _CellNames(c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"}


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _last_binder(names: dict[int, _CellNames], name: str, before: int) -> int | None:
    """The last code cell above cell ``before`` that binds ``name`` (or star-imports)."""
    for index in sorted((i for i in names if i < before), reverse=True):
        if name in names[index].binds or names[index].star:
            return index
    return None


def blank_run_cells(nb) -> list[int]:
    """The cells of a blank exercise notebook that :func:`check_exercise` runs, in order: every
    exercise and check cell, and, above each, the last cell that binds a name it uses (at module
    level or inside its functions), and so on for those cells."""
    names = _code_cells(nb)
    needed = {i for i in names if {EXERCISE_TAG, CHECK_TAG} & set(_tags(nb.cells[i]))}
    pending = sorted(needed)
    while pending:
        index = pending.pop()
        for name in names[index].all_uses:
            binder = _last_binder(names, name, index)
            if binder is not None and binder not in needed:
                needed.add(binder)
                pending.append(binder)
    return sorted(needed)


def blank_isolation_problems(solution) -> list[str]:
    """Where the cells of the blank exercise notebook that :func:`check_exercise` does not run
    could behave otherwise than in the solution notebook: one line per cell that uses a name an
    exercise, check or solution-only cell of ``solution`` defines; [] if none.

    In the blank notebook an exercise's function is the stub, a check cell stops at its error and
    a solution-only cell is absent, so only exercise and check cells (which run there) and
    solution-only cells (which do not exist there) may use what those cells define. A name read
    at module level is looked up in the last cell above that binds it; a name read inside a
    function, in any cell of the notebook that binds it (the function may be called later).
    """
    names = _code_cells(solution)

    def kind(index: int) -> str | None:
        tags = set(_tags(solution.cells[index]))
        for tag, what in ((EXERCISE_TAG, "the exercise"), (CHECK_TAG, "the check"),
                          (SOLUTION_ONLY_TAG, "the solution-only")):
            if tag in tags:
                return what
        return None

    problems = []
    for index, cell in names.items():
        if kind(index) is not None:
            continue
        found = {}
        for name in cell.uses:
            binder = _last_binder(names, name, index)
            if binder is not None and kind(binder) is not None:
                found[name] = binder
        for name in cell.uses_later - set(found):
            binder = next((i for i in names if name in names[i].binds and kind(i)), None)
            if binder is not None:
                found[name] = binder
        first = solution.cells[index].source.strip().split("\n")[0][:60]
        problems += [f"cell {index} ({first!r}) runs a magic whose code does not read as Python: "
                     f"{code!r}" for code in cell.unread]
        for name, binder in sorted(found.items()):
            problems.append(
                f"cell {index} ({first!r}) uses `{name}`, which {kind(binder)} cell {binder} "
                "defines: in the blank exercise notebook it would be missing or the learner's "
                "(use minirec's own, or a name of its own)"
            )
    return problems


def check_exercise(nb, *, cwd, timeout: int = CELL_TIMEOUT_S, whole: bool = False) -> list[str]:
    """Run a blank exercise notebook and return how it breaks the exercise contract.

    The contract: every cell tagged ``check`` raises ``NotAttempted`` (the learner has not
    written anything yet) and no other cell raises anything (except cells tagged
    ``raises-exception``, which raise by design). An empty list means it holds for the cells
    run: those of :func:`blank_run_cells` (the exercise and check cells and what they use),
    or every cell with ``whole=True``. The other cells are covered by
    :func:`blank_isolation_problems` on the solution notebook, which the solution's own run
    then vouches for. A cell that runs past ``timeout`` ends the run; the one problem returned
    then names that cell and what to try.
    """
    from nbclient.exceptions import CellTimeoutError

    run = list(range(len(nb.cells))) if whole else blank_run_cells(nb)
    subset = copy.deepcopy(nb)
    subset.cells = [subset.cells[i] for i in run]
    try:
        ran = execute(subset, timeout, cwd=cwd, allow_errors=True)
    except CellTimeoutError as exc:
        index = getattr(exc, "cell_index", None)
        return [timeout_advice(nb, None if index is None else run[index], timeout)]
    problems = []
    checks = 0
    for index, cell in zip(run, ran.cells, strict=True):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        tags = cell.metadata.get("tags", [])
        first = cell.source.strip().split("\n")[0][:60]
        if CHECK_TAG in tags:
            checks += 1
            if not errors:
                problems.append(f"cell {index} ({first!r}): the check passes on the blank exercise")
            elif errors[0].get("ename") != "NotAttempted":
                e = errors[0]
                problems.append(
                    f"cell {index} ({first!r}): the check raised {e.get('ename')}: "
                    f"{e.get('evalue')} instead of NotAttempted"
                )
        elif errors and RAISES_EXCEPTION_TAG not in tags:
            e = errors[0]
            problems.append(
                f"cell {index} ({first!r}) raised {e.get('ename')}: {e.get('evalue')} "
                "(only check cells may fail in the blank exercise notebook)"
            )
    if checks == 0:
        problems.append("no cell is tagged `check`")
    return problems


# --------------------------------------------------------------------------------------------
# The repository: lessons/, solutions/, exercises/, book/lessons/
# --------------------------------------------------------------------------------------------


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the first folder upwards from ``start`` (default: the current
    folder) that holds ``pyproject.toml`` and ``lessons/``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "lessons").is_dir():
            return folder
    raise FileNotFoundError(
        f"no minirec repository (a folder with pyproject.toml and lessons/) at or above {here}"
    )


def lesson_paths(lessons: Iterable[str | os.PathLike] | None = None, *, root=None) -> list[Path]:
    """Resolve lesson names (``01_cells``, ``01``, ``lessons/01_cells.py``) to paths.

    ``None`` means every ``lessons/NN_slug.py``, in order.
    """
    root = Path(root) if root is not None else find_root()
    folder = root / "lessons"
    if lessons is None:
        return sorted(p for p in folder.glob("[0-9][0-9]_*.py") if _LESSON_NAME.match(p.stem))
    found = []
    for name in lessons:
        name = str(name)
        candidate = Path(name)
        if candidate.suffix == ".py" and (root / candidate).is_file():
            path = (root / candidate).resolve()
        elif candidate.suffix == ".py" and candidate.is_file():
            path = candidate.resolve()
        else:
            stem = candidate.name.removesuffix(".py")
            matches = sorted(folder.glob(f"{stem}.py")) or sorted(folder.glob(f"{stem}_*.py"))
            if len(matches) != 1:
                known = ", ".join(p.stem for p in lesson_paths(root=root)) or "none"
                raise FileNotFoundError(f"no single lesson matches {name!r} (lessons: {known})")
            path = matches[0].resolve()
        if path.parent != folder.resolve() or not _LESSON_NAME.match(path.stem):
            raise LessonError(str(name), None, "a lesson is lessons/NN_slug.py")
        found.append(path)
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _write_notebook(nb, path: Path) -> bool:
    """Write ``nb`` if its bytes differ from what is on disk; return whether it wrote."""
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def build(
    lessons=None,
    *,
    execute: bool = True,
    book: bool = True,
    check: bool = False,
    root=None,
    timeout: int = CELL_TIMEOUT_S,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Regenerate ``solutions/``, ``exercises/`` (and ``book/lessons/``) from ``lessons/``.

    ``lessons``: names or paths (see :func:`lesson_paths`); ``None`` rebuilds every lesson and
    removes generated notebooks whose lesson is gone. ``execute=False`` writes solution
    notebooks without outputs (quick, but not for committing). ``book`` copies the solution
    notebooks into ``book/lessons/`` (it does not run jupyter-book: see :func:`build_book`).
    ``check`` also checks each blank exercise notebook and raises :class:`LessonError` unless
    its cells that the exercises do not need use nothing the exercises define
    (:func:`blank_isolation_problems`) and, run, its check cells and only they raise
    ``NotAttempted`` (:func:`check_exercise`).

    ``timeout`` is the limit per cell, in seconds: a cell that runs longer stops the build with
    a :class:`LessonError` that names the lesson's line, the cell and what to try.

    Returns the execution seconds per lesson, also merged into ``book/lesson_times.json``.
    A lesson that runs longer than ``max_seconds`` makes the build raise :class:`LessonError`
    once every lesson is written and timed; by default the limit is :data:`LESSON_LIMIT_S`
    where the environment variable ``CI`` is set (``true``, ``1``, ...) and none elsewhere (a
    line above :data:`LESSON_BUDGET_S` is only a warning there).
    """
    if max_seconds is None and os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        max_seconds = LESSON_LIMIT_S
    run = execute
    root = Path(root).resolve() if root is not None else find_root()
    paths = lesson_paths(lessons, root=root)
    times: dict[str, float] = {}
    for path in paths:
        rel = _relative(path, root)
        solution, exercise, lines = _split(path.read_text(encoding="utf-8"), rel)
        if run:
            start = time.perf_counter()
            solution = _execute_lesson(solution, lines, rel, root, timeout)
            times[path.stem] = round(time.perf_counter() - start, 1)
            note = f"executed in {times[path.stem]:.1f} s"
            if times[path.stem] > LESSON_BUDGET_S:
                note += f" - over the {LESSON_BUDGET_S:.0f} s budget of a lesson"
        else:
            note = "not executed: solution notebook has no outputs, do not commit it"
        wrote = [
            _relative(target, root)
            for nb, target in (
                (solution, root / "solutions" / f"{path.stem}.ipynb"),
                (exercise, root / "exercises" / f"{path.stem}.ipynb"),
            )
            if _write_notebook(nb, target)
        ]
        log(f"{rel}: {note}; " + (f"wrote {', '.join(wrote)}" if wrote else "notebooks unchanged"))
        if check:
            problems = blank_isolation_problems(solution) or check_exercise(
                exercise, cwd=root / "exercises", timeout=timeout)
            if problems:
                raise LessonError(
                    rel,
                    None,
                    "the blank exercise notebook breaks the contract:\n  " + "\n  ".join(problems),
                )
            log(f"{rel}: exercise notebook fails exactly at its check cells (NotAttempted)")
    if lessons is None:
        stems = {p.stem for p in paths}
        for folder in ("solutions", "exercises"):
            for orphan in sorted((root / folder).glob("*.ipynb")):
                if orphan.stem not in stems:
                    orphan.unlink()
                    log(f"removed {_relative(orphan, root)} (no lessons/{orphan.stem}.py)")
    if times:
        _record_times(root, times)
    if book:
        sync_book(root=root, log=log)
    over = {stem: t for stem, t in times.items() if max_seconds is not None and t > max_seconds}
    if over:
        listed = ", ".join(f"{stem} {t:.1f} s" for stem, t in over.items())
        raise LessonError(
            "lessons/", None, f"over the time limit of {max_seconds:g} s per lesson: {listed}"
        )
    return times


def _execute_lesson(solution, lines, rel: str, root: Path, timeout: int):
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    try:
        return execute(solution, timeout, cwd=root / "lessons")
    except CellTimeoutError as exc:
        index = getattr(exc, "cell_index", None)
        line = lines[index] if index is not None else None
        raise LessonError(rel, line, timeout_advice(solution, index, timeout)) from exc
    except CellExecutionError as exc:
        failing = _first_failing_cell(solution, exc)
        line = lines[failing] if failing is not None else None
        message = _ANSI.sub("", str(exc))
        raise LessonError(rel, line, f"the solution notebook failed to run:\n{message}") from exc


def _first_failing_cell(nb, exc) -> int | None:
    # execute() runs a copy of the notebook, so find the failing cell by the source that
    # nbclient quotes between dashed lines in its message.
    message = str(exc)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"-\n{cell.source}\n-" in message:
            return index
    return None


def _record_times(root: Path, times: dict[str, float]) -> None:
    path = root / "book" / TIMES_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        recorded = {}
    recorded.update(times)
    known = {p.stem for p in lesson_paths(root=root)}
    recorded = {k: v for k, v in sorted(recorded.items()) if k in known or k in times}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sync_book(*, root=None, log: Callable[[str], None] = print) -> list[Path]:
    """Make ``book/lessons/`` an exact copy of ``solutions/*.ipynb``; return the copies."""
    root = Path(root).resolve() if root is not None else find_root()
    target = root / "book" / "lessons"
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted((root / "solutions").glob("*.ipynb"))
    names = {p.name for p in sources}
    for old in target.glob("*.ipynb"):
        if old.name not in names:
            old.unlink()
    copies = []
    for source in sources:
        copy_path = target / source.name
        if not copy_path.is_file() or copy_path.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy_path)
        copies.append(copy_path)
    if not sources:
        log("book/lessons/: no solution notebooks to copy (run `minirec build` first)")
    return copies


def stale(lessons=None, *, root=None, book: bool = False) -> list[str]:
    """Generated notebooks out of sync with their lesson: one line per problem, [] if none.

    Compares cell types, sources and tags (not outputs) of ``solutions/`` and ``exercises/``
    (and ``book/lessons/`` with ``book=True``) with a fresh split of each lesson; reports
    missing notebooks and, when ``lessons`` is None, notebooks whose lesson is gone.
    """
    root = Path(root).resolve() if root is not None else find_root()
    paths = lesson_paths(lessons, root=root)
    problems = []
    for path in paths:
        rel = _relative(path, root)
        solution, exercise, _ = _split(path.read_text(encoding="utf-8"), rel)
        targets = [("solutions", solution), ("exercises", exercise)]
        if book:
            targets.append(("book/lessons", solution))
        for folder, expected in targets:
            nb_path = root / folder / f"{path.stem}.ipynb"
            shown = f"{folder}/{path.stem}.ipynb"
            if not nb_path.is_file():
                problems.append(f"{shown}: missing (run `minirec build {path.stem}`)")
                continue
            found = nbformat.read(nb_path, as_version=4)
            difference = _first_difference(_skeleton(expected), _skeleton(found))
            if difference:
                problems.append(
                    f"{shown}: out of sync with {rel} "
                    f"({difference}; run `minirec build {path.stem}`)"
                )
    if lessons is None:
        stems = {p.stem for p in paths}
        folders = ["solutions", "exercises"] + (["book/lessons"] if book else [])
        for folder in folders:
            for orphan in sorted((root / folder).glob("*.ipynb")):
                if orphan.stem not in stems:
                    problems.append(f"{folder}/{orphan.name}: no lesson lessons/{orphan.stem}.py")
    return problems


def _skeleton(nb) -> list[tuple]:
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def _first_difference(expected: list[tuple], found: list[tuple]) -> str | None:
    for index, (want, got) in enumerate(zip(expected, found, strict=False)):
        if want != got:
            what = ["cell type", "source", "tags"][next(i for i in range(3) if want[i] != got[i])]
            return f"cell {index}: {what} differs"
    if len(expected) != len(found):
        return f"{len(found)} cells, the lesson makes {len(expected)}"
    return None


# --------------------------------------------------------------------------------------------
# The website
# --------------------------------------------------------------------------------------------


def build_book(*, root=None, book_dir=None, output=None, quiet: bool = False) -> Path:
    """Run ``jupyter-book build`` (warnings are errors) and return the path of index.html.

    ``book_dir`` defaults to ``<root>/book``; the site goes to ``<output>/_build/html`` with
    ``output`` defaulting to ``book_dir``. The notebooks are not executed: the book shows the
    outputs stored in ``book/lessons/`` (see :func:`sync_book`). Raises
    :class:`BookBuildError` if jupyter-book fails or reports any warning.
    """
    if book_dir is None:
        root = Path(root).resolve() if root is not None else find_root()
        book_dir = root / "book"
    book_dir = Path(book_dir).resolve()
    output = Path(output).resolve() if output is not None else book_dir
    try:
        import jupyter_book  # noqa: F401
    except ImportError as exc:
        raise BookBuildError('jupyter-book is not installed: pip install -e ".[book]"') from exc
    command = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(book_dir),
        "--path-output",
        str(output),
        "-W",  # any warning fails the build
        "--keep-going",  # ... after reporting all of them
        "--all",  # fresh Sphinx environment: warnings of unchanged pages are not hidden
    ]
    result = subprocess.run(
        command,
        cwd=book_dir,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
    )
    index = output / "_build" / "html" / "index.html"
    if result.returncode != 0 or not index.is_file():
        details = f"\n{result.stdout}" if quiet and result.stdout else ""
        raise BookBuildError(
            f"jupyter-book build {book_dir} failed (exit code {result.returncode}); "
            f"warnings count as errors{details}"
        )
    return index
