"""``minirec grade``'s isolation (issue 12, items 3 and 4): every attack a hostile submission
made is a test here - an attack notebook, built below, and the row and file-system state
expected after grading it.

An attack lives in the submission's exercise cell (the only cell of a submission the grader
runs): it tries what it tries, raises ``AssertionError("escaped: ...")`` if anything worked,
and then defines a right ``affine_combine``; so the row's ``affine_combine`` is ``passed``
exactly when the isolation held, and the message says what escaped otherwise. Kernels import
a copy of minirec laid out like the repository (``pyproject.toml``, ``lessons/``,
``solutions/`` and ``exercises/`` beside the package), which the grader guards.

The sandbox tests need Linux user namespaces, the cgroup tests a cgroup the grader may create
(root, or a delegated cgroup); each skips with the reason where that is missing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
import uuid
from pathlib import Path

import nbformat
import pytest

from minirec import cli, grading
from minirec.grading import _cgroup, _isolation, _kernel, _processes

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.fixtures import grading as fx
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from fixtures import grading as fx

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LINUX = sys.platform.startswith("linux") and Path("/proc/self/stat").exists()
SANDBOX = grading.sandbox_available() if LINUX else (False, "not Linux")
needs_sandbox = pytest.mark.skipif(not SANDBOX[0], reason=f"no sandbox here: {SANDBOX[1]}")
needs_linux = pytest.mark.skipif(not LINUX, reason="needs Linux (/proc)")


def _cgroup_support() -> tuple[bool, bool]:
    """(a run's cgroup can be made here, it can limit memory)."""
    if not LINUX:
        return False, False
    cgroup = _cgroup.RunCgroup.create(f"minirec-test-{uuid.uuid4().hex[:8]}", 2**30)
    if cgroup is None:
        return False, False
    cgroup.remove()
    return True, cgroup.memory is not None


CGROUP, CGROUP_MEMORY = _cgroup_support()
needs_cgroup = pytest.mark.skipif(not CGROUP, reason="cannot make a cgroup here (needs root or a "
                                  "delegated cgroup v2)")

RIGHT_ANSWER = (
    "def affine_combine(left, right):\n"
    "    (a1, b1), (a2, b2) = left, right\n"
    "    return a1 * a2, a2 * b1 + b2\n"
)


def attack(body: str, **values) -> str:
    """An exercise cell that runs ``body`` (which appends what worked to ``escaped``; the
    ``values`` are its constants), raises if anything did, then answers right."""
    constants = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    return ("import os, sys, json, subprocess\n" + constants + "escaped = []\n"
            + textwrap.dedent(body).strip() + "\n"
            "if escaped:\n"
            "    raise AssertionError('escaped: ' + '; '.join(map(str, escaped)))\n\n"
            + RIGHT_ANSWER)


def submission(source: str) -> bytes:
    """The exercise notebook with ``source`` as its ``affine_combine`` exercise cell."""
    _solution, exercise = fx.lesson_notebooks()
    return fx.to_bytes(fx.fill(exercise, "affine_combine", source))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of minirec laid out like the repository, that kernels import (``PYTHONPATH``)
    and the grader guards."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "minirec", root / "minirec", symlinks=False)
    (root / "pyproject.toml").write_text("[project]\nname = 'minirec'\n")
    solution, exercise = fx.lesson_notebooks()
    for folder, name, data in [("lessons", "00_grading.py", fx.LESSON.encode()),
                               ("solutions", "00_grading.ipynb", fx.to_bytes(solution)),
                               ("exercises", "00_grading.ipynb", fx.to_bytes(exercise))]:
        (root / folder).mkdir()
        (root / folder / name).write_bytes(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(root))
        mp.setattr(_isolation, "PACKAGE_DIR", root / "minirec")
        yield types.SimpleNamespace(root=root, package=root / "minirec",
                                    release=root / "exercises" / "00_grading.ipynb")


def grade(folder: Path, repo, **options) -> dict[str, object]:
    """Grade ``folder`` against the fixture's release; the rows by submission name."""
    options = {"time_limit": 120, "progress": False, **options}
    report = grading.grade(folder, release=repo.release, **options)
    return {sub.name: result for sub, result in report.rows}


def exercise(result, name: str = "affine_combine"):
    return next(e for e in result.exercises if e.name == name)


def solved() -> bytes:
    return fx.to_bytes(fx.solved_exercise())


# --------------------------------------------------------------------------------------------
# Item 3: nothing writable outside the working folder
# --------------------------------------------------------------------------------------------

WRITE_ATTACKS = """
def tried(what, action):
    try:
        action()
    except OSError:
        return
    escaped.append(what)

def create(path):
    with open(path, "w") as f:
        f.write("pwned")

tried("created /dev/minirec_pwned", lambda: create("/dev/minirec_pwned"))
for device in ("/dev/loop0", "/dev/kmsg", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger",
               "/sys/kernel/mm/transparent_hugepage/enabled"):
    if os.path.exists(device):
        tried("opened " + device + " for writing",
              lambda d=device: os.close(os.open(d, os.O_WRONLY)))
for hierarchy in ["/sys/fs/cgroup"] + [e.path for e in os.scandir("/sys/fs/cgroup")
                                       if e.is_dir() and not e.is_symlink()]:
    folder = os.path.join(hierarchy, CGROUP_NAME)
    tried("made the cgroup " + folder, lambda f=folder: (os.mkdir(f), os.rmdir(f)))
tried("wrote " + OUTSIDE, lambda: create(OUTSIDE))
create("/dev/shm/" + SHM_NAME)  # allowed: a private tmpfs, gone with the run
extra = sorted(set(os.listdir("/dev")) - set(MINIMAL_DEV))
if extra:
    escaped.append("/dev holds " + ", ".join(extra))
remount = subprocess.run(["mount", "-o", "remount,rw", "/"], capture_output=True)
if remount.returncode == 0:
    escaped.append("remounted / writable")
"""


@needs_sandbox
def test_nothing_outside_the_working_folder_is_writable(tmp_path, repo):
    """/dev is minimal and read-only, /sys (its cgroups) and /proc (/proc/sys) are read-only:
    the device, the cgroups and the files of the issue's attack are not made."""
    outside, token = tmp_path / "outside.txt", uuid.uuid4().hex[:10]
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "a_writer.ipynb").write_bytes(submission(attack(
        WRITE_ATTACKS, CGROUP_NAME=f"minirec-pwned-{token}", OUTSIDE=str(outside),
        SHM_NAME=f"minirec-{token}",
        MINIMAL_DEV=["null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout",
                     "stderr", "shm"])))
    (folder / "b_solved.ipynb").write_bytes(solved())
    before = sorted(os.listdir("/dev"))

    rows = grade(folder, repo, sandbox="on")

    writer = rows["a_writer.ipynb"]
    assert writer.status == "ran", writer.detail
    assert exercise(writer).status == "passed", exercise(writer).message
    assert rows["b_solved.ipynb"].passed == 2
    assert sorted(os.listdir("/dev")) == before and not Path("/dev/minirec_pwned").exists()
    assert not Path(f"/dev/shm/minirec-{token}").exists() and not outside.exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"**/minirec-pwned-{token}"))


