"""``minirec check``: one learner's notebook, run in its own folder (as Jupyter runs it) in a
fresh kernel, and each exercise's result."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._isolation import kernel_env
from ._kernel import run_notebook
from ._notebook import NotANotebook, find_exercises, read_notebook
from ._results import NotebookResult, interpret
from ._statuses import NO_EXERCISES, NOT_A_NOTEBOOK

CHECK_TIMEOUT_S = 600


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
        env = kernel_env(Path(scratch))
        outcome = run_notebook(nb, cwd=path.resolve().parent, time_limit=time_limit, env=env)
    return interpret(outcome, specs)
