"""Isolation: what keeps a submission from changing minirec, another submission's result or the
grader, and from reading what it should not (the guarantees and their limits are the threat
model in :mod:`minirec.grading`).

- :class:`Isolation`: how every run of a grading session is isolated (the sandbox or not, the
  memory limit, the paths hidden from kernels) and the package guard; it makes one
  :class:`IsolatedRun` per run, keeps the runs in flight (so that :meth:`Isolation.stop` can
  end them) and holds the lock under which runs in parallel threads share it;
- :class:`IsolatedRun`: one run's state - its folders, its kernel's minimal environment
  (:func:`grading_env`), the command its kernel starts behind (:mod:`minirec.grading._limits`:
  its cgroup and limits; :mod:`minirec.grading._sandbox`), its kernel's sockets, its cgroup
  (:mod:`minirec.grading._cgroup`) and its processes (:mod:`minirec.grading._processes`), all
  ended before the run's row is written; nothing of it is global, so runs may be concurrent;
- the sandbox's command prefix (:func:`sandbox_prefix`) and the probe that says whether it works
  here (:func:`sandbox_available`);
- the package guard: a copy of minirec's files compared before and after each run
  (:class:`PackageGuard`, :func:`guard_before_run`, :func:`guard_after_run`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._cgroup import RunCgroup
from ._processes import MARKER_VARIABLE, Subreaper, clock_ticks_now, end_processes, run_processes
from ._statuses import TAMPERED

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # minirec/: the folder the package guard keeps
_INSTALLED = Path(__file__).resolve().parents[1]  # this minirec (PACKAGE_DIR may be a copy)
_LIMITS = Path(__file__).with_name("_limits.py")
_SANDBOX = Path(__file__).with_name("_sandbox.py")

GiB = 2**30
#: The memory limit of one submission's run (``--memory``). Measured in a run's cgroup, the
#: solution notebooks of the lessons peaked between 290 and 660 MiB (lesson 13 the most), in
#: the sandbox and without it; every one also ran under ``RLIMIT_DATA`` at this limit.
DEFAULT_MEMORY_BYTES = 4 * GiB


# --------------------------------------------------------------------------------------------
# The kernel's environment
# --------------------------------------------------------------------------------------------

#: What a graded kernel keeps of the grader's environment: where programs and libraries are,
#: the language, and thread counts; no other variable (tokens, paths of the instructor's files).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
PASSED_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH",
                    *THREAD_VARIABLES)


def kernel_env(workdir: Path) -> dict:
    """The environment of a kernel ``minirec check`` starts for a learner: the learner's own,
    with no progress bars, no user site, no startup scripts from ``~/.ipython`` and temporary
    files in ``workdir``."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONNOUSERSITE": "1",
           "IPYTHONDIR": str(workdir / ".ipython"), "TMPDIR": str(workdir / ".tmp")}
    (workdir / ".tmp").mkdir(exist_ok=True)
    return env


def grading_env(workdir: Path, marker: str, source: dict | None = None,
                threads: int | None = None) -> dict:
    """The environment of a graded kernel: only :data:`PASSED_VARIABLES` (and ``LC_*``) of
    ``source`` (the grader's environment), ``HOME``, ``TMPDIR`` and ``IPYTHONDIR`` in the working
    folder, no progress bars, no user site, and the run's marker (:mod:`._processes`).
    ``threads``: the size of the kernel's thread pools (:data:`THREAD_VARIABLES`) where
    ``source`` sets none, for runs that share the cores."""
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k in PASSED_VARIABLES or k.startswith("LC_")}
    if threads is not None:
        for name in THREAD_VARIABLES:
            env.setdefault(name, str(threads))
    env.setdefault("PATH", os.defpath)
    env.update(HOME=str(workdir), TMPDIR=str(workdir / ".tmp"),
               IPYTHONDIR=str(workdir / ".ipython"), TQDM_DISABLE="1", PYTHONNOUSERSITE="1")
    env[MARKER_VARIABLE] = marker
    (workdir / ".tmp").mkdir(exist_ok=True)
    return env


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int | None:
    """``"4G"``, ``"512M"``, ``"1.5GiB"``, ``"3000000000"`` -> bytes; ``"none"`` -> None."""
    if text.strip().lower() in ("none", "off"):
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not an amount of memory: {text!r} (e.g. 4G, 512M, none)")
    value = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if value < 64 * _UNITS["M"]:
        raise ValueError(f"{text!r} is less than 64M: no kernel starts in it")
    return value


