"""Isolation: what keeps a submission from changing minirec, another submission's result or the
grader (the guarantees and their limits are the threat model in :mod:`minirec.grading`).

- the kernel's environment (:func:`kernel_env`) and, after a run, killing what it left running
  (:func:`kill_marked`);
- the sandbox: the command prefix that starts a kernel in :mod:`minirec.grading._sandbox`
  (Linux user, mount and PID namespaces; :func:`sandbox_prefix`, :func:`run_prefix`) and the
  probe that says whether it works here (:func:`sandbox_available`);
- the package guard: a copy of minirec's files compared before and after each run
  (:class:`PackageGuard`, :func:`guard_before_run`, :func:`guard_after_run`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # minirec/: the folder the package guard keeps
_RUN_MARKER = "MINIREC_GRADING_RUN"


# --------------------------------------------------------------------------------------------
# The kernel's environment, and what a run leaves running
# --------------------------------------------------------------------------------------------

def kernel_env(workdir: Path, marker: str | None = None) -> dict:
    """The kernel's environment: no progress bars, no user site, no startup scripts from
    ``~/.ipython``, temporary files in its working folder, and the run's marker (for
    :func:`kill_marked`)."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONNOUSERSITE": "1",
           "IPYTHONDIR": str(workdir / ".ipython"), "TMPDIR": str(workdir / ".tmp")}
    (workdir / ".tmp").mkdir(exist_ok=True)
    if marker:
        env[_RUN_MARKER] = marker
    return env


def kill_marked(marker: str) -> int:
    """SIGKILL every process whose environment carries ``marker`` (stray children of a run)."""
    needle = f"{_RUN_MARKER}={marker}".encode()
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and int(entry.name) != os.getpid():
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------

_SANDBOX_PROBE = """
import os, sys
open('written', 'w').write('ok')
for target in sys.argv[1:]:
    try:
        open(target, 'w').write('escaped')
    except OSError:
        continue
    sys.exit('wrote ' + target)
if os.system('mount -o remount,rw / 2>/dev/null') == 0:
    sys.exit('could remount / writable')
print('sandboxed')
"""


def sandbox_prefix(workdir: Path, overlays: Iterable[tuple[Path, Path, Path]] = ()) -> list[str]:
    """The command prefix that starts a process in :mod:`minirec.grading._sandbox`."""
    script = Path(__file__).with_name("_sandbox.py")
    prefix = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
              "--kill-child", "--mount-proc", "--", sys.executable, "-I", str(script),
              "--writable", str(workdir)]
    for folder, upper, work in overlays:
        prefix += ["--overlay", str(folder), str(upper), str(work)]
    return prefix + ["--"]


def run_prefix(run_root: Path, workdir: Path, guard: PackageGuard, use_sandbox: bool) -> list[str]:
    """The command a run's kernel is started behind: the sandbox, with an overlay on minirec's
    folder whose writes land in ``run_root`` (thrown away with it); nothing without the
    sandbox."""
    if not use_sandbox:
        return []
    upper, ovwork = run_root / "overlay-upper", run_root / "overlay-work"
    upper.mkdir()
    ovwork.mkdir()
    return sandbox_prefix(workdir, [(guard.folder, upper, ovwork)])


_SANDBOX_CHECKED: dict[str, tuple[bool, str]] = {}


def sandbox_available() -> tuple[bool, str]:
    """Whether the sandbox works on this machine (measured once: a probe must write its own
    folder, fail to write outside it and fail to remount ``/`` writable), and why not."""
    if "result" in _SANDBOX_CHECKED:
        return _SANDBOX_CHECKED["result"]
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None \
            or shutil.which("mount") is None:
        result = (False, "needs Linux with unshare and mount (util-linux)")
    else:
        with tempfile.TemporaryDirectory(prefix="minirec-probe-") as scratch:
            work, outside = Path(scratch, "work"), Path(scratch, "outside")
            upper, ovwork, lower = (Path(scratch, n) for n in ("upper", "ovwork", "lower"))
            for p in (work, upper, ovwork, lower):
                p.mkdir()
            cmd = [*sandbox_prefix(work, [(lower, upper, ovwork)]), sys.executable, "-I", "-c",
                   _SANDBOX_PROBE, str(outside / "x")]
            try:
                run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                result = (False, f"the probe could not run: {exc}")
            else:
                ok = (run.returncode == 0 and "sandboxed" in run.stdout
                      and (work / "written").is_file() and not (outside / "x").exists())
                reason = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
                result = (ok, "" if ok else f"the probe failed: {reason[0]}")
    _SANDBOX_CHECKED["result"] = result
    return result


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


def guard_before_run(guard: PackageGuard, use_sandbox: bool, external: list[str]) -> None:
    """Before a run: minirec's folder must be as copied. In the sandbox nothing a kernel runs
    can write it, so a change comes from outside the grader (someone editing minirec): it is
    kept and reported. Without the sandbox it may be a late write of the previous submission's
    processes: it is undone."""
    changed = guard.changes()
    if not changed:
        return
    if use_sandbox:
        external.extend(p for p in changed if p not in external)
        guard.accept(changed)
    else:
        guard.restore(changed)


def guard_after_run(guard: PackageGuard, use_sandbox: bool, external: list[str]) -> str | None:
    """After a run: what the run changed in minirec's folder, said in one line, when it changed
    more than Python's caches (the submission is then ``tampered``); None otherwise. In the
    sandbox nothing a kernel runs can write the folder: a change is someone else's, kept and
    reported (``external``). Without the sandbox every change is undone."""
    changed = guard.changes()
    if changed and use_sandbox:  # read-only to the kernel: someone else changed them
        external.extend(p for p in changed if p not in external)
        guard.accept(changed)
    elif changed:
        guard.restore(changed)
        if not guard.only_caches(changed):
            shown = ", ".join(f"minirec/{p}" for p in changed[:3]) + (" ..." if len(changed) > 3
                                                                      else "")
            return f"changed minirec's files ({shown}); restored"
    return None
