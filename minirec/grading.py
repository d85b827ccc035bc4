"""The engine of ``minirec check`` (for a learner) and ``minirec grade`` (for an instructor).

Both run exercise notebooks - ``exercises/NN_slug.ipynb`` with the learner's code written in -
from top to bottom in a fresh Jupyter kernel (this interpreter's ``python3``, like nbval's
``--nbval-current-env``), with every cell run even after an error, and read the result of each
exercise from the outputs of its check cells. The notebook file itself is never modified.

Exercises
---------
An exercise is a code cell tagged ``exercise`` with the ``check`` cells that follow it (the
tags :mod:`minirec.notebooks` writes). It is named after the function its check cell checks:
``check_gru_step(gru_step)`` is the exercise ``gru_step`` (when the check is not called
``check_<name>`` of a function the exercise cell defines, the name of the first argument is
used). A notebook whose tags were lost (cells copied into a new notebook) falls back to the
code cells that call a ``check_...`` function. Each exercise ends in one of

- ``passed``: its check cells ran without an error (the check printed ``✓ ...``);
- ``not attempted``: a check raised ``NotAttempted`` (the function still raises
  ``NotImplementedError``);
- ``failed``: a check raised ``CheckFailed``; its message, a table and a diagnosis, is shown;
- ``error``: the exercise cell or a check cell raised something else (a ``SyntaxError`` in the
  learner's cell, a ``NameError``, ...): the error, its cell and line are shown;
- ``not run``: the run stopped (time limit, kernel crash) before its check cell, or the check
  cell was skipped;
- ``missing`` (grade only): the submission has no such exercise, though others have.

``minirec check NOTEBOOK...``
-----------------------------
Runs each notebook with its own folder as the working directory (as Jupyter does), with a time
limit for the whole notebook (``--timeout``, default 600 s), prints one line per exercise with
the check's message under each failure, and exits with status 0 only when every attempted
exercise of every notebook passed (exercises not yet attempted are fine; a notebook that cannot
be run is not).

``minirec grade SUBMISSIONS_DIR --out grades.csv``
---------------------------------------------------
A submission is either a ``*.ipynb`` file directly in SUBMISSIONS_DIR (named by its file name)
or a sub-folder holding exactly one ``*.ipynb`` file at any depth (named by the folder;
``.ipynb_checkpoints`` are ignored). Other files and hidden entries are ignored and listed.
Each is run in isolation with a time limit (``--timeout``, default 300 s for the whole
notebook). A file that is not a notebook (empty, bad JSON, a PDF renamed ``.ipynb``), a
notebook over ``--max-bytes``, a run past the time limit, a kernel that dies (``os._exit``, a
segfault), a syntax error in a cell: each is recorded in the submission's row and grading goes
on. The CSV has one row per submission: ``submission, status, score, out_of``, one column per
exercise (the statuses above), ``seconds`` and ``note``. ``score`` counts passed exercises; it
is 0 for a submission flagged ``tampered``. A progress bar runs on stderr while it grades and a
summary is printed at the end. ``--feedback DIR`` also writes ``DIR/<submission>.txt``, what
``minirec check`` would have printed for it (tables and diagnoses), to hand back.

Isolation and its limits (the threat model)
-------------------------------------------
A submission is code the instructor did not write, run with the instructor's rights. What
``grade`` guarantees, and how:

1. *One submission cannot change another's result.* Every submission is read into the
   grader's memory before any is run (a submission that overwrites another's file on disk changes
   nothing: the snapshot is graded, and the change is reported). Each one runs from its own fresh
   temporary working folder, in its own kernel process; results are read by the grader from the
   kernel's messages and kept in the grader's memory; the CSV is written once, at the end, from
   memory. Outputs left in the submitted file are cleared before the run, so they count for
   nothing.
2. *A submission cannot change minirec's code or caches for the next one.* On Linux, where
   unprivileged user namespaces are available (``unshare``; measured to work on the project's
   2-core machine, where it adds about 0.4 s to a kernel's start; ``sandbox_available()`` probes
   the machine once), the kernel runs in a sandbox (:mod:`minirec._sandbox`):
   the whole file system is read-only except its working folder; minirec's package folder is
   seen through an overlay whose writes are thrown away after the run (Numba's cache stays
   usable); ``/dev/shm`` is a fresh tmpfs; the kernel is PID 1 of its own PID namespace, so
   every process it starts dies with it and it cannot see or signal any other process. The
   read-only mounts are locked (a nested user namespace): the kernel cannot remount them
   writable. In addition, in every mode, the grader keeps a copy of every file of the minirec
   package (``minirec/``, installed editable) and compares the folder with it before and after
   each run. In the sandbox a change cannot come from a submission: it is kept and reported at
   the end (someone edited minirec while grading). Without the sandbox every change is undone
   before the next run, and a change outside the ``__pycache__`` folders after a run flags
   the submission ``tampered`` - so do not edit minirec while grading without the sandbox.
3. Without the sandbox (``--sandbox off``, or ``auto`` on a machine without user namespaces)
   point 2's check-and-restore is the only protection of minirec's files, and the rest of the
   file system is writable by the submission: it could, for example, change NumPy in the
   virtual environment or write into the instructor's files. Kernels get a private
   ``IPYTHONDIR`` (no startup scripts from ``~/.ipython``), ``PYTHONNOUSERSITE=1`` and
   ``TMPDIR`` in their working folder, and after each run the grader kills every process that
   still carries the run's environment marker; a process that clears its environment and
   detaches escapes that.

What it does not prevent: code that cheats inside its own kernel (redefines ``check_...`` or
edits its check cell to print a pass) - the CSV then says ``passed``. A tripwire
(:func:`review_notes`) lists, in the ``note`` column and the summary, check cells that are not
plain ``check_...`` calls and cells that rebind a ``check_...`` name; code can hide its intent
from it (``exec``), so read the code of surprising passes. Network access, and denial of
service (exhausting the machine's memory or disk), are not prevented either. For untrusted
submissions at scale, run the grader itself in a throw-away container or VM.
"""