def format_bytes(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.3g} {unit}iB"
    return f"{n} B"


_OUT_OF_MEMORY_WORDS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory",
                        "out of memory")


def _ran_out_of_memory(nb, stderr_path: Path | None) -> bool:
    """Whether the run says it could not allocate (where only an rlimit limits it)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == "MemoryError":
                return True
    if stderr_path is not None:
        with contextlib.suppress(OSError):
            tail = Path(stderr_path).read_bytes()[-20_000:].decode(errors="replace")
            return any(word in tail for word in _OUT_OF_MEMORY_WORDS)
    return False


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------

_SANDBOX_PROBE = """
import os, sys
outside, hidden = sys.argv[1], sys.argv[2]
open('written', 'w').write('ok')
for target, flags in ((outside, os.O_CREAT), ('/dev/minirec-probe', os.O_CREAT),
                      ('/proc/sys/vm/drop_caches', 0), ('/proc/sysrq-trigger', 0)):
    try:
        os.close(os.open(target, os.O_WRONLY | flags, 0o600))
    except OSError:
        continue
    sys.exit('could open ' + target + ' for writing')
if os.path.exists('/dev/kmsg') or os.listdir(hidden):
    sys.exit('saw /dev/kmsg or the hidden folder')
if os.system('mount -o remount,rw / 2>/dev/null') == 0:
    sys.exit('could remount / writable')
if os.system('umount ' + hidden + ' 2>/dev/null') == 0:
    sys.exit('could unmount a hiding mount')
