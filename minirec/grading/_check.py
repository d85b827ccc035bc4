"""``minirec check``: one learner's notebook, run as it is in its own folder (as Jupyter runs
it) in a fresh kernel, and each exercise's result. A learner checking their own work is not an
adversary: every cell of their notebook runs, and no review flag is shown; the results are read the
way ``minirec grade`` reads them, from the checks' signed verdict records (:mod:`._verdicts`),
so that a check cell that never reached its check is "not run" here too."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._isolation import kernel_env
from ._kernel import run_notebook
from ._notebook import NotANotebook, find_exercises, read_notebook
from ._results import NotebookResult, interpret
from ._statuses import NO_EXERCISES, NOT_A_NOTEBOOK
from ._verdicts import RunKey, armed, install

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
    key = RunKey.new()
    with tempfile.TemporaryDirectory(prefix="minirec-check-") as scratch:
        env = kernel_env(Path(scratch))
        key_file = install(Path(env["IPYTHONDIR"]), key)
        outcome = run_notebook(nb, cwd=path.resolve().parent, time_limit=time_limit, env=env)
        result = interpret(outcome, specs, key)
        if not armed(key_file):
            result.detail = _joined(result.detail, "minirec's verdict records were not armed in "
                                    "the kernel: no check could report")
    return result


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
