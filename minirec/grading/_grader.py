"""``minirec grade``: the orchestration. Collect the submissions, then for each one assemble
its run, run it in isolation with a time limit, read and review the result; gather the rows
into a :class:`GradeReport`."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from . import _isolation  # PACKAGE_DIR and sandbox_available, looked up at each call (tests)
from ._assemble import assemble, make_workdir, result_of
from ._isolation import (
    DEFAULT_MEMORY_BYTES,
    Isolation,
    PackageGuard,
    changed_files_note,
    paths_to_hide,
    paths_to_keep,
)
from ._kernel import run_notebook
from ._release import Release, find_release, load_release, watched_folders
from ._report import GradeReport
from ._results import NotebookResult
from ._statuses import KERNEL_DIED, OUT_OF_MEMORY, RAN, TAMPERED
from ._submissions import MAX_NOTEBOOK_BYTES, Submission, collect_submissions
from ._verdicts import RunKey, armed, install

GRADE_TIMEOUT_S = 300


def grade(folder, *, release=None, time_limit: float = GRADE_TIMEOUT_S, sandbox: str = "auto",
          max_bytes: int = MAX_NOTEBOOK_BYTES, exclude: Iterable[Path] = (),
          progress: bool = True, package: Path | None = None,
          memory: int | None = DEFAULT_MEMORY_BYTES, hide: Iterable[Path] = ()) -> GradeReport:
    """Grade every submission of ``folder`` in isolation (:mod:`minirec.grading`); return the report
    (write it with :func:`write_csv`). ``release``: the released exercise notebook every
    submission is graded against (default: the lesson the submissions name, found in the
    repository's ``exercises/``: :func:`~minirec.grading._release.find_release`; a
    :class:`~minirec.grading.ReleaseError` says why it cannot). ``sandbox``: ``"auto"`` (use
    it where it works), ``"on"`` (refuse to grade without it) or ``"off"``. ``memory``: each
    run's limit in bytes (None: no limit). ``hide``: more paths the sandboxed kernels must not
    see (``exclude`` is hidden too)."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    if sandbox not in ("auto", "on", "off"):
        raise ValueError(f"sandbox must be 'auto', 'on' or 'off'; got {sandbox!r}")
    use_sandbox, note = ((False, "off as asked") if sandbox == "off"
                         else _isolation.sandbox_available())
    if sandbox == "on" and not use_sandbox:
        raise RuntimeError(f"the sandbox does not work on this machine: {note}")
    submissions, ignored = collect_submissions(folder, max_bytes=max_bytes, exclude=exclude)
    graded_on = (load_release(release) if release is not None else
                 find_release([s.data for s in submissions if s.data is not None]))
    watch = watched_folders(folder, graded_on)
    guard = PackageGuard(Path(package) if package is not None else _isolation.PACKAGE_DIR)
    isolation = Isolation(use_sandbox, guard, memory)
    exclude = list(exclude)
    rows = []
    with tempfile.TemporaryDirectory(prefix="minirec-grade-") as session:
        if use_sandbox:
            isolation.hidden = tuple(paths_to_hide(Path(folder), [*exclude, *hide],
                                                   Path(session), guard.folder))
            isolation.kept = tuple(paths_to_keep(guard.folder))
        bar = tqdm(submissions, desc="grading", unit="nb", disable=not progress or None,
                   file=sys.stderr)
        for number, sub in enumerate(bar):
            bar.set_postfix_str(sub.name[:30])
            result = _grade_one(sub, Path(session, f"run-{number}"), time_limit, isolation,
                                graded_on, watch)
            rows.append((sub, result))
        bar.close()
    names = graded_on.names  # the columns and out_of: the released notebook's, for every row
    changed = [sub.name for sub in submissions
               if sub.data is not None and _read_or_none(sub.source) != sub.data]
    return GradeReport(names, rows, use_sandbox, note, ignored, time.perf_counter() - start,
                       changed, isolation.external, release=str(graded_on.path))


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _grade_one(sub: Submission, run_root: Path, time_limit: float, isolation: Isolation,
               release: Release, watch: list[Path]) -> NotebookResult:
    """One submission's row: assemble its run from the release (``watch``: folders its kernel
    must not read), run it in isolation, read the result from its verified verdicts. Without
    the sandbox, a run during which minirec's files changed is graded again on the restored
    files: ``tampered`` if it changes them again, else the second run's row (and the change is
    blamed on an earlier row whose processes could not be ended, if any)."""
    if sub.problem is not None:
        return NotebookResult(sub.problem_status, detail=sub.problem)
    run = assemble(sub.data, release, watch=watch)
    if isinstance(run, NotebookResult):
        return run
    result, changed, lingering = _run_isolated(sub.data, run, run_root, time_limit, isolation)
    if changed:
        result, again, lingering = _run_isolated(sub.data, run, run_root, time_limit, isolation)
        if again:
            result.status = TAMPERED
            result.detail = _joined(changed_files_note(again), result.detail)
        else:
            if not isolation.blame_lingering(changed, during=sub.name):
                isolation.external.extend(p for p in changed if p not in isolation.external)
            result.detail = _joined(f"graded again: minirec's files changed during its first "
                                    f"run, not by it ({changed_files_note(changed)})",
                                    result.detail)
    if lingering:
        isolation.lingering.append((sub, result))
        left = "a process" if len(lingering) == 1 else f"{len(lingering)} processes"
        result.detail = _joined(f"left {left} running that could not be ended", result.detail)
    return result


def _run_isolated(data: bytes, run, run_root: Path, time_limit: float,
                  isolation: Isolation) -> tuple[NotebookResult, list[str], list[int]]:
    """Run an assembled submission once in its own :class:`IsolatedRun`; its row, minirec's
    files it changed (restored) and the pids of its processes that could not be ended."""
    isolation.before_run()
    workdir = make_workdir(run_root)
    with isolation.run(run_root, workdir) as iso:
        env = iso.env()
        key = RunKey.new()  # the verdict channel (_verdicts): armed by a startup script
        key_file = install(Path(env["IPYTHONDIR"]), key, run.watch)
        try:
            outcome = run_notebook(run.nb, cwd=workdir, time_limit=time_limit,
                                   kernel_prefix=iso.prefix(), env=env,
                                   stderr_path=iso.stderr_path,
                                   connection_file=iso.connection_file)
        finally:
            lingering = iso.end()
        was_armed = armed(key_file)
        out_of_memory = iso.out_of_memory(outcome.nb)
        if out_of_memory and outcome.stopped and outcome.stopped[0] == KERNEL_DIED:
            outcome.stopped = (OUT_OF_MEMORY, outcome.stopped[1], iso.memory_note())
    result = result_of(run, outcome, key, was_armed)
    if out_of_memory and result.status == RAN:
        result.status, result.detail = OUT_OF_MEMORY, _joined(iso.memory_note(), result.detail)
    changed = isolation.after_run()
    shutil.rmtree(run_root, ignore_errors=True)
    return result, changed, lingering


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
