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
   the machine once), the kernel runs in a sandbox (:mod:`minirec.grading._sandbox`):
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

The code
--------
One module per concern, each re-exported here (import from ``minirec.grading``, not from the
modules): ``_statuses`` (the words of the grades), ``_notebook`` (reading a notebook, finding its
exercises), ``_review`` (the tripwire), ``_assemble`` (what is run for a submission),
``_kernel`` (running a notebook in a kernel), ``_results`` (reading each exercise's status from
the run), ``_isolation`` and the ``_sandbox`` script (the guarantees above), ``_submissions``
(the collected folder), ``_report`` (the CSV and the summary), ``_feedback`` (the learner's
report), ``_check`` (``minirec check``) and ``_grader`` (``minirec grade``). The cell tags and
the kernel are :mod:`minirec.notebooks`'s, shared with ``minirec build``.
"""

from __future__ import annotations

from ._check import CHECK_TIMEOUT_S, check_notebook
from ._feedback import format_check, write_feedback
from ._grader import GRADE_TIMEOUT_S, grade
from ._isolation import PackageGuard, sandbox_available, sandbox_prefix
from ._kernel import RunOutcome, run_notebook
from ._notebook import ExerciseSpec, NotANotebook, find_exercises, read_notebook
from ._report import GradeReport, format_summary, write_csv
from ._results import ExerciseResult, NotebookResult, describe_error, interpret
from ._review import review_notes
from ._statuses import (
    ERROR,
    FAILED,
    GRADER_ERROR,
    KERNEL_DIED,
    MISSING,
    NO_EXERCISES,
    NOT_A_NOTEBOOK,
    NOT_ATTEMPTED,
    NOT_RUN,
    PASSED,
    RAN,
    TAMPERED,
    TIMED_OUT,
    TOO_LARGE,
)
from ._submissions import MAX_NOTEBOOK_BYTES, Submission, collect_submissions

__all__ = [
    # exercise statuses, then submission statuses
    "PASSED", "NOT_ATTEMPTED", "FAILED", "ERROR", "NOT_RUN", "MISSING",
    "RAN", "TIMED_OUT", "KERNEL_DIED", "NOT_A_NOTEBOOK", "NO_EXERCISES", "TOO_LARGE", "TAMPERED",
    "GRADER_ERROR",
    # limits
    "CHECK_TIMEOUT_S", "GRADE_TIMEOUT_S", "MAX_NOTEBOOK_BYTES",
    # reading notebooks, running them, their results
    "NotANotebook", "ExerciseSpec", "read_notebook", "find_exercises", "review_notes",
    "RunOutcome", "run_notebook", "ExerciseResult", "NotebookResult", "interpret",
    "describe_error",
    # minirec check
    "check_notebook", "format_check",
    # minirec grade
    "Submission", "collect_submissions", "grade", "GradeReport", "write_csv", "write_feedback",
    "format_summary",
    # isolation
    "sandbox_available", "sandbox_prefix", "PackageGuard",
]