READ_ATTACKS = """
def visible(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []

for label, folder in FOLDERS.items():
    if visible(folder):
        escaped.append(f"read {label} ({len(visible(folder))} entries)")
session = os.path.dirname(os.path.dirname(os.getcwd()))
others = [n for n in visible(session) if n != os.path.basename(os.path.dirname(os.getcwd()))]
if others:
    escaped.append("saw other runs: " + ", ".join(others))
if SECRET in os.environ or os.environ.get("HOME") != os.getcwd():
    escaped.append("the grader's environment")
for pid in [e.name for e in os.scandir("/proc") if e.name.isdigit()]:
    try:
        environ = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        continue
    if SECRET.encode() in environ:
        escaped.append(f"the grader's environment in /proc/{pid}/environ")
"""


@needs_sandbox
def test_other_submissions_solutions_and_the_graders_environment_are_hidden(
        tmp_path, repo, monkeypatch):
    """A submission reads no other submission, no solution or lesson, no other run, no
    connection file of another kernel, and none of the grader's environment variables."""
    secret = f"MINIREC_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(secret, "the instructor's token")
    runtime = tmp_path / "jupyter-runtime"
    runtime.mkdir()
    (runtime / "kernel-0000.json").write_text('{"key": "another kernel\'s key"}')
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    folder = tmp_path / "submissions"
    (folder / "dana").mkdir(parents=True)
    grades = tmp_path / "grades.csv"
    grades.write_text("submission,score\nearlier,4\n")
    folders = {"the submissions": str(folder), "the solutions": str(repo.root / "solutions"),
               "the lessons": str(repo.root / "lessons"),
               "minirec's solutions": str(ROOT / "solutions"),
               "minirec's lessons": str(ROOT / "lessons"),
               "Jupyter's runtime folder": str(runtime)}
    reader = submission(attack(READ_ATTACKS, FOLDERS=folders, SECRET=secret))
    (folder / "a_reader.ipynb").write_bytes(reader)
    (folder / "dana" / "lesson.ipynb").write_bytes(solved())
    (folder / "z_reader.ipynb").write_bytes(reader)  # after others: their runs' folders exist

    rows = grade(folder, repo, sandbox="on", exclude=[grades])

    for name in ("a_reader.ipynb", "z_reader.ipynb"):
        assert exercise(rows[name]).status == "passed", exercise(rows[name]).message
    assert rows["dana"].passed == 2


