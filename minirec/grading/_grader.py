"""``minirec grade``: the orchestration. Collect the submissions, then for each one assemble
its run, run it in isolation with a time limit, read and review the result; gather the rows
into a :class:`GradeReport`."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from . import _isolation  # PACKAGE_DIR and sandbox_available, looked up at each call (tests)
from ._assemble import assemble, make_workdir
from ._isolation import PackageGuard, guard_after_run, guard_before_run, kernel_env, kill_marked, run_prefix
from ._kernel import run_notebook
from ._report import GradeReport
from ._results import NotebookResult, interpret
from ._review import review_notes
from ._statuses import TAMPERED
from ._submissions import MAX_NOTEBOOK_BYTES, Submission, collect_submissions

GRADE_TIMEOUT_S = 300


def grade(folder, *, time_limit: float = GRADE_TIMEOUT_S, sandbox: str = "auto",
          max_bytes: int = MAX_NOTEBOOK_BYTES, exclude: Iterable[Path] = (),
          progress: bool = True, package: Path | None = None) -> GradeReport:
    """Grade every submission of ``folder`` in isolation (:mod:`minirec.grading`); return the report
    (write it with :func:`write_csv`). ``sandbox``: ``"auto"`` (use it where it works), ``"on"``
    (refuse to grade without it) or ``"off"``."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    if sandbox not in ("auto", "on", "off"):
        raise ValueError(f"sandbox must be 'auto', 'on' or 'off'; got {sandbox!r}")
    use_sandbox, note = ((False, "off as asked") if sandbox == "off"
                         else _isolation.sandbox_available())
    if sandbox == "on" and not use_sandbox:
        raise RuntimeError(f"the sandbox does not work on this machine: {note}")
    submissions, ignored = collect_submissions(folder, max_bytes=max_bytes, exclude=exclude)
    guard = PackageGuard(Path(package) if package is not None else _isolation.PACKAGE_DIR)
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
    """One submission's row: assemble its run, run it in isolation, read the result."""
    if sub.problem is not None:
        return NotebookResult(sub.problem_status, detail=sub.problem)
    run = assemble(sub.data)
    if isinstance(run, NotebookResult):
        return run
    guard_before_run(guard, use_sandbox, external)
    workdir = make_workdir(run_root, sub.data)
    marker = uuid.uuid4().hex
    env = kernel_env(workdir, marker)
    prefix = run_prefix(run_root, workdir, guard, use_sandbox)
    try:
        outcome = run_notebook(run.nb, cwd=workdir, time_limit=time_limit, kernel_prefix=prefix,
                               env=env, stderr_path=run_root / "kernel-stderr.log")
    finally:
        kill_marked(marker)
    result = interpret(outcome, run.specs)
    result.review = review_notes(run.nb, run.specs)
    tampering = guard_after_run(guard, use_sandbox, external)
    if tampering:
        result.status = TAMPERED
        result.detail = tampering + (f"; {result.detail}" if result.detail else "")
    shutil.rmtree(run_root, ignore_errors=True)
    return result
