"""The engine of ``minirec check`` (for a learner) and ``minirec grade`` (for an instructor).

Both run exercise notebooks from top to bottom in a fresh Jupyter kernel (this interpreter's
``python3``, like nbval's ``--nbval-current-env``), with every cell run even after an error, and
read the result of each exercise from the signed verdict records its check cells publish
(below). ``minirec check`` runs the learner's notebook as it is; ``minirec grade`` runs the
*released* exercise notebook with only the learner's exercise cells put in. The notebook file
itself is never modified.

Exercises
---------
An exercise is a code cell tagged ``exercise`` with the ``check`` cells that follow it (the
tags :mod:`minirec.notebooks` writes). It is named after the function its check cell checks:
``check_gru_step(gru_step)`` is the exercise ``gru_step`` (when the check is not called
``check_<name>`` of a function the exercise cell defines, the name of the first argument is
used). A notebook whose tags were lost (cells copied into a new notebook) falls back to the
code cells that call a ``check_...`` function. Each exercise ends in one of

- ``passed``: every check of its check cells reported ``passed`` (it printed ``✓ ...``);
- ``not attempted``: a check reported ``NotAttempted`` (the function still raises
  ``NotImplementedError``);
- ``failed``: a check reported ``CheckFailed``; its message, a table and a diagnosis, is shown;
- ``error``: the exercise cell or a check cell raised something else, so that no check could
  report (a ``SyntaxError`` in the learner's cell, a ``NameError``, ...): the error, its cell
  and line are shown;
- ``not run``: the run stopped (time limit, kernel crash) before its check cell; or the check
  cell ran but no genuine verdict came from it (the check never ran, its report was
  suppressed); or the kernel saw the check tampered with and withheld its verdict;
- ``missing`` (grade only): the submission has no cell that answers it.

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
on. A folder ``alice/`` beside ``alice.ipynb`` is one row, ``name collision``, neither run.

Every submission is graded against one *released* exercise notebook, the one ``minirec build``
wrote (:mod:`._release`): ``--release exercises/NN_slug.ipynb``, or, without it, the lesson most
submissions name in their metadata, found in ``exercises/`` of the repository (the current
folder's, else the installed minirec's). A submission whose metadata names another lesson is a
row ``wrong lesson``, not run. As nbgrader's autograde does, the notebook run is the release
with the source of each exercise cell taken from the submission's matching cell (the same
cell id, else the cell tagged ``exercise`` that defines the exercise's function:
:mod:`._assemble`); the submission's other cells, its check cells, outputs and metadata are not
run, and what the learner added or changed outside the exercise cells is shown in the
feedback. Tagged cells that match nothing or repeat an exercise or a check are ignored and
flagged.

The CSV has one row per submission: ``submission, status, score, out_of``, one column per
exercise of the release (the statuses above; ``out_of`` is their number, for every row),
``seconds``, ``review`` (the flags below) and ``note``. ``score`` counts passed exercises; it
is 0 for a submission flagged ``tampered``. Every text cell that a spreadsheet would read as a
formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a file named
``=HYPERLINK(...).ipynb``) is written with a leading ``'``, as OWASP advises. A progress bar
runs on stderr while it grades and a summary is printed at the end. ``--feedback DIR`` also
writes ``DIR/<submission>.txt``, what ``minirec check`` would have printed for it (tables and
diagnoses), the review flags with their reasons and the cells not run, to hand back.

In the sandbox ``--jobs N`` grades N submissions at once (default: the cores this process may
run on), each in its own kernel, sandbox, cgroup and limits (so N times ``--memory`` at most);
the rows, the CSV and the feedback are the same whatever N (the seconds aside). Without the
sandbox submissions are graded one at a time whatever N, and the summary says so: a change to
minirec's files is blamed on the run during which it happened (point 3 below), which two runs
in flight at once would make ambiguous. Ctrl-C ends the runs in flight and starts no other.

Results a notebook cannot forge (the threat model of the results)
-----------------------------------------------------------------
A submission may try to get marks it did not earn. What ``grade`` does about it:

- *Prevented: results read from what the notebook prints or raises.* Each check reports its
  verdict through a channel the grader verifies (:mod:`._verdicts`, and the kernel's end
  :mod:`minirec.check._verdict`). Before a run the grader writes a per-run id and 32-byte
  secret into a key file (mode 0600) in the kernel's private ``IPYTHONDIR``, and an IPython
  startup script that arms ``minirec.check`` with it before the first cell runs; the kernel
  reads and deletes the file (the secret is in no file and no environment variable while the
  notebook runs). Every check then publishes a ``display_data`` output of MIME type
  ``application/vnd.minirec.verdict+json``: exercise, verdict, run id, the cell that ran it,
  a sequence number and an HMAC-SHA256 over them. The grader counts a record only with the
  right MAC and run id, in the outputs of the check cell it names, for a check that cell
  calls, seen once. So a check that never ran (a fake ``check_...``, check cells turned into
  ``pass`` by an input transformer), whose output was suppressed, or whose exception was
  swallowed (``set_custom_exc``, a replaced ``showtraceback``: the verdict was published
  before the exception) is ``not run`` or its true verdict - never ``passed``; a record with
  a bad MAC, of another run, in another cell or shown twice is ignored and flagged.
- *Prevented: the check's own machinery rebound, and frames taken while being checked.* The
  armed kernel records the globals of minirec's modules (their functions' code and defaults,
  their classes' attributes), NumPy's namespace and the builtins; a check run after one of them
  was rebound (``minirec.check._core.compare = ...``) withholds its verdict (``not run``),
  naming it. A Python audit hook (it cannot be removed) withholds the verdict of a check during
  which the learner's function took a frame (``sys._getframe``, ``inspect.stack()``, a
  traceback's frame: walking up to the check's reference), called ``gc.get_objects`` /
  ``get_referrers`` / ``get_referents`` or ``sys._current_frames``, or set a trace function;
  and of every check after the notebook opened a ``.ipynb`` file or a file of the submissions,
  the solutions or the lessons (``exec`` of the solution notebook's cells). The same calls at
  other times are listed for review, and the verdicts stand.
- *Flagged for review (the* ``review`` *column, the reasons in the feedback)*: exercise cells -
  the only learner code run - that reach into the machinery (:mod:`._review`): IPython's
  shell and hooks (``get_ipython``, ``set_custom_exc``, ``showtraceback``,
  ``input_transformers_*``), ``minirec.check`` or its modules, a rebound or called
  ``check_...``, minirec's own version of the exercise's function, ``sys.modules``, frames
  (``sys._getframe``, ``inspect``, ``f_back``), ``gc``, ``builtins``, ``globals()``,
  ``__code__`` / ``__globals__``, ``importlib``, ``ctypes``, ``subprocess``, ``exec`` /
  ``eval`` / ``compile``, ``open()`` and the words ``.ipynb`` and ``solutions``; what the
  kernel saw (above); forged records; ignored tagged cells; a submission that is minirec's
  solution notebook (its metadata says so).
- *Out of scope*: code that reads the signer out of the kernel's memory (it is a Python object
  there) can sign any verdict, and code that hides its intent from the reader (a string
  decoded and run) escapes the review. Both need the machinery access that is flagged or
  watched, so read the code of a flagged submission. An answer copied from a classmate or from
  the published solutions without reading a file in the kernel (pasted in) is a correct
  answer to the grader. ``minirec check`` is a learner checking their own work, not an
  adversary: it runs their notebook as it is and reads its results the same way, without
  review flags.

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
   nothing. Runs in flight at once (``--jobs``, only in the sandbox) share nothing but the
   grader: in the sandbox a kernel talks to the grader over Unix sockets in its own working
   folder, not TCP ports on localhost, where a kernel running beside it could subscribe to its
   outputs and read its learner's code (what still listens on localhost is ipykernel's pipe
   for forked processes' output, which takes only messages carrying its own secret and sends
   nothing); a process of the grader's that carries no run's marker is claimed by no run.
2. *In the sandbox, nothing outside its working folder is writable, and what it should not
   read is hidden.* On Linux, where unprivileged user namespaces are available (``unshare``;
   ``sandbox_available()`` probes the machine once), the kernel runs in a sandbox
   (:mod:`minirec.grading._sandbox`): every mount is read-only except its working folder -
   ``/``, ``/proc`` (so ``/proc/sys``), ``/sys`` (so the cgroups) included; ``/dev`` is a
   minimal read-only tmpfs (``null``, ``zero``, ``full``, ``random``, ``urandom`` and a fresh,
   private ``/dev/shm``: no disk, no ``/dev/kmsg``); minirec's package folder is seen through
   an overlay whose writes are thrown away after the run (Numba's cache stays usable). Empty
   mounts hide the submissions folder, the grades file and the feedback folder, the other runs'
   folders, the temporary folder, Jupyter's runtime folder (other kernels' connection files)
   and the repository's ``lessons/``, ``solutions/``, ``book/`` and ``.git/`` (``--hide`` adds
   more); what the kernel runs from (the interpreter, ``PYTHONPATH``) is bound back. The
   mounts are locked by a nested user namespace into which no user is mapped: the kernel runs
   as ``nobody`` with no capability, so it can neither remount nor unmount them, nor make
   namespaces of its own. It is PID 1's child in its own PID namespace: every process it
   starts dies with it, and it can see or signal no other process (nor read the grader's
   ``/proc/PID/environ``).
3. *In every mode, the kernel gets a minimal environment and its run does not outlive its
   row.* Its environment is ``PATH``, the language, ``PYTHONPATH``, thread counts, and
   ``HOME``, ``TMPDIR`` and a private ``IPYTHONDIR`` in its working folder - none of the
   grader's other variables. Every process of a run is in the run's cgroup where the grader
   may make one (root, or a delegated cgroup v2), else found through ``/proc`` (the run's
   environment marker, or a descendant of the grader started during the run: the grader is
   their subreaper, so a process that detaches - ``setsid``, a double fork - or clears its
   environment stays its descendant; with runs in parallel, a descendant of a process the run
   marked); all are killed before its row is written and, without the sandbox, before the
   next submission starts (:class:`IsolatedRun`). The grader keeps a copy of every file of
   the minirec package and compares the folder with it before and after each run. In the
   sandbox a change cannot come from a submission: it is kept and reported at the end
   (someone edited minirec while grading). Without the sandbox every change is undone; a run
   during which minirec's files changed (outside ``__pycache__``) is graded again on the
   restored files, and is ``tampered`` (score 0) if it changes them again; otherwise the
   change is blamed on the latest row whose processes could not be ended (``tampered``), else
   reported as someone else's - so do not edit minirec while grading without the sandbox.
4. *A memory limit per submission* (``--memory``, default 4 GiB, six times what the heaviest
   lesson's solution used when measured): the run's cgroup's ``memory.max`` (or a cgroup v1
   memory limit) where the grader may make one, else ``RLIMIT_DATA`` of each of its
   processes. A run over it is ``out of memory`` in the CSV, with the exercises it finished.
5. *Outputs are capped*: what the grader keeps of a run's outputs is bounded (prints,
   displays and their updates, widget messages; an error's message and traceback are cut, one
   per cell), so that a notebook cannot fill the grader's memory.

Without the sandbox (``--sandbox off``, or ``auto`` on a machine without user namespaces) the
file system is writable by the submission as by the instructor: it could, for example, change
NumPy in the virtual environment, write into the instructor's files, read the other
submissions and the solutions, or read the grader's environment in ``/proc``; only minirec's
files are checked and restored (point 3), and submissions are graded one at a time
whatever ``--jobs`` says, so that a change is blamed on the right row. A process a run asks
another program to start (a ``cron`` job, ``systemd-run``, ``ssh localhost``) is not its
descendant, and is not ended.

What the results can and cannot be made to say is the section above. Network access, filling
the disk through the working folder, and using every core are not prevented. For untrusted
submissions at scale, run the grader itself in a throw-away container or VM.

The code
--------
One module per concern, each re-exported here (import from ``minirec.grading``, not from the
modules): ``_statuses`` (the words of the grades), ``_notebook`` (reading a notebook, finding its
exercises), ``_release`` (the released exercise notebook), ``_assemble`` (what is run for a
submission), ``_review`` (the review flags), ``_kernel`` (running a notebook in a kernel),
``_verdicts`` (the verdict channel), ``_results`` (reading each exercise's status from the
run), ``_isolation`` with ``_cgroup`` and ``_processes``, and the ``_limits`` and
``_sandbox`` scripts (the guarantees above), ``_submissions`` (the collected folder),
``_report`` (the CSV and the summary), ``_feedback`` (the learner's report), ``_check``
(``minirec check``) and ``_grader`` (``minirec grade``). The cell tags and
the kernel are :mod:`minirec.notebooks`'s, shared with ``minirec build``.
"""