@pytest.mark.parametrize("mode", [pytest.param("on", marks=needs_sandbox), "off"])
def test_a_kernel_gets_a_minimal_environment(tmp_path, repo, monkeypatch, mode):
    secret = f"MINIREC_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(secret, "the instructor's token")
    body = ("if SECRET in os.environ or os.environ.get('HOME') != os.getcwd():\n"
            "    escaped.append(sorted(os.environ))\n")
    (tmp_path / "env.ipynb").write_bytes(submission(attack(body, SECRET=secret)))
    rows = grade(tmp_path, repo, sandbox=mode)
    assert exercise(rows["env.ipynb"]).status == "passed", exercise(rows["env.ipynb"]).message


def test_grading_env_keeps_only_what_a_kernel_needs(tmp_path):
    source = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "PYTHONPATH": "/site",
              "OMP_NUM_THREADS": "1", "AWS_SECRET_ACCESS_KEY": "x", "GITHUB_TOKEN": "y",
              "HOME": "/home/instructor", "SSH_AUTH_SOCK": "/tmp/agent", "JUPYTER_TOKEN": "z"}
    env = _isolation.grading_env(tmp_path, "marker", source)
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "PYTHONPATH": "/site",
                   "OMP_NUM_THREADS": "1", "HOME": str(tmp_path),
                   "TMPDIR": str(tmp_path / ".tmp"), "IPYTHONDIR": str(tmp_path / ".ipython"),
                   "TQDM_DISABLE": "1", "PYTHONNOUSERSITE": "1", "MINIREC_GRADING_RUN": "marker"}
    assert (tmp_path / ".tmp").is_dir()


def test_what_is_hidden_and_what_is_kept(tmp_path, repo):
    submissions, session, feedback = (tmp_path / n for n in ("subs", "session", "feedback"))
    for folder in (submissions, session, feedback):
        folder.mkdir()
    hidden = _isolation.paths_to_hide(submissions, [feedback, tmp_path / "absent.csv"], session,
                                      repo.package)
    for path in (submissions, session, feedback, repo.root / "lessons", repo.root / "solutions"):
        assert path.resolve() in hidden
    assert tmp_path / "absent.csv" not in hidden and repo.package not in hidden
    assert repo.root / "exercises" not in hidden  # the released notebooks are no secret
    kept = _isolation.paths_to_keep(repo.package)
    assert repo.package.resolve() in kept and repo.root.resolve() in kept  # PYTHONPATH
    assert Path(sys.executable).parent in kept