print('sandboxed')
"""


def sandbox_prefix(workdir: Path, overlays: Iterable[tuple[Path, Path, Path]] = (),
                   hidden: Iterable[Path] = (), kept: Iterable[Path] = ()) -> list[str]:
    """The command prefix that starts a process in :mod:`minirec.grading._sandbox`."""
    prefix = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
              "--kill-child", "--mount-proc", "--", sys.executable, "-I", str(_SANDBOX),
              "--writable", str(workdir)]
    for folder, upper, work in overlays:
        prefix += ["--overlay", str(folder), str(upper), str(work)]
    for path in hidden:
        prefix += ["--hide", str(path)]
    for path in kept:
        prefix += ["--keep", str(path)]
    return prefix + ["--"]


_SANDBOX_CHECKED: dict[str, tuple[bool, str]] = {}  # the machine's answer, measured once


def sandbox_available() -> tuple[bool, str]:
    """Whether the sandbox works on this machine (measured once: a probe must write its own
    folder, and fail to write outside it, to create a device, to open ``/proc/sys`` files for
    writing, to see a hidden folder, to remount ``/`` writable), and why not."""
    if "result" in _SANDBOX_CHECKED:
        return _SANDBOX_CHECKED["result"]
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        result = (False, "needs Linux with unshare (util-linux)")
    else:
        with tempfile.TemporaryDirectory(prefix="minirec-probe-") as scratch:
            result = _probe(Path(scratch))
        with contextlib.suppress(OSError):
            os.unlink("/dev/minirec-probe")  # made only if the sandbox failed
    _SANDBOX_CHECKED["result"] = result
    return result


def _probe(scratch: Path) -> tuple[bool, str]:
    work, outside, hidden = scratch / "work", scratch / "outside", scratch / "hidden"
    upper, ovwork, lower = scratch / "upper", scratch / "ovwork", scratch / "lower"
    for folder in (work, upper, ovwork, lower, hidden):
        folder.mkdir()
    (hidden / "secret").write_text("")
    cmd = [*sandbox_prefix(work, [(lower, upper, ovwork)], [hidden]), sys.executable, "-I",
           "-c", _SANDBOX_PROBE, str(outside / "x"), str(hidden)]
    try:
        run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"the probe could not run: {exc}"
    ok = (run.returncode == 0 and "sandboxed" in run.stdout
          and (work / "written").is_file() and not (outside / "x").exists())
    reason = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
    return ok, "" if ok else f"the probe failed: {reason[0]}"


# --------------------------------------------------------------------------------------------
# What kernels must not see
# --------------------------------------------------------------------------------------------

#: Folders of a minirec checkout that hold the answers (the lessons, their solution notebooks,
#: the website's copies of them, the history).
REPOSITORY_SECRETS = ("lessons", "solutions", "book", ".git")


def paths_to_hide(submissions: Path, others: Iterable[Path], session: Path,
                  package: Path) -> list[Path]:
    """What a sandboxed kernel must not read: the submissions folder, ``others`` (the grades
    file, the feedback folder, ``--hide``), the session's folder (the other runs), the
    repository's :data:`REPOSITORY_SECRETS` beside the package (and beside the installed
    minirec), Jupyter's runtime folder (other kernels' connection files, a server's token) and
    the temporary folder. What the kernel needs in them is bound back (:func:`paths_to_keep`)."""
    from jupyter_core.paths import jupyter_runtime_dir

    candidates = [Path(submissions), *map(Path, others), Path(session),
                  Path(jupyter_runtime_dir()), Path(tempfile.gettempdir())]
    for repository in {Path(package).resolve().parent, _INSTALLED.parent}:
        if (repository / "pyproject.toml").is_file():
            candidates += [repository / name for name in REPOSITORY_SECRETS]
    hidden: list[Path] = []
    for path in candidates:
        path = path.resolve()
        if path.exists() and path not in hidden:
            hidden.append(path)
    return hidden


def paths_to_keep(package: Path) -> list[Path]:
    """The folders a kernel runs from, seen in the sandbox even inside a hidden folder: the
    package, the interpreter's, the ``PYTHONPATH`` entries, the installed minirec."""
    kept = [Path(package), _INSTALLED, Path(sys.prefix), Path(sys.base_prefix),
            Path(sys.executable).parent, Path(sys.executable).resolve().parent]
    kept += [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    found: list[Path] = []
    for path in kept:
        path = path.resolve()
        if path.is_dir() and path not in found:
            found.append(path)
    return found


# --------------------------------------------------------------------------------------------
# One run, and the session's isolation
# --------------------------------------------------------------------------------------------

@dataclass
class IsolatedRun:
    """One submission's run: its folders, its kernel's environment and command prefix, its
    cgroup and memory limit, its processes. Use it as a context manager: entering starts the
    process tracking, :meth:`end` (also on leaving) ends every process of the run."""

    run_root: Path
    workdir: Path
    use_sandbox: bool
    package: Path
    memory_bytes: int | None = DEFAULT_MEMORY_BYTES
    hidden: tuple[Path, ...] = ()
    kept: tuple[Path, ...] = ()
    alone: bool = True  # the grader's only run in flight (see _processes.run_processes)
    threads: int | None = None  # its kernel's thread pools (grading_env), where runs share cores
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    cgroup: RunCgroup | None = field(default=None, init=False)
    started: int = field(default=0, init=False)
    _subreaper: bool = field(default=False, init=False)

    def __enter__(self) -> IsolatedRun:
        self.started = clock_ticks_now() - 1  # start times are whole ticks
        self._subreaper = Subreaper.acquire()
        self.cgroup = RunCgroup.create(f"minirec-run-{self.marker}", self.memory_bytes)
        return self

    def __exit__(self, *exc) -> None:
        self.end()
        if self.cgroup is not None and not self.cgroup.pids():
            self.cgroup.remove()
        if self._subreaper:
            Subreaper.release()
            self._subreaper = False

    @property
    def memory_limited_by(self) -> str | None:
        """``"cgroup"``, ``"rlimit"`` (``RLIMIT_DATA`` of each process) or None."""
        if self.memory_bytes is None:
            return None
        return "cgroup" if self.cgroup is not None and self.cgroup.memory else "rlimit"

    @property
    def connection_file(self) -> Path:
        """The kernel's connection file: in its own folder (the sandbox hides Jupyter's
        runtime folder, where other kernels' files are)."""
        return self.workdir / ".kernel-connection.json"

    @property
    def stderr_path(self) -> Path:
        return self.run_root / "kernel-stderr.log"

    @property
    def ipc_path(self) -> Path | None:
        """In the sandbox, the kernel's sockets: files ``<ipc_path>-N`` in its working folder,
        which the other runs' sandboxes hide, instead of TCP ports on localhost, where a
        kernel running beside it could read its outputs (and its learner's code). None
        without the sandbox (runs are then one at a time) or where the path is too long for
        a Unix socket."""
        path = self.workdir / ".kernel-ipc"
        return path if self.use_sandbox and len(os.fsencode(path)) <= _SOCKET_PATH_MAX else None

    def env(self) -> dict:
        return grading_env(self.workdir, self.marker, threads=self.threads)

    def prefix(self) -> list[str]:
        """The command the kernel starts behind: its cgroup and limits, then the sandbox."""
        limits = []
        for folder in self.cgroup.folders if self.cgroup is not None else []:
            limits += ["--cgroup", str(folder)]
        if self.memory_limited_by == "rlimit":
            limits += ["--rlimit", "DATA", str(self.memory_bytes)]
        prefix = [sys.executable, "-I", str(_LIMITS), *limits, "--"]
        if self.use_sandbox:
            upper, ovwork = self.run_root / "overlay-upper", self.run_root / "overlay-work"
            upper.mkdir(exist_ok=True)
            ovwork.mkdir(exist_ok=True)
            prefix += sandbox_prefix(self.workdir, [(self.package, upper, ovwork)], self.hidden,
                                     self.kept)
        return prefix

    def _found(self) -> list[int]:
        return run_processes(self.marker, self.started, claim_unmarked=self.alone)

    def processes(self) -> list[int]:
        """The pids of the run's processes still there."""
        found = set(self._found())
        return sorted(found | (self.cgroup.pids() if self.cgroup is not None else set()))

    def end(self) -> list[int]:
        """End every process of the run (its cgroup, else what :mod:`._processes` finds);
        return the pids that could not be ended."""
        left = self.cgroup.kill() if self.cgroup is not None else set()
        left |= set(end_processes(self._found))
        return sorted(left)

    def out_of_memory(self, nb) -> bool:
        """Whether the run went over its memory limit (after :meth:`end`)."""
        if self.memory_limited_by == "cgroup":
            return self.cgroup.out_of_memory()
        if self.memory_limited_by == "rlimit":
            return _ran_out_of_memory(nb, self.stderr_path)
        return False

    def memory_note(self) -> str:
        return (f"used more than its memory limit of {format_bytes(self.memory_bytes)} "
                "(--memory)" if self.memory_bytes else "ran out of memory")


_SOCKET_PATH_MAX = 100  # a Unix socket's path (sun_path: 108 bytes), with room for "-N"


class GradingStopped(Exception):
    """A run asked for after :meth:`Isolation.stop`."""


@dataclass
class Isolation:
    """How every run of a grading session is isolated, and what the session learned: the
    sandbox (or not), the memory limit per run, the paths hidden from kernels, the package
    guard, minirec's files changed not by a run (``external``), and the rows whose processes
    could not be ended (``lingering``: suspects of a later change to minirec).

    ``parallel``: runs may be in flight at once (threads; only in the sandbox, where each has
    its own PID namespace and a run cannot change minirec's files: without it, a change could
    not be blamed on one run). The guard and the lists are then used under one lock.
    ``threads``: each kernel's thread pools, so that runs in flight at once do not ask for more
    threads than the cores they share (None: the libraries' own choice)."""

    use_sandbox: bool
    guard: PackageGuard
    memory_bytes: int | None = DEFAULT_MEMORY_BYTES
    hidden: tuple[Path, ...] = ()
    kept: tuple[Path, ...] = ()
    external: list[str] = field(default_factory=list)
    lingering: list = field(default_factory=list)
    parallel: bool = False
    threads: int | None = None
    stopped: bool = field(default=False, init=False)
    _in_flight: list[IsolatedRun] = field(default_factory=list, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.parallel and not self.use_sandbox:
            raise ValueError("runs in parallel need the sandbox: without it a change to "
                             "minirec's files could not be blamed on one run")

    def run(self, run_root: Path, workdir: Path) -> IsolatedRun:
        return IsolatedRun(run_root, workdir, self.use_sandbox, self.guard.folder,
                           self.memory_bytes, tuple(self.hidden), tuple(self.kept),
                           alone=not self.parallel, threads=self.threads)

    @contextlib.contextmanager
    def running(self, run_root: Path, workdir: Path):
        """A run entered (:class:`IsolatedRun`) and listed as in flight until it is left, so
        that :meth:`stop` can end it; raises :class:`GradingStopped` after :meth:`stop`."""
        with self.run(run_root, workdir) as iso:
            with self._lock:
                if self.stopped:
                    raise GradingStopped
                self._in_flight.append(iso)
            try:
                yield iso
            finally:
                with self._lock:
                    self._in_flight = [r for r in self._in_flight if r is not iso]

    def stop(self) -> None:
        """Grading is interrupted: end every run in flight, and start none."""
        with self._lock:
            self.stopped = True
            runs = list(self._in_flight)
        for iso in runs:
            iso.end()

    def before_run(self) -> None:
        """minirec's folder checked (and restored) before a run. Without the sandbox a change
        found now happened while no run was in flight: it is blamed on the latest row whose
        processes could not be ended (:meth:`blame_lingering`), else reported as someone
        else's (``external``)."""
        with self._lock:
            changed = guard_before_run(self.guard, self.use_sandbox, self.external)
            changed = [p for p in changed if "__pycache__" not in Path(p).parts]
            if changed and not self.use_sandbox and not self.blame_lingering(changed):
                self.external.extend(p for p in changed if p not in self.external)

    def after_run(self) -> list[str]:
        """minirec's files changed during a run, restored (:func:`guard_after_run`)."""
        with self._lock:
            return guard_after_run(self.guard, self.use_sandbox, self.external)

    def note_external(self, changed: list[str]) -> None:
        """minirec's files changed by someone else than a run (reported at the end)."""
        with self._lock:
            self.external.extend(p for p in changed if p not in self.external)

    def note_lingering(self, sub, result) -> None:
        """A row whose processes could not be ended: a suspect of a later change."""
        with self._lock:
            self.lingering.append((sub, result))

    def blame_lingering(self, changed: list[str], during: str | None = None) -> bool:
        """Flag the latest row whose processes outlived it ``tampered`` for ``changed``;
        False when there is none."""
        with self._lock:
            if not self.lingering:
                return False
            _sub, result = self.lingering[-1]
        when = f" during the run of {during}" if during else " after its run"
        note = f"a process it left running changed {_shown(changed)}{when}; restored"
        result.status = TAMPERED
        result.detail = note + (f"; {result.detail}" if result.detail else "")
        return True



# --------------------------------------------------------------------------------------------
# The package guard
# --------------------------------------------------------------------------------------------

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


def guard_before_run(guard: PackageGuard, use_sandbox: bool, external: list[str]) -> list[str]:
    """Before a run: minirec's folder must be as copied; return what changed since the last run
    ended. In the sandbox nothing a kernel runs can write it, so a change comes from outside the
    grader (someone editing minirec): it is kept and reported (``external``). Without the sandbox
    every change is undone (:meth:`Isolation.before_run` says whom it blames)."""
    changed = guard.changes()
    if changed and use_sandbox:
        external.extend(p for p in changed if p not in external)
        guard.accept(changed)
    elif changed:
        guard.restore(changed)
    return changed


def guard_after_run(guard: PackageGuard, use_sandbox: bool, external: list[str]) -> list[str]:
    """After a run: what changed in minirec's folder during the run, other than Python's caches
    (undone; see :func:`changed_files_note`); empty when nothing did. In the sandbox nothing a
    kernel runs can write the folder: a change is someone else's, kept and reported
    (``external``), and the list is empty. Without the sandbox every change is undone."""
    changed = guard.changes()
    if changed and use_sandbox:  # read-only to the kernel: someone else changed them
        external.extend(p for p in changed if p not in external)
        guard.accept(changed)
    elif changed:
        guard.restore(changed)
        if not guard.only_caches(changed):
            return [p for p in changed if "__pycache__" not in Path(p).parts]
    return []


def changed_files_note(changed: list[str]) -> str:
    """``changed minirec's files (minirec/a.py, ...); restored``."""
    return f"changed {_shown(changed)}; restored"


def _shown(changed: list[str]) -> str:
    paths = ", ".join(f"minirec/{p}" for p in changed[:3]) + (" ..." if len(changed) > 3 else "")
    return f"minirec's files ({paths})"