from __future__ import annotations

from ._check import CHECK_TIMEOUT_S, check_notebook
from ._feedback import format_check, write_feedback
from ._grader import GRADE_TIMEOUT_S, default_jobs, grade
from ._isolation import (
    DEFAULT_MEMORY_BYTES,
    IsolatedRun,
    Isolation,
    PackageGuard,
    parse_bytes,
    sandbox_available,
    sandbox_prefix,
)
from ._kernel import RunOutcome, run_notebook
from ._notebook import ExerciseSpec, NotANotebook, find_exercises, read_notebook
from ._release import Release, ReleaseError, find_release, load_release
from ._report import GradeReport, format_summary, write_csv
from ._results import ExerciseResult, NotebookResult, describe_error, interpret
from ._review import cell_reasons, review_exercise_cells
from ._statuses import (
    ERROR,
    FAILED,
    GRADER_ERROR,
    KERNEL_DIED,
    MISSING,
    NAME_COLLISION,
    NO_EXERCISES,
    NOT_A_NOTEBOOK,
    NOT_ATTEMPTED,
    NOT_RUN,
    OUT_OF_MEMORY,
    PASSED,
    RAN,
    TAMPERED,
    TIMED_OUT,
    TOO_LARGE,
    WRONG_LESSON,
)
from ._submissions import MAX_NOTEBOOK_BYTES, Submission, collect_submissions
from ._verdicts import RunKey