# --------------------------------------------------------------------------------------------
# Item 3: a memory limit per submission
# --------------------------------------------------------------------------------------------

HOG = ("import numpy as np\n"
       "hog = np.ones(2**28)  # 2 GiB, every page touched\n" + RIGHT_ANSWER)


@pytest.mark.parametrize("limit", [
    pytest.param("cgroup", marks=pytest.mark.skipif(
        not CGROUP_MEMORY, reason="no memory cgroup the grader may make here")),
    pytest.param("rlimit", marks=needs_linux),
])
def test_a_submission_over_its_memory_limit_is_out_of_memory(tmp_path, repo, monkeypatch, limit):
    if limit == "rlimit":  # where no cgroup can be made: RLIMIT_DATA of each process
        monkeypatch.setattr(_cgroup.RunCgroup, "create", classmethod(lambda cls, *a: None))
    (tmp_path / "a_hog.ipynb").write_bytes(submission(HOG))
    (tmp_path / "b_solved.ipynb").write_bytes(solved())
    rows = grade(tmp_path, repo, memory=1 * 2**30)
    hog = rows["a_hog.ipynb"]
    assert hog.status == "out of memory"
    assert "used more than its memory limit of 1 GiB (--memory)" in (
        hog.detail + exercise(hog).message)
    assert exercise(hog).status in ("error", "not run")
    assert rows["b_solved.ipynb"].status == "ran" and rows["b_solved.ipynb"].passed == 2


def test_memory_option(tmp_path, repo, capsys):
    assert grading.parse_bytes("4G") == 4 * 2**30 and grading.parse_bytes("512M") == 2**29
    assert grading.parse_bytes("1.5GiB") == 3 * 2**29 and grading.parse_bytes("none") is None
    for wrong in ("lots", "12Q", "1K"):
        with pytest.raises(ValueError):
            grading.parse_bytes(wrong)
    status = cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"),
                       "--memory", "lots"])
    assert status == 2 and "--memory: not an amount of memory: 'lots'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Item 3: error outputs are capped like other outputs
# --------------------------------------------------------------------------------------------

