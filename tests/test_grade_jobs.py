"""``minirec grade --jobs N`` (issue 12, item 5): a class graded in parallel, each submission in
its own sandbox with its own limits, with the same CSV and feedback whatever N; without the
sandbox one at a time, so that item 4's blame stays on the right row.

Kernels import a copy of minirec (``PYTHONPATH``) whose folder the grader guards. Tests that
run submissions in parallel need the sandbox (Linux user namespaces) and skip without it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
import uuid
from pathlib import Path

import pytest

from minirec import cli, grading
from minirec.grading import _grader, _isolation, _processes

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.fixtures import grading as fx
    from tests.mutants import affine_combine as m_affine
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from fixtures import grading as fx
    from mutants import affine_combine as m_affine

ROOT = Path(__file__).resolve().parents[1]
LINUX = sys.platform.startswith("linux") and Path("/proc/self/stat").exists()
SANDBOX = grading.sandbox_available() if LINUX else (False, "not Linux")
needs_sandbox = pytest.mark.skipif(not SANDBOX[0], reason=f"no sandbox here: {SANDBOX[1]}")
needs_linux = pytest.mark.skipif(not LINUX, reason="needs Linux (/proc)")
SECONDS = re.compile(r"\(ran in [0-9.]+ s\)")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A copy of minirec that kernels import and the grader guards, and the fixture lesson's
    released exercise notebook."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "minirec", root / "minirec", symlinks=False)
    release = root / "exercises" / "00_grading.ipynb"
    release.parent.mkdir()
    release.write_bytes(fx.to_bytes(fx.lesson_notebooks()[1]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(root))
        mp.setattr(_isolation, "PACKAGE_DIR", root / "minirec")
        yield release


@pytest.fixture
def runs(monkeypatch):
    """Counts kept around each run while grading: ``started``, ``most`` in flight at once (set
    them back to 0 between gradings) and the kernels' ``threads`` (the isolation's)."""
    real = _grader._run_isolated
    lock = threading.Lock()
    counts = types.SimpleNamespace(now=0, most=0, started=0, threads=set())

    def counted(data, run, run_root, time_limit, isolation):
        with lock:
            counts.now, counts.started = counts.now + 1, counts.started + 1
            counts.most = max(counts.most, counts.now)
            counts.threads.add(isolation.threads)
        try:
            return real(data, run, run_root, time_limit, isolation)
        finally:
            with lock:
                counts.now -= 1

    monkeypatch.setattr(_grader, "_run_isolated", counted)
    return counts


def _class_folder(folder: Path) -> Path:
    """A class of every kind: right, blank, wrong, a syntax error, a kernel that exits, a
    faked check, a folder submission, a file that is not a notebook."""
    solution, exercise = fx.lesson_notebooks()
    wrong = fx.fill(exercise, "affine_combine",
                    fx.learner_source(m_affine, m_affine.MUTANTS[2].fn, "affine_combine"))
    notebooks = {
        "solved.ipynb": fx.solved_exercise(),
        "blank.ipynb": exercise,
        "wrong.ipynb": wrong,
        "syntax.ipynb": fx.fill(exercise, "affine_combine", fx.broken_sources()["syntax"]),
        "crash.ipynb": fx.fill(solution, "attention_combine", fx.broken_sources()["crash"]),
        "faker.ipynb": fx.with_line(exercise, "affine_combine", fx.FAKE_CHECK),
    }
    folder.mkdir()
    for name, nb in notebooks.items():
        (folder / name).write_bytes(fx.to_bytes(nb))
    (folder / "dana").mkdir()
    (folder / "dana" / "lesson.ipynb").write_bytes(fx.to_bytes(solution))
    (folder / "pdf.ipynb").write_bytes(fx.not_notebooks()["pdf"])
    return folder


def _cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli.main(list(args))
    return status, buffer.getvalue()


def _without_seconds(csv_text: str) -> list[list[str]]:
    import csv

    rows = list(csv.reader(io.StringIO(csv_text)))
    column = rows[0].index("seconds")
    return [row[:column] + row[column + 1:] for row in rows]


# --------------------------------------------------------------------------------------------
# The same grades whatever N
# --------------------------------------------------------------------------------------------

@needs_sandbox
def test_the_same_folder_gives_the_same_csv_and_feedback_with_1_and_2_jobs(
        tmp_path, course, runs):
    folder = _class_folder(tmp_path / "submissions")
    graded = {}
    for jobs in (1, 2):
        out, feedback = tmp_path / f"grades-{jobs}.csv", tmp_path / f"feedback-{jobs}"
        runs.most = 0
        status, printed = _cli("grade", str(folder), "--out", str(out), "--release",
                               str(course), "--feedback", str(feedback), "--jobs", str(jobs),
                               "--sandbox", "on", "--no-progress")
        assert status == 0, printed
        graded[jobs] = (out.read_text(encoding="utf-8"), printed, feedback, runs.most)

    (csv_1, printed_1, feedback_1, most_1), (csv_2, printed_2, feedback_2, most_2) = \
        graded[1], graded[2]
    assert (most_1, most_2) == (1, 2)  # runs were in flight together with --jobs 2 only
    assert "Ran one at a time (--jobs 1)." in printed_1
    assert "Ran 2 at a time (--jobs), each in its own sandbox." in printed_2
    assert [row[0] for row in _without_seconds(csv_1)[1:]] == sorted(
        ["solved.ipynb", "blank.ipynb", "wrong.ipynb", "syntax.ipynb", "crash.ipynb",
         "faker.ipynb", "dana", "pdf.ipynb"])  # one row each, in a fixed order
    assert _without_seconds(csv_1) == _without_seconds(csv_2)
    statuses = {row[0]: row[1:4] for row in _without_seconds(csv_2)[1:]}
    assert statuses["solved.ipynb"] == ["ran", "2", "2"]  # not a trivial equality
    assert statuses["crash.ipynb"][0] == "kernel died" and statuses["pdf.ipynb"][0] == \
        "not a notebook"
    names = sorted(p.name for p in feedback_1.iterdir())
    assert names == sorted(p.name for p in feedback_2.iterdir()) and len(names) == 8
    for name in names:
        assert SECONDS.sub("", (feedback_1 / name).read_text(encoding="utf-8")) == \
            SECONDS.sub("", (feedback_2 / name).read_text(encoding="utf-8")), name
    summary_1, summary_2 = (re.sub(r"(in \d+ s|Ran .*|Wrote .*)", "", p)
                            for p in (printed_1, printed_2))
    assert summary_1 == summary_2


# --------------------------------------------------------------------------------------------
# Without the sandbox: one at a time (item 4's blame needs it)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["off", "auto, where there is no sandbox"])
def test_without_the_sandbox_submissions_are_graded_one_at_a_time(tmp_path, course,
                                                                   monkeypatch, runs, mode):
    if mode != "off":
        monkeypatch.setattr(_isolation, "sandbox_available", lambda: (False, "no unshare here"))
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in ("a.ipynb", "b.ipynb", "c.ipynb"):
        (folder / name).write_bytes(fx.to_bytes(fx.solved_exercise()))
    report = grading.grade(folder, release=course, sandbox=mode.split(",")[0], jobs=2,
                           time_limit=120, progress=False)
    assert (runs.most, runs.started, report.jobs, runs.threads) == (1, 3, 1, {None})
    assert [r.passed for _s, r in report.rows] == [2, 2, 2]
    summary = grading.format_summary(report)
    assert "Ran one at a time, not 2 (--jobs): without the sandbox a change to minirec's " \
        "files is blamed on the run during which it happened" in summary


def test_parallel_runs_are_refused_without_the_sandbox(tmp_path):
    with pytest.raises(ValueError, match="runs in parallel need the sandbox"):
        _isolation.Isolation(False, grading.PackageGuard(tmp_path), parallel=True)
    assert _grader.jobs_to_run(3, True) == (3, "")
    assert _grader.jobs_to_run(3, False)[0] == 1
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        _grader.jobs_to_run(0, True)


def test_jobs_default_to_the_cores_this_process_may_use(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
        assert grading.default_jobs() == 3
        monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert grading.default_jobs() == 7
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert grading.default_jobs() == 1


def test_runs_sharing_the_cores_get_thread_pools_of_their_share(tmp_path, monkeypatch):
    """With N runs at once, a kernel's OpenMP, MKL, OpenBLAS and Numba pools are cores / N
    threads, unless the instructor's environment sets them; alone, the libraries choose."""
    source = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "3"}
    env = _isolation.grading_env(tmp_path, "marker", source, threads=2)
    assert [env[name] for name in _isolation.THREAD_VARIABLES] == ["3", "2", "2", "2"]
    alone = _isolation.grading_env(tmp_path, "marker", source)
    assert [alone.get(name) for name in _isolation.THREAD_VARIABLES] == ["3", None, None, None]
    isolation = _isolation.Isolation(True, grading.PackageGuard(tmp_path), parallel=True,
                                     threads=2)
    run = isolation.run(tmp_path, tmp_path)
    assert (run.alone, run.threads) == (False, 2)
    captured = {}
    monkeypatch.setattr(_grader, "default_jobs", lambda: 4)
    monkeypatch.setattr(_grader, "_grade_all",
                        lambda subs, one, jobs, iso, progress: captured.update(
                            jobs=jobs, threads=iso.threads) or [])
    monkeypatch.setattr(_isolation, "sandbox_available", lambda: (True, ""))
    release = tmp_path / "release.ipynb"
    release.write_bytes(fx.to_bytes(fx.lesson_notebooks()[1]))
    (tmp_path / "class").mkdir()
    grading.grade(tmp_path / "class", release=release, jobs=2, progress=False)
    assert captured == {"jobs": 2, "threads": 2}