from __future__ import annotations

import ast
import copy
import csv
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "PASSED", "NOT_ATTEMPTED", "FAILED", "ERROR", "NOT_RUN", "MISSING",
    "NotANotebook", "ExerciseResult", "NotebookResult", "Submission", "GradeReport",
    "read_notebook", "find_exercises", "run_notebook", "check_notebook", "format_check",
    "collect_submissions", "grade", "write_csv", "write_feedback", "format_summary",
    "sandbox_available",
    "PackageGuard", "review_notes",
]

PASSED = "passed"
NOT_ATTEMPTED = "not attempted"
FAILED = "failed"
ERROR = "error"
NOT_RUN = "not run"
MISSING = "missing"

#: Submission statuses (the ``status`` column of the grades).
RAN = "ran"
TIMED_OUT = "timed out"
KERNEL_DIED = "kernel died"
NOT_A_NOTEBOOK = "not a notebook"
NO_EXERCISES = "no exercises"
TOO_LARGE = "too large"
TAMPERED = "tampered"
GRADER_ERROR = "grader error"

PACKAGE_DIR = Path(__file__).resolve().parent  # what the package guard copies and checks
CHECK_TIMEOUT_S = 600
GRADE_TIMEOUT_S = 300
MAX_NOTEBOOK_BYTES = 50_000_000
MAX_OUTPUT_CHARS = 5_000_000  # outputs kept per run; an endless print cannot fill our memory
_RUN_MARKER = "MINIREC_GRADING_RUN"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)")
_CHECK_CALL = re.compile(r"\bcheck_(\w+)\s*\(")
_IPYTHON_FILE = re.compile(r" \(\d+\.py, line \d+\)$")


class NotANotebook(ValueError):
    """The bytes are not a Jupyter notebook; ``str()`` says what they are instead."""


# --------------------------------------------------------------------------------------------
# Reading a notebook and finding its exercises
# --------------------------------------------------------------------------------------------