__all__ = [
    # exercise statuses, then submission statuses
    "PASSED", "NOT_ATTEMPTED", "FAILED", "ERROR", "NOT_RUN", "MISSING",
    "RAN", "TIMED_OUT", "OUT_OF_MEMORY", "KERNEL_DIED", "NOT_A_NOTEBOOK", "NO_EXERCISES",
    "TOO_LARGE", "TAMPERED", "WRONG_LESSON", "NAME_COLLISION",
    "GRADER_ERROR",
    # limits
    "CHECK_TIMEOUT_S", "GRADE_TIMEOUT_S", "MAX_NOTEBOOK_BYTES",
    # reading notebooks, running them, their results
    "NotANotebook", "ExerciseSpec", "read_notebook", "find_exercises",
    "RunOutcome", "run_notebook", "ExerciseResult", "NotebookResult", "interpret",
    "describe_error", "RunKey",
    # the released notebook, the review flags
    "Release", "ReleaseError", "load_release", "find_release", "review_exercise_cells",
    "cell_reasons",
    # minirec check
    "check_notebook", "format_check",
    # minirec grade
    "Submission", "collect_submissions", "grade", "default_jobs", "GradeReport", "write_csv",
    "write_feedback", "format_summary",
    # isolation
    "sandbox_available", "sandbox_prefix", "PackageGuard", "Isolation", "IsolatedRun",
    "DEFAULT_MEMORY_BYTES", "parse_bytes",
]