def test_jobs_option(tmp_path, capsys):
    status = cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--jobs", "0"])
    assert status == 2 and "--jobs must be at least 1" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# What runs in parallel must not share
# --------------------------------------------------------------------------------------------

@needs_linux
def test_a_run_claims_unmarked_processes_only_while_it_is_alone():
    """A process the grader has forked for another run carries no marker until it executes
    its program: a run in parallel with others claims only what it marked (and what descends
    from it, its environment cleared or not); alone, also the grader's unmarked descendants
    (what detached and cleared its environment)."""
    marker, needle = uuid.uuid4().hex, f"minirec-jobs-{uuid.uuid4().hex[:10]}"
    since = _processes.clock_ticks_now() - 1
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    spawner = ("import subprocess, sys, time\n"
               f"subprocess.Popen({sleeper!r} + [sys.argv[1] + '-child'], env={{}})\n"
               "time.sleep(60)\n")
    marked = subprocess.Popen([sys.executable, "-c", spawner, needle],
                              env={**os.environ, _processes.MARKER_VARIABLE: marker})
    other = subprocess.Popen([*sleeper, needle + "-other"], env={})
    try:
        deadline = time.monotonic() + 20
        while not fx.processes_running(needle + "-child") and time.monotonic() < deadline:
            time.sleep(0.02)
        [child] = fx.processes_running(needle + "-child")
        alone = set(_processes.run_processes(marker, since))
        beside_others = set(_processes.run_processes(marker, since, claim_unmarked=False))
        assert {marked.pid, child} <= beside_others
        assert other.pid in alone and other.pid not in beside_others
    finally:
        for proc in (marked, other):
            proc.kill()
            proc.wait()
        for pid in fx.processes_running(needle + "-child"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


KERNEL_SOCKETS = """
info = json.load(open(".kernel-connection.json"))
if info["transport"] != "ipc" or not info["ip"].startswith(os.getcwd() + os.sep):
    escaped.append("the kernel's sockets are " + info["transport"] + " " + info["ip"])
# ipykernel's pipe for forked processes' output still listens on localhost: it only takes
# messages that carry its own secret, and sends nothing
pipe = getattr(get_ipython().kernel.iopub_thread, "_pipe_port", None)
inodes = set()
for fd in os.listdir("/proc/self/fd"):
    with contextlib.suppress(OSError):
        link = os.readlink("/proc/self/fd/" + fd)
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with contextlib.suppress(OSError):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and fields[9] in inodes and port != pipe:
                escaped.append("the kernel listens on TCP " + fields[1])
"""


def _attack(body: str) -> bytes:
    """The exercise notebook whose ``affine_combine`` cell runs ``body`` (which appends what
    worked to ``escaped``), raises if anything did, then answers right."""
    source = ("import contextlib, json, os\nescaped = []\n" + body.strip() + "\n"
              "if escaped:\n    raise AssertionError('escaped: ' + '; '.join(escaped))\n\n"
              "def affine_combine(left, right):\n"
              "    (a1, b1), (a2, b2) = left, right\n"
              "    return a1 * a2, a2 * b1 + b2\n")
    return fx.to_bytes(fx.fill(fx.lesson_notebooks()[1], "affine_combine", source))


@needs_sandbox
def test_a_kernel_in_the_sandbox_listens_on_no_port_another_run_could_reach(tmp_path, course):
    """On localhost, a kernel running beside it could subscribe to a kernel's outputs (its
    learner's code comes with them): in the sandbox the kernel's sockets are files in its own
    working folder, which every other run's sandbox hides (what still listens on a port is
    ipykernel's pipe for forked processes' output, which takes only messages carrying its own
    secret and sends nothing)."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in ("a_sockets.ipynb", "b_sockets.ipynb"):
        (folder / name).write_bytes(_attack(KERNEL_SOCKETS))
    report = grading.grade(folder, release=course, sandbox="on", jobs=2, time_limit=120,
                           progress=False)
    for _sub, result in report.rows:
        affine = next(e for e in result.exercises if e.name == "affine_combine")
        assert affine.status == "passed", affine.message


def _endless(needle: str) -> bytes:
    """A submission that starts ``sleep``-like process named ``needle`` and loops forever."""
    source = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', "
              f"{needle!r}])\n"
              "while True:\n    time.sleep(0.05)\n")
    return fx.to_bytes(fx.fill(fx.lesson_notebooks()[1], "affine_combine", source))


@needs_linux
def test_an_interrupt_ends_the_runs_in_flight_and_starts_no_other(tmp_path, course, runs):
    """Ctrl-C while submissions run in threads: the runs in flight are ended at once (not at
    their time limit), the ones waiting never start, and the interrupt is raised."""
    jobs = 2 if SANDBOX[0] else 1
    needles = [f"minirec-endless-{k}-{uuid.uuid4().hex[:8]}" for k in range(jobs + 1)]
    folder = tmp_path / "submissions"
    folder.mkdir()
    for k, needle in enumerate(needles):
        (folder / f"{k}.ipynb").write_bytes(_endless(needle))

    def interrupt_when_running():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(
                fx.processes_running(n) for n in needles[:jobs]):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt_when_running, daemon=True)
    start = time.monotonic()
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            grading.grade(folder, release=course, time_limit=300, jobs=jobs, progress=False)
        elapsed = time.monotonic() - start
        watcher.join(5)
        time.sleep(0.5)
        assert [fx.processes_running(n) for n in needles] == [[]] * len(needles)
    finally:
        for needle in needles:
            for pid in fx.processes_running(needle):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    assert elapsed < 150  # far below the time limit of 300 s: the runs were ended
    assert runs.started == jobs  # the submission waiting for a thread never started