def test_error_outputs_are_capped(tmp_path):
    """Three exceptions with an 8 MB message, and one cell that sends its traceback fifty
    times, keep well under a megabyte in the grader; the errors and where they happened are
    kept."""
    solution, _exercise = fx.lesson_notebooks()
    nb = solution
    for k in range(3):
        nb = fx.with_code_cell(nb, f"raise ValueError('x' * 8_000_000)  # {k}", after=1 + k)
    nb = fx.with_code_cell(nb, "try:\n    raise KeyError('y' * 8_000_000)\nexcept KeyError:\n"
                           "    for _ in range(50):\n        get_ipython().showtraceback()\n",
                           after=4)
    outcome = grading.run_notebook(nb, cwd=tmp_path, time_limit=120)
    errors = [o for c in outcome.nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert [e["ename"] for e in errors] == ["ValueError"] * 3 + ["KeyError"]
    assert all(len(e["evalue"]) <= _kernel.MAX_ERROR_VALUE_CHARS for e in errors)
    assert any("Cell In[" in ANSI.sub("", line) for line in errors[0]["traceback"])
    assert len(nbformat.writes(outcome.nb)) < 1_000_000
    assert outcome.output_truncated  # the 49 repeated tracebacks were dropped


# --------------------------------------------------------------------------------------------
# Item 4: without the sandbox, a run does not outlive its row
# --------------------------------------------------------------------------------------------

# A daemon started from the exercise cell: a new session, an empty environment (no marker),
# double-forked (its parent exits: it is an orphan). It waits for WAIT (its kernel gone, or
# another run's kernel started), then appends a check that passes everything to TARGET.
DAEMON = r'''
import os, sys, time
kernel, marker, target, wait = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if os.fork():
    os._exit(0)

def another_run():
    for entry in os.scandir("/proc"):
        try:
            environ = open(f"/proc/{entry.name}/environ", "rb").read()
        except OSError:
            continue
        if b"MINIREC_GRADING_RUN=" in environ and marker.encode() not in environ:
            return True
    return False

deadline = time.time() + 120
while time.time() < deadline:
    if (wait == "kernel gone" and not os.path.exists(f"/proc/{kernel}")) or (
            wait == "another run" and another_run()):
        break
    time.sleep(0.05)
time.sleep(0.5)
with open(target, "a") as f:
    f.write("\ndef check_affine_combine(fn):\n    print('passed')\n")
'''

SABOTEUR = """
needle = NEEDLE
subprocess.Popen([sys.executable, "-c", DAEMON, str(os.getpid()),
                  os.environ["MINIREC_GRADING_RUN"], TARGET, WAIT, needle],
                 env={}, start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait()
"""


def saboteur(target: Path, wait: str, needle: str) -> bytes:
    return submission(attack(SABOTEUR, DAEMON=DAEMON, TARGET=str(target), WAIT=wait,
                             NEEDLE=needle))


def _kill(pids) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@needs_linux
@pytest.mark.parametrize("tracking", [pytest.param("cgroup", marks=needs_cgroup), "proc"])
def test_a_detached_process_dies_with_its_row(tmp_path, repo, monkeypatch, tracking):
    """The issue's sabotage, with ``--sandbox off``: a daemon (setsid, double fork, empty
    environment) waits for its row to end, then edits minirec/check/scan.py. It is ended with
    its row - tracked by the run's cgroup, or where there is none by the grader as subreaper
    and /proc - so the next, honest, submission is graded on an untouched package."""
    if tracking == "proc":
        monkeypatch.setattr(_cgroup.RunCgroup, "create", classmethod(lambda cls, *a: None))
    target = repo.package / "check" / "scan.py"
    original = target.read_bytes()
    needle = f"minirec-daemon-{uuid.uuid4().hex[:10]}"
    (tmp_path / "a_saboteur.ipynb").write_bytes(saboteur(target, "kernel gone", needle))
    (tmp_path / "b_honest.ipynb").write_bytes(solved())
    try:
        rows = grade(tmp_path, repo, sandbox="off")
        time.sleep(1.0)  # what the daemon would have needed to write
        assert fx.processes_running(needle) == []
    finally:
        _kill(fx.processes_running(needle))
        target.write_bytes(original)
    assert rows["a_saboteur.ipynb"].status == "ran", rows["a_saboteur.ipynb"].detail
    honest = rows["b_honest.ipynb"]
    assert honest.status == "ran" and honest.passed == 2 and honest.detail == ""
    assert target.read_bytes() == original


@needs_linux
def test_a_change_by_a_process_that_outlived_its_row_is_blamed_on_it(tmp_path, repo,
                                                                      monkeypatch):
    """Where a process escapes being ended (simulated: the grader is kept from ending the
    first run's processes) and edits minirec while the next submission runs, the next
    submission is graded again on the restored package and keeps its score; the row whose
    process outlived it is blamed, ``tampered``."""
    real_end = _isolation.IsolatedRun.end
    spared = []

    def end_all_but_the_first(run):
        if not spared or spared[0] is run:
            spared[:1] = [run]
            return run.processes()  # "could not be ended"
        return real_end(run)

    monkeypatch.setattr(_isolation.IsolatedRun, "end", end_all_but_the_first)
    target = repo.package / "check" / "scan.py"
    original = target.read_bytes()
    needle = f"minirec-daemon-{uuid.uuid4().hex[:10]}"
    (tmp_path / "a_saboteur.ipynb").write_bytes(saboteur(target, "another run", needle))
    (tmp_path / "b_victim.ipynb").write_bytes(solved())
    try:
        rows = grade(tmp_path, repo, sandbox="off")
    finally:
        _kill(fx.processes_running(needle))
        if spared:
            real_end(spared[0])
            if spared[0].cgroup is not None:
                spared[0].cgroup.remove()
        target.write_bytes(original)
    victim, saboteur_row = rows["b_victim.ipynb"], rows["a_saboteur.ipynb"]
    assert victim.status == "ran" and victim.passed == 2
    assert victim.detail.startswith("graded again: minirec's files changed during its first "
                                    "run, not by it (changed minirec's files "
                                    "(minirec/check/scan.py); restored)")
    assert saboteur_row.status == "tampered"
    assert saboteur_row.detail.startswith(
        "a process it left running changed minirec's files (minirec/check/scan.py) during the "
        "run of b_victim.ipynb; restored; left ")


@needs_linux
def test_run_processes_finds_what_detached_and_cleared_its_environment():
    """Without a cgroup: a process that started a new session, cleared its environment and
    was orphaned (double fork) is found - the grader is its subreaper - and ended."""
    marker, needle = uuid.uuid4().hex, f"minirec-orphan-{uuid.uuid4().hex[:10]}"
    since = _processes.clock_ticks_now() - 1
    assert _processes.Subreaper.acquire()
    try:
        code = ("import os, sys\nif os.fork():\n    os._exit(0)\nos.setsid()\n"
                "os.execve(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)',"
                " sys.argv[1]], {})\n")
        subprocess.run([sys.executable, "-c", code, needle], env={}, check=True)
        deadline = time.monotonic() + 10
        while not fx.processes_running(needle) and time.monotonic() < deadline:
            time.sleep(0.02)
        [orphan] = fx.processes_running(needle)
        assert _processes.processes()[orphan].ppid == os.getpid()  # adopted by the grader
        assert orphan in _processes.run_processes(marker, since)
        assert _processes.end_processes(lambda: _processes.run_processes(marker, since)) == []
        assert fx.processes_running(needle) == []
    finally:
        _kill(fx.processes_running(needle))
        _processes.Subreaper.release()


@needs_cgroup
def test_a_runs_cgroup_holds_its_processes_and_kills_them_together(tmp_path):
    cgroup = _cgroup.RunCgroup.create(f"minirec-test-{uuid.uuid4().hex[:8]}", 2**30)
    needle = f"minirec-in-cgroup-{uuid.uuid4().hex[:10]}"
    limits = [sys.executable, "-I", str(Path(_isolation.__file__).with_name("_limits.py"))]
    for folder in cgroup.folders:
        limits += ["--cgroup", str(folder)]
    try:
        code = ("import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                "'import time; time.sleep(60)', sys.argv[1]], start_new_session=True, env={})\n")
        subprocess.run([*limits, "--", sys.executable, "-c", code, needle], check=True)
        [pid] = fx.processes_running(needle)
        assert pid in cgroup.pids()
        assert cgroup.kill() == set() and fx.processes_running(needle) == []
    finally:
        _kill(fx.processes_running(needle))
        cgroup.remove()
    assert not cgroup.tracking.exists()


# --------------------------------------------------------------------------------------------
# The CSV, through the command line
# --------------------------------------------------------------------------------------------

@needs_linux
def test_out_of_memory_row_in_the_csv(tmp_path, repo):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "hog.ipynb").write_bytes(submission(HOG))
    out = tmp_path / "grades.csv"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli.main(["grade", str(folder), "--out", str(out), "--release",
                           str(repo.release), "--memory", "1G", "--no-progress"])
    assert status == 0
    with out.open(newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["status"] == "out of memory" and row["score"] == "0"
    assert "out of memory" in buffer.getvalue()
