"""``minirec grade``: the orchestration. Collect the submissions, then for each one assemble
its run, run it in isolation with a time limit, read and review the result; gather the rows
into a :class:`GradeReport`. In the sandbox, ``jobs`` submissions are graded at once (threads
around :func:`_grade_one`: each run is a kernel process with its own sandbox, cgroup and
limits, and its kernel manager, zmq context and event loop belong to its thread); without the
sandbox one at a time. The rows are in the submissions' order whatever ``jobs`` is."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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


def default_jobs() -> int:
    """``--jobs``'s default: the cores this process may run on (``os.sched_getaffinity``,
    else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (not Linux)
        return max(1, os.cpu_count() or 1)


def jobs_to_run(asked: int, use_sandbox: bool) -> tuple[int, str]:
    """How many runs may be in flight at once, and why that is fewer than ``asked``: in the
    sandbox ``asked``; without it one, since a change to minirec's files made while two runs
    were in flight could be blamed on neither (:mod:`minirec.grading`, point 3)."""
    if asked < 1:
        raise ValueError(f"jobs must be at least 1; got {asked}")
    if asked > 1 and not use_sandbox:
        return 1, (f"one at a time, not {asked} (--jobs): without the sandbox a change to "
                   "minirec's files is blamed on the run during which it happened, which "
                   "needs runs one after the other")
    return asked, ""


def grade(folder, *, release=None, time_limit: float = GRADE_TIMEOUT_S, sandbox: str = "auto",
          max_bytes: int = MAX_NOTEBOOK_BYTES, exclude: Iterable[Path] = (),
          progress: bool = True, package: Path | None = None,
          memory: int | None = DEFAULT_MEMORY_BYTES, hide: Iterable[Path] = (),
          jobs: int | None = None) -> GradeReport:
    """Grade every submission of ``folder`` in isolation (:mod:`minirec.grading`); return the report
    (write it with :func:`write_csv`). ``release``: the released exercise notebook every
    submission is graded against (default: the lesson the submissions name, found in the
    repository's ``exercises/``: :func:`~minirec.grading._release.find_release`; a
    :class:`~minirec.grading.ReleaseError` says why it cannot). ``sandbox``: ``"auto"`` (use
    it where it works), ``"on"`` (refuse to grade without it) or ``"off"``. ``memory``: each
    run's limit in bytes (None: no limit). ``hide``: more paths the sandboxed kernels must not
    see (``exclude`` is hidden too). ``jobs``: submissions graded at once, each in its own
    sandbox with its own limits and, where the instructor's environment sets no thread count,
    thread pools of cores / jobs threads (default :func:`default_jobs`); without the sandbox
    always one (:func:`jobs_to_run`)."""
    start = time.perf_counter()
    if sandbox not in ("auto", "on", "off"):
        raise ValueError(f"sandbox must be 'auto', 'on' or 'off'; got {sandbox!r}")
    use_sandbox, note = ((False, "off as asked") if sandbox == "off"
                         else _isolation.sandbox_available())
    if sandbox == "on" and not use_sandbox:
        raise RuntimeError(f"the sandbox does not work on this machine: {note}")
    parallel, jobs_note = jobs_to_run(default_jobs() if jobs is None else jobs, use_sandbox)
    submissions, ignored = collect_submissions(folder, max_bytes=max_bytes, exclude=exclude)
    graded_on = (load_release(release) if release is not None else
                 find_release([s.data for s in submissions if s.data is not None]))
    watch = watched_folders(folder, graded_on)
    guard = PackageGuard(Path(package) if package is not None else _isolation.PACKAGE_DIR)
    isolation = Isolation(use_sandbox, guard, memory, parallel=parallel > 1,
                          threads=max(1, default_jobs() // parallel) if parallel > 1 else None)
    exclude = list(exclude)
    with tempfile.TemporaryDirectory(prefix="minirec-grade-") as session:
        if use_sandbox:
            isolation.hidden = tuple(paths_to_hide(Path(folder), [*exclude, *hide],
                                                   Path(session), guard.folder))
            isolation.kept = tuple(paths_to_keep(guard.folder))

        def grade_one(number: int, sub: Submission) -> NotebookResult:
            return _grade_one(sub, Path(session, f"run-{number}"), time_limit, isolation,
                              graded_on, watch)

        results = _grade_all(submissions, grade_one, parallel, isolation, progress)
    names = graded_on.names  # the columns and out_of: the released notebook's, for every row
    changed = [sub.name for sub in submissions
               if sub.data is not None and _read_or_none(sub.source) != sub.data]
    return GradeReport(names, list(zip(submissions, results)), use_sandbox, note, ignored,
                       time.perf_counter() - start, changed, isolation.external,
                       release=str(graded_on.path), jobs=parallel, jobs_note=jobs_note)


def _grade_all(submissions: list[Submission],
               grade_one: Callable[[int, Submission], NotebookResult], jobs: int,
               isolation: Isolation, progress: bool) -> list[NotebookResult]:
    """Each submission's row, ``grade_one(number, submission)`` in ``jobs`` threads, in the
    submissions' order whatever order they finish in; the progress bar counts the rows done
    and names the last. On an interrupt (Ctrl-C) or an error, the runs in flight are ended,
    no other starts, and it is raised."""
    from tqdm.auto import tqdm

    results: list[NotebookResult | None] = [None] * len(submissions)
    bar = tqdm(total=len(submissions), desc="grading", unit="nb",
               disable=not progress or None, file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="minirec-grade")
    try:
        numbers = {pool.submit(grade_one, number, sub): number
                   for number, sub in enumerate(submissions)}
        pending = set(numbers)
        while pending:  # a timeout, so that the main thread sees Ctrl-C at once
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=numbers.get):
                results[numbers[future]] = future.result()
                bar.set_postfix_str(submissions[numbers[future]].name[:30])
                bar.update()
    except BaseException:
        isolation.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return results


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
                isolation.note_external(changed)
            result.detail = _joined(f"graded again: minirec's files changed during its first "
                                    f"run, not by it ({changed_files_note(changed)})",
                                    result.detail)
    if lingering:
        isolation.note_lingering(sub, result)
        left = "a process" if len(lingering) == 1 else f"{len(lingering)} processes"
        result.detail = _joined(f"left {left} running that could not be ended", result.detail)
    return result


def _run_isolated(data: bytes, run, run_root: Path, time_limit: float,
                  isolation: Isolation) -> tuple[NotebookResult, list[str], list[int]]:
    """Run an assembled submission once in its own :class:`IsolatedRun`; its row, minirec's
    files it changed (restored) and the pids of its processes that could not be ended."""
    isolation.before_run()
    workdir = make_workdir(run_root)
    with isolation.running(run_root, workdir) as iso:
        env = iso.env()
        key = RunKey.new()  # the verdict channel (_verdicts): armed by a startup script
        key_file = install(Path(env["IPYTHONDIR"]), key, run.watch)
        try:
            outcome = run_notebook(run.nb, cwd=workdir, time_limit=time_limit,
                                   kernel_prefix=iso.prefix(), env=env,
                                   stderr_path=iso.stderr_path,
                                   connection_file=iso.connection_file,
                                   ipc_path=iso.ipc_path,
                                   cancelled=lambda: isolation.stopped)
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
