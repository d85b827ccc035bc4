"""A cgroup per run (Linux), where the grader may create one: every process of the run in it
from the start (:mod:`minirec.grading._limits` moves the kernel in before it executes), so that
the run's processes - detached, double-forked, with their environment cleared - are found and
killed together, and its memory is limited (``memory.max``) and an out-of-memory kill is seen.

cgroup v2 is used for both where its memory controller is available to the grader's cgroup;
where the memory controller is on a cgroup v1 hierarchy (a "hybrid" machine), the v2 cgroup
tracks the processes and a v1 memory cgroup (``memory.limit_in_bytes``) limits them. Where no
cgroup can be created (not root, no delegation), :meth:`RunCgroup.create` returns None and the
grader falls back to tracking processes through ``/proc`` and to ``RLIMIT_DATA``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


def _mounts() -> list[tuple[str, str, str, str]]:
    """(mount point, root inside the hierarchy, file-system type, super options) of each mount
    of this process (/proc/self/mountinfo)."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            head, _sep, tail = line.partition(" - ")
            fields, rest = head.split(), tail.split()
            if len(fields) >= 5 and len(rest) >= 3:
                found.append((fields[4].encode().decode("unicode_escape"), fields[3], rest[0],
                              rest[2]))
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup paths: ``"v2"`` and, on a v1 hierarchy, each controller's."""
    paths = {}
    with open("/proc/self/cgroup", encoding="utf-8") as info:
        for line in info:
            number, controllers, path = line.rstrip("\n").split(":", 2)
            if number == "0" and controllers == "":
                paths["v2"] = path
            for controller in controllers.split(","):
                if controller:
                    paths[controller] = path
    return paths


def _folder(mount_point: str, mount_root: str, path: str) -> Path | None:
    """Where a cgroup ``path`` lies under a hierarchy mounted at ``mount_point``."""
    if not (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        return None
    folder = Path(mount_point, os.path.relpath(path, mount_root))
    return folder if folder.is_dir() else None


def hierarchies() -> tuple[Path | None, Path | None]:
    """The folders of this process's cgroup on the v2 hierarchy and on a v1 memory hierarchy
    (None where there is none)."""
    try:
        mounts, own = _mounts(), _own_cgroups()
    except OSError:
        return None, None
    v2 = v1_memory = None
    for point, root, fstype, options in mounts:
        if fstype == "cgroup2" and "v2" in own and v2 is None:
            v2 = _folder(point, root, own["v2"])
        elif fstype == "cgroup" and "memory" in options.split(",") and "memory" in own:
            v1_memory = v1_memory or _folder(point, root, own["memory"])
    return v2, v1_memory


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _read_counts(path: Path) -> dict[str, int]:
    """A ``key value`` file (memory.events, memory.oom_control) as numbers."""
    counts = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _sep, value = line.partition(" ")
            if value.strip().isdigit():
                counts[key] = int(value)
    return counts


@dataclass
class RunCgroup:
    """One run's cgroups: ``tracking`` (cgroup v2: the processes) and ``memory`` (the folder
    whose limit is ``memory_bytes``: the same v2 folder, a v1 memory folder, or None)."""

    tracking: Path
    memory: Path | None
    memory_bytes: int | None

    @classmethod
    def create(cls, name: str, memory_bytes: int | None) -> RunCgroup | None:
        """Make the run's cgroups below the grader's own; None where that is not allowed."""
        v2, v1_memory = hierarchies()
        if v2 is None:
            return None
        tracking = v2 / name
        try:
            tracking.mkdir()
        except OSError:
            return None
        cgroup = cls(tracking, None, memory_bytes)
        if memory_bytes is not None:
            cgroup.memory = cgroup._limit_memory(memory_bytes, v1_memory / name if v1_memory
                                                 else None)
        return cgroup

    def _limit_memory(self, limit: int, v1_folder: Path | None) -> Path | None:
        controllers = (self.tracking / "cgroup.controllers").read_text().split()
        if "memory" in controllers and _write(self.tracking / "memory.max", str(limit)):
            _write(self.tracking / "memory.swap.max", "0")
            _write(self.tracking / "memory.oom.group", "1")  # an OOM kills the whole run
            return self.tracking
        if v1_folder is not None:
            try:
                v1_folder.mkdir()
            except OSError:
                return None
            if _write(v1_folder / "memory.limit_in_bytes", str(limit)):
                _write(v1_folder / "memory.memsw.limit_in_bytes", str(limit))  # no swap either
                return v1_folder
            with contextlib.suppress(OSError):
                v1_folder.rmdir()
        return None

    @property
    def folders(self) -> list[Path]:
        """The folders a run's first process must enter (``_limits.py --cgroup``)."""
        return [self.tracking] + ([self.memory] if self.memory not in (None, self.tracking)
                                  else [])

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return found

    def kill(self, wait_s: float = 5.0) -> set[int]:
        """SIGKILL every process of the run (``cgroup.kill`` where the kernel has it: atomic,
        also against a process that forks); return those still there after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            if not _write(self.tracking / "cgroup.kill", "1"):
                _write(self.tracking / "cgroup.freeze", "1")
                for pid in self.pids():
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            left = self.pids()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)

    def out_of_memory(self) -> bool:
        """Whether the kernel's out-of-memory killer killed one of the run's processes."""
        if self.memory is None:
            return False
        if self.memory == self.tracking:
            return _read_counts(self.memory / "memory.events").get("oom_kill", 0) > 0
        return _read_counts(self.memory / "memory.oom_control").get("oom_kill", 0) > 0

    def peak_bytes(self) -> int | None:
        """The most memory the run used at once (where the kernel says)."""
        if self.memory is None:
            return None
        name = "memory.peak" if self.memory == self.tracking else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((self.memory / name).read_text())
        return None

    def remove(self) -> None:
        """Remove the run's cgroups (once its processes are gone)."""
        for folder in reversed(self.folders):
            with contextlib.suppress(OSError):
                folder.rmdir()