def read_notebook(data: bytes):
    """Parse a notebook (nbformat 4) from bytes; raise :class:`NotANotebook` saying why not."""
    if not data.strip():
        raise NotANotebook("empty file")
    if data.startswith(b"%PDF"):
        raise NotANotebook("a PDF file, not a notebook")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotANotebook("a binary file, not a notebook (not UTF-8 text)") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotANotebook(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise NotANotebook("JSON, but not a notebook (no list of cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on bad input
        raise NotANotebook(f"a malformed notebook ({type(exc).__name__}: {exc})") from None
    for cell in nb.cells:
        if not isinstance(cell.get("source"), str) or cell.get("cell_type") not in (
                "code", "markdown", "raw"):
            raise NotANotebook("a malformed notebook (a cell without source or type)")
    return nb


@dataclass(frozen=True)
class ExerciseSpec:
    """An exercise of a notebook: its name, the index of its exercise cell (None when it was
    found without tags) and the indices of its check cells."""

    name: str
    exercise_cell: int | None
    check_cells: tuple[int, ...]


def _tags(cell) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _defined_functions(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.findall(r"^def\s+(\w+)", source, flags=re.M)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _checked_name(check_source: str, defined: list[str]) -> str | None:
    """The function a check cell checks: ``check_<name>`` when the exercise defines ``name`` (or
    when nothing else is known), else the name passed as the first argument."""
    try:
        tree = ast.parse(check_source)
    except SyntaxError:
        match = _CHECK_CALL.search(check_source)
        return match.group(1) if match else None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if not called.startswith("check_"):
            continue
        name = called.removeprefix("check_")
        first = node.args[0].id if node.args and isinstance(node.args[0], ast.Name) else None
        if name in defined or first is None:
            return name
        return first
    return None


def find_exercises(nb) -> list[ExerciseSpec]:
    """The exercises of a notebook, in order (see the module docstring for the rules)."""
    cells = nb.cells
    tagged = any("check" in _tags(c) for c in cells if c.cell_type == "code")
    groups: list[tuple[int | None, list[int]]] = []
    current: int | None = None
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        tags = _tags(cell)
        if tagged:
            if "exercise" in tags:
                current = index
                groups.append((index, []))
            elif "check" in tags:
                if not groups or groups[-1][0] != current or current is None:
                    groups.append((None, []))
                    current = None
                groups[-1][1].append(index)
            else:
                current = None
        elif _CHECK_CALL.search(cell.source) and _is_check_call(cell.source):
            groups.append((None, [index]))
    specs, seen = [], {}
    for exercise_cell, checks in groups:
        if not checks:
            continue
        defined = _defined_functions(cells[exercise_cell].source) if exercise_cell is not None \
            else []
        name = _checked_name(cells[checks[0]].source, defined) or (defined[0] if defined else
                                                                   f"exercise {len(specs) + 1}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        specs.append(ExerciseSpec(name, exercise_cell, tuple(checks)))
    return specs


def _is_check_call(source: str) -> bool:
    """Untagged fallback: a cell whose code is a call of a ``check_...`` function."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) for n in tree.body) \
        and _checked_name(source, []) is not None


def review_notes(nb, specs: list[ExerciseSpec]) -> list[str]:
    """Signs that a notebook fakes its checks, for the instructor to read (a tripwire: code can
    hide its intent, e.g. in ``exec``): a check cell that is not just calls of ``check_...``
    functions, or another cell that binds a ``check_...`` name (def, assignment, import from
    outside minirec or under another name) or ``run_check``."""
    notes = []
    owner = {i: s.name for s in specs for i in s.check_cells}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index in owner:
            if not _only_check_calls(cell.source):
                first = cell.source.strip().split("\n")[0][:60]
                notes.append(f"the check cell of {owner[index]} was edited (`{first}`)")
            continue
        for name in _bound_check_names(cell.source):
            notes.append(f"cell {index + 1} rebinds {name}")
    return notes


def _only_check_calls(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return bool(tree.body) and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        and _call_name(node.value).startswith("check_") for node in tree.body)


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _is_guarded(name: str) -> bool:
    return name.startswith("check_") or name == "run_check"


def _bound_check_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found += [node.name] if _is_guarded(node.name) else []
        elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Store):
            name = node.id if isinstance(node, ast.Name) else node.attr
            found += [name] if _is_guarded(name) else []
        elif isinstance(node, ast.ImportFrom):
            trusted = (node.module or "").split(".")[0] == "minirec"
            for alias in node.names:
                bound = alias.asname or alias.name
                if _is_guarded(bound) and (not trusted or alias.name != bound):
                    found.append(bound)
        elif isinstance(node, ast.Call) and _call_name(node) == "setattr" and len(node.args) > 1:
            key = node.args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and _is_guarded(key.value):
                found.append(key.value)
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------
# Running a notebook
# --------------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """An executed copy of the notebook and how the run ended: ``stopped`` is None when every
    cell ran, else (``TIMED_OUT`` / ``KERNEL_DIED`` / ``GRADER_ERROR``, cell index or None,
    detail)."""

    nb: object
    stopped: tuple[str, int | None, str] | None
    seconds: float
    output_truncated: bool = False


class _OutOfTime(Exception):
    pass


def _kernel_manager_class(prefix: list[str]):
    """A kernel manager whose ``python3`` is this interpreter, started behind ``prefix``."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            spec = ipykernel.kernelspec.get_kernel_dict()
            spec = {**spec, "argv": [*prefix, *spec["argv"]]}
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)

    class Manager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return Specs(data_dir=self.data_dir)

    return Manager


def _client_class():
    from nbclient import NotebookClient

    class GradingClient(NotebookClient):
        """nbclient with a cap on kept outputs and the index of the running cell."""

        current_cell: int | None = None
        output_chars = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "error":
                content["traceback"] = content.get("traceback", [])[-30:]
                content["evalue"] = str(content.get("evalue", ""))[:20_000]
            else:
                size = len(str(content.get("text", ""))) + len(str(content.get("data", "")))
                self.output_chars += size
                if self.output_chars > MAX_OUTPUT_CHARS:
                    self.truncated = True
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return GradingClient


def run_notebook(nb, *, cwd, time_limit: float, kernel_prefix: Iterable[str] = (),
                 env: dict | None = None, stderr_path=None) -> RunOutcome:
    """Run a copy of ``nb`` in a fresh kernel, every cell even after errors, within
    ``time_limit`` seconds for the whole notebook; never raises for what the notebook does."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # what was saved in the file counts for nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    deadline = time.monotonic() + time_limit

    def remaining(cell=None):
        return max(1, math.ceil(deadline - time.monotonic()))

    client = _client_class()(
        nb,
        timeout_func=remaining,
        startup_timeout=max(10, min(120, int(time_limit))),
        kernel_name="python3",
        kernel_manager_class=_kernel_manager_class(list(kernel_prefix)),
        allow_errors=True,
        record_timing=False,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd)}},
    )

    def on_cell_start(cell, cell_index):
        client.current_cell = cell_index
        if cell.cell_type == "code" and time.monotonic() >= deadline:
            raise _OutOfTime

    client.on_cell_start = on_cell_start
    stopped = None
    start = time.perf_counter()
    log = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        client.execute(env=env, stdout=subprocess.DEVNULL, stderr=log)
    except (CellTimeoutError, _OutOfTime):
        stopped = (TIMED_OUT, client.current_cell,
                   f"ran past the time limit of {time_limit:g} s")
    except DeadKernelError:
        stopped = (KERNEL_DIED, client.current_cell, "the kernel died (crashed or exited)")
    except Exception as exc:  # noqa: BLE001 - e.g. the kernel never started
        what = f"{type(exc).__name__}: {exc}".strip()
        if stderr_path:
            log.close()
            tail = Path(stderr_path).read_bytes()[-1500:].decode(errors="replace").strip()
            what += f"\n{tail}" if tail else ""
        kind = KERNEL_DIED if "died" in str(exc).lower() else GRADER_ERROR
        stopped = (kind, client.current_cell if client.current_cell is not None else None, what)
    finally:
        if stderr_path and not log.closed:
            log.close()
    return RunOutcome(nb, stopped, time.perf_counter() - start, client.truncated)


# --------------------------------------------------------------------------------------------
# Reading the results
# --------------------------------------------------------------------------------------------


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
    review: list[str] = field(default_factory=list)  # see review_notes (grade only)

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


def interpret(outcome: RunOutcome, specs: list[ExerciseSpec]) -> NotebookResult:
    """Each exercise's status from the executed notebook (module docstring)."""
    nb = outcome.nb
    roles = {}
    for spec in specs:
        if spec.exercise_cell is not None:
            roles[spec.exercise_cell] = f"the exercise cell of {spec.name}"
        for c in spec.check_cells:
            roles[c] = f"the check cell of {spec.name}"
    stopped_at = outcome.stopped[1] if outcome.stopped else None
    results = []
    for spec in specs:
        results.append(_exercise_result(nb, spec, roles, outcome.stopped, stopped_at))
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
    return NotebookResult(status, results, detail, others, round(outcome.seconds, 1))


def _exercise_result(nb, spec, roles, stopped, stopped_at) -> ExerciseResult:
    exercise_error = None
    if spec.exercise_cell is not None:
        exercise_error = _first_error(nb.cells[spec.exercise_cell])
    worst = None
    for index in spec.check_cells:
        cell = nb.cells[index]
        if stopped and stopped_at is not None and index >= stopped_at:
            if index == stopped_at or (spec.exercise_cell is not None
                                       and spec.exercise_cell == stopped_at):
                return ExerciseResult(spec.name, ERROR, f"{stopped[0]}: {stopped[2]}")
            return ExerciseResult(spec.name, NOT_RUN, f"the run stopped earlier ({stopped[0]})")
        if cell.get("execution_count") is None:
            return ExerciseResult(spec.name, NOT_RUN, "the check cell was not run")
        error = _first_error(cell)
        if error is None:
            continue
        ename = error.get("ename")
        if ename == "NotAttempted":
            result = ExerciseResult(spec.name, NOT_ATTEMPTED, str(error.get("evalue", "")))
        elif ename == "CheckFailed":
            result = ExerciseResult(spec.name, FAILED, str(error.get("evalue", "")))
        else:
            message = f"the check raised {describe_error(nb, error, roles)}"
            if exercise_error is not None:
                message = (f"the exercise cell raised {describe_error(nb, exercise_error, roles)}"
                           f"\n(so the check could not run: {ename}: {error.get('evalue', '')})")
            result = ExerciseResult(spec.name, ERROR, message)
        rank = {NOT_ATTEMPTED: 1, FAILED: 2, ERROR: 3}
        if worst is None or rank[result.status] > rank[worst.status]:
            worst = result
    if worst is not None:
        return worst
    if stopped and stopped_at is not None and spec.exercise_cell == stopped_at:
        return ExerciseResult(spec.name, ERROR, f"{stopped[0]}: {stopped[2]}")
    return ExerciseResult(spec.name, PASSED)


def _kernel_env(workdir: Path, marker: str | None = None) -> dict:
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONNOUSERSITE": "1",
           "IPYTHONDIR": str(workdir / ".ipython"), "TMPDIR": str(workdir / ".tmp")}
    (workdir / ".tmp").mkdir(exist_ok=True)
    if marker:
        env[_RUN_MARKER] = marker
    return env


# --------------------------------------------------------------------------------------------
# minirec check
# --------------------------------------------------------------------------------------------


def check_notebook(path, *, time_limit: float = CHECK_TIMEOUT_S) -> NotebookResult:
    """Run a learner's notebook in its own folder and return each exercise's result."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return NotebookResult(NOT_A_NOTEBOOK, detail=f"cannot read it: {exc.strerror}")
    try:
        nb = read_notebook(data)
    except NotANotebook as exc:
        return NotebookResult(NOT_A_NOTEBOOK, detail=str(exc))
    specs = find_exercises(nb)
    if not specs:
        return NotebookResult(NO_EXERCISES, detail="no cell tagged `check` and no call of a "
                              "check_... function: is this an exercise notebook?")
    with tempfile.TemporaryDirectory(prefix="minirec-check-") as scratch:
        env = _kernel_env(Path(scratch))
        outcome = run_notebook(nb, cwd=path.resolve().parent, time_limit=time_limit, env=env)
    return interpret(outcome, specs)


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


# --------------------------------------------------------------------------------------------
# minirec grade: submissions, the sandbox, the package guard
# --------------------------------------------------------------------------------------------


@dataclass
class Submission:
    """One submission: its name, where it came from, its bytes (read before anything runs) or
    why it could not be read."""

    name: str
    source: Path
    data: bytes | None = None
    problem: str | None = None
    problem_status: str = NOT_A_NOTEBOOK


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and not p.is_symlink())


def collect_submissions(folder, *, max_bytes: int = MAX_NOTEBOOK_BYTES,
                        exclude: Iterable[Path] = ()) -> tuple[list[Submission], list[str]]:
    """Read every submission of ``folder`` into memory; return them and the ignored entries."""
    folder = Path(folder)
    excluded = {Path(p).resolve() for p in exclude}
    submissions, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.resolve() in excluded:
            continue
        if entry.is_symlink():
            ignored.append(f"{entry.name} (a symbolic link)")
            continue
        if entry.is_dir():
            found = _notebooks_in(entry)
            sub = Submission(entry.name, found[0] if len(found) == 1 else entry)
            if not found:
                sub.problem = "the folder holds no .ipynb file"
            elif len(found) > 1:
                names = ", ".join(str(p.relative_to(entry)) for p in found[:5])
                sub.problem = f"the folder holds {len(found)} notebooks ({names}): keep one"
        elif entry.suffix == ".ipynb" and entry.is_file():
            sub = Submission(entry.name, entry)
        else:
            ignored.append(f"{entry.name} (not a .ipynb file or a folder)")
            continue
        if sub.problem is None:
            size = sub.source.stat().st_size
            if size > max_bytes:
                sub.problem, sub.problem_status = (f"{size} bytes, over the limit of "
                                                   f"{max_bytes}"), TOO_LARGE
            else:
                try:
                    sub.data = sub.source.read_bytes()
                except OSError as exc:
                    sub.problem = f"cannot read it: {exc.strerror}"
        submissions.append(sub)
    return submissions, ignored


_SANDBOX_PROBE = """
import os, sys
open('written', 'w').write('ok')
for target in sys.argv[1:]:
    try:
        open(target, 'w').write('escaped')
    except OSError:
        continue
    sys.exit('wrote ' + target)
if os.system('mount -o remount,rw / 2>/dev/null') == 0:
    sys.exit('could remount / writable')
print('sandboxed')
"""


def sandbox_prefix(workdir: Path, overlays: Iterable[tuple[Path, Path, Path]] = ()) -> list[str]:
    """The command prefix that starts a process in :mod:`minirec._sandbox`."""
    script = Path(__file__).with_name("_sandbox.py")
    prefix = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
              "--kill-child", "--mount-proc", "--", sys.executable, "-I", str(script),
              "--writable", str(workdir)]
    for folder, upper, work in overlays:
        prefix += ["--overlay", str(folder), str(upper), str(work)]
    return prefix + ["--"]


_SANDBOX_CHECKED: dict[str, tuple[bool, str]] = {}


def sandbox_available() -> tuple[bool, str]:
    """Whether the sandbox works on this machine (measured once: a probe must write its own
    folder, fail to write outside it and fail to remount ``/`` writable), and why not."""
    if "result" in _SANDBOX_CHECKED:
        return _SANDBOX_CHECKED["result"]
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None \
            or shutil.which("mount") is None:
        result = (False, "needs Linux with unshare and mount (util-linux)")
    else:
        with tempfile.TemporaryDirectory(prefix="minirec-probe-") as scratch:
            work, outside = Path(scratch, "work"), Path(scratch, "outside")
            upper, ovwork, lower = (Path(scratch, n) for n in ("upper", "ovwork", "lower"))
            for p in (work, upper, ovwork, lower):
                p.mkdir()
            cmd = [*sandbox_prefix(work, [(lower, upper, ovwork)]), sys.executable, "-I", "-c",
                   _SANDBOX_PROBE, str(outside / "x")]
            try:
                run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                result = (False, f"the probe could not run: {exc}")
            else:
                ok = (run.returncode == 0 and "sandboxed" in run.stdout
                      and (work / "written").is_file() and not (outside / "x").exists())
                reason = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
                result = (ok, "" if ok else f"the probe failed: {reason[0]}")
    _SANDBOX_CHECKED["result"] = result
    return result


class PackageGuard:
    """A copy of every file under a folder (minirec's package), to find and undo changes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.files = self._read()

    def _read(self) -> dict[str, bytes]:
        files = {}
        for dirpath, _dirs, names in os.walk(self.folder):
            for name in names:
                path = Path(dirpath, name)
                if path.is_file() and not path.is_symlink():
                    files[path.relative_to(self.folder).as_posix()] = path.read_bytes()
        return files

    def changes(self) -> list[str]:
        """Relative paths added, removed or changed since the copy was taken."""
        now = self._read()
        changed = [p for p, data in self.files.items() if now.get(p) != data]
        added = [p for p in now if p not in self.files]
        extra_links = [Path(d, n).relative_to(self.folder).as_posix()
                       for d, dirs, names in os.walk(self.folder) for n in dirs + names
                       if Path(d, n).is_symlink()]
        return sorted(set(changed + added + extra_links))

    def restore(self, paths: Iterable[str]) -> None:
        for rel in paths:
            path = self.folder / rel
            if path.is_symlink() or (path.exists() and rel not in self.files):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            if rel in self.files:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.files[rel])

    def accept(self, paths: Iterable[str]) -> None:
        """Take the current content of ``paths`` as the reference."""
        for rel in paths:
            path = self.folder / rel
            if path.is_file() and not path.is_symlink():
                self.files[rel] = path.read_bytes()
            else:
                self.files.pop(rel, None)

    @staticmethod
    def only_caches(paths: Iterable[str]) -> bool:
        return all("__pycache__" in Path(p).parts for p in paths)


def _kill_marked(marker: str) -> int:
    """SIGKILL every process whose environment carries ``marker`` (stray children of a run)."""
    needle = f"{_RUN_MARKER}={marker}".encode()
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and int(entry.name) != os.getpid():
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


# --------------------------------------------------------------------------------------------
# minirec grade: the loop, the CSV, the summary
# --------------------------------------------------------------------------------------------


@dataclass
class GradeReport:
    exercises: list[str]
    rows: list[tuple[Submission, NotebookResult]]
    sandboxed: bool
    sandbox_note: str
    ignored: list[str]
    seconds: float
    changed_on_disk: list[str] = field(default_factory=list)
    changed_outside: list[str] = field(default_factory=list)  # minirec files, not by a kernel

    def score(self, result: NotebookResult) -> int:
        return 0 if result.status == TAMPERED else result.passed


def grade(folder, *, time_limit: float = GRADE_TIMEOUT_S, sandbox: str = "auto",
          max_bytes: int = MAX_NOTEBOOK_BYTES, exclude: Iterable[Path] = (),
          progress: bool = True, package: Path | None = None) -> GradeReport:
    """Grade every submission of ``folder`` in isolation (module docstring); return the report
    (write it with :func:`write_csv`). ``sandbox``: ``"auto"`` (use it where it works), ``"on"``
    (refuse to grade without it) or ``"off"``."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    if sandbox not in ("auto", "on", "off"):
        raise ValueError(f"sandbox must be 'auto', 'on' or 'off'; got {sandbox!r}")
    use_sandbox, note = (False, "off as asked") if sandbox == "off" else sandbox_available()
    if sandbox == "on" and not use_sandbox:
        raise RuntimeError(f"the sandbox does not work on this machine: {note}")
    submissions, ignored = collect_submissions(folder, max_bytes=max_bytes, exclude=exclude)
    guard = PackageGuard(Path(package) if package is not None else PACKAGE_DIR)
    external: list[str] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="minirec-grade-") as session:
        bar = tqdm(submissions, desc="grading", unit="nb", disable=not progress or None,
                   file=sys.stderr)
        for number, sub in enumerate(bar):
            bar.set_postfix_str(sub.name[:30])
            result = _grade_one(sub, Path(session, f"run-{number}"), time_limit,
                                use_sandbox, guard, external)
            rows.append((sub, result))
        bar.close()
    names: list[str] = []
    for _sub, result in rows:
        names += [e.name for e in result.exercises if e.name not in names]
    changed = [sub.name for sub in submissions
               if sub.data is not None and _read_or_none(sub.source) != sub.data]
    return GradeReport(names, rows, use_sandbox, note, ignored,
                       time.perf_counter() - start, changed, external)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _grade_one(sub: Submission, run_root: Path, time_limit: float, use_sandbox: bool,
               guard: PackageGuard, external: list[str]) -> NotebookResult:
    if sub.problem is not None:
        return NotebookResult(sub.problem_status, detail=sub.problem)
    try:
        nb = read_notebook(sub.data)
    except NotANotebook as exc:
        return NotebookResult(NOT_A_NOTEBOOK, detail=str(exc))
    specs = find_exercises(nb)
    if not specs:
        return NotebookResult(NO_EXERCISES, detail="no cell tagged `check` and no call of a "
                              "check_... function")
    _guard_between_runs(guard, use_sandbox, external)
    workdir = run_root / "work"
    workdir.mkdir(parents=True)
    (workdir / "submission.ipynb").write_bytes(sub.data)
    marker = uuid.uuid4().hex
    env = _kernel_env(workdir, marker)
    prefix: list[str] = []
    if use_sandbox:
        upper, ovwork = run_root / "overlay-upper", run_root / "overlay-work"
        upper.mkdir()
        ovwork.mkdir()
        prefix = sandbox_prefix(workdir, [(guard.folder, upper, ovwork)])
    try:
        outcome = run_notebook(nb, cwd=workdir, time_limit=time_limit, kernel_prefix=prefix,
                               env=env, stderr_path=run_root / "kernel-stderr.log")
    finally:
        _kill_marked(marker)
    result = interpret(outcome, specs)
    result.review = review_notes(nb, specs)
    changed = guard.changes()
    if changed and use_sandbox:  # read-only to the kernel: someone else changed them
        external.extend(p for p in changed if p not in external)
        guard.accept(changed)
    elif changed:
        guard.restore(changed)
        shown = ", ".join(f"minirec/{p}" for p in changed[:3]) + (" ..." if len(changed) > 3
                                                                  else "")
        if not guard.only_caches(changed):
            result.status = TAMPERED
            result.detail = (f"changed minirec's files ({shown}); restored"
                             + (f"; {result.detail}" if result.detail else ""))
    shutil.rmtree(run_root, ignore_errors=True)
    return result


def _guard_between_runs(guard: PackageGuard, use_sandbox: bool, external: list[str]) -> None:
    """Before a run: minirec's folder must be as copied. In the sandbox nothing a kernel runs
    can write it, so a change comes from outside the grader (someone editing minirec): it is
    kept and reported. Without the sandbox it may be a late write of the previous submission's
    processes: it is undone."""
    changed = guard.changes()
    if not changed:
        return
    if use_sandbox:
        external.extend(p for p in changed if p not in external)
        guard.accept(changed)
    else:
        guard.restore(changed)


def write_csv(report: GradeReport, out) -> None:
    """One row per submission: submission, status, score, out_of, the exercises, seconds,
    note. Written to a temporary file and moved into place."""
    out = Path(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "status", "score", "out_of", *report.exercises, "seconds",
                     "note"])
    for sub, result in report.rows:
        by_name = {e.name: e.status for e in result.exercises}
        cells = [by_name.get(name, MISSING if result.exercises else "") for name in
                 report.exercises]
        note = result.detail or _first_problem(result)
        if result.review:
            note = "; ".join([n for n in [note, "review: " + "; ".join(result.review)] if n])
        writer.writerow([sub.name, result.status, report.score(result), len(report.exercises),
                         *cells, f"{result.seconds:.1f}", note.replace("\n", " ")[:500]])
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, out)


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
        lines.append("Review (a check cell edited or a check_... name rebound, see the note "
                     "column): " + ", ".join(flagged))
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
