"""A run's processes found through ``/proc`` (Linux), and the grader made their subreaper.

Where no cgroup can be made for a run (:mod:`minirec.grading._cgroup`), a run's processes are
those that

- carry the run's marker in their environment (``MINIREC_GRADING_RUN=<marker>``, inherited by
  every process the kernel starts), or
- descend from the grader, started after the run began, and carry no other run's marker
  (nearest marked ancestor first): a process that clears its environment is still found.
  A process with no marked ancestor is claimed only while the run is the grader's only one
  (``claim_unmarked``): with runs in parallel, a process the grader is starting for another
  run carries no marker until it executes its program. Then a run's processes are those
  marked or below a process it marked (and those in its cgroup); in the sandbox its PID
  namespace keeps every one of them below its marked first process.

A process that detaches (double fork, ``setsid``) is re-parented to the nearest "subreaper"
among its ancestors, else to PID 1, where the parent chain would lose it: while runs are in
flight, the grader is a subreaper (``PR_SET_CHILD_SUBREAPER``, :class:`Subreaper`), so detached
processes stay its descendants; it reaps the ones it kills.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MARKER_VARIABLE = "MINIREC_GRADING_RUN"
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    start: int  # clock ticks after boot
    zombie: bool
    marker: str | None  # MARKER_VARIABLE in its environment, None when absent or unreadable


def _read(pid: int) -> Process | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    marker = None
    with contextlib.suppress(OSError):
        prefix = f"{MARKER_VARIABLE}=".encode()
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry.startswith(prefix):
                marker = entry[len(prefix):].decode(errors="replace")
    return Process(pid, int(fields[1]), int(fields[19]), fields[0] == "Z", marker)


def processes() -> dict[int, Process]:
    """Every process this one can see (none where there is no /proc)."""
    table = {}
    if not os.path.isdir("/proc"):
        return table
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            proc = _read(int(entry.name))
            if proc is not None:
                table[proc.pid] = proc
    return table


def clock_ticks_now() -> int:
    """Now, in the unit of a process's start time in /proc (clock ticks after boot); 0 where
    there is no /proc."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return 0
    return int(uptime * os.sysconf("SC_CLK_TCK"))


def _owner(proc: Process, table: dict[int, Process], grader: int) -> str | None:
    """The marker of ``proc`` or of its nearest marked ancestor below the grader."""
    seen = set()
    while proc is not None and proc.pid not in seen and proc.pid != grader:
        if proc.marker is not None:
            return proc.marker
        seen.add(proc.pid)
        proc = table.get(proc.ppid)
    return None


def _descends_from(proc: Process, table: dict[int, Process], ancestor: int) -> bool:
    seen = set()
    while proc is not None and proc.pid not in seen:
        if proc.ppid == ancestor:
            return True
        seen.add(proc.pid)
        proc = table.get(proc.ppid)
    return False


def run_processes(marker: str, since: int, table: dict[int, Process] | None = None, *,
                  claim_unmarked: bool = True) -> list[int]:
    """The pids of a run's processes (the rules of the module docstring; ``claim_unmarked``:
    the run is the only one in flight, so the grader's unmarked descendants are its own)."""
    table = processes() if table is None else table
    grader = os.getpid()
    found = []
    for proc in table.values():
        if proc.pid == grader:
            continue
        if proc.marker == marker:
            found.append(proc.pid)
        elif proc.start >= since and _descends_from(proc, table, grader):
            owner = _owner(proc, table, grader)
            if owner == marker or (owner is None and claim_unmarked):
                found.append(proc.pid)
    return found


def end_processes(find, wait_s: float = 5.0) -> list[int]:
    """Stop, then kill, every process ``find()`` returns, again until it finds none (a process
    forking while it is killed is caught at the next round); reap the grader's own children
    among them. Returns the pids still alive after ``wait_s`` (zombies do not count)."""
    deadline = time.monotonic() + wait_s
    ended: set[int] = set()
    while True:
        pids = [p for p in find() if p != os.getpid()]
        living = [p for p in pids if not _is_zombie(p)]
        for pid in living:  # stopped first: a stopped process cannot fork any more
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        for pid in living:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        ended |= set(pids)
        reap(ended)
        if not living or time.monotonic() > deadline:
            return living
        time.sleep(0.02)


def _is_zombie(pid: int) -> bool:
    proc = _read(pid)
    return proc is None or proc.zombie


def reap(pids) -> None:
    """Collect the exit status of those of ``pids`` that are the grader's children and have
    ended (adopted as a subreaper, nobody else waits for them)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


class Subreaper:
    """The grader as its descendants' subreaper while at least one run is in flight (one per
    process: the setting is the process's; runs in threads share it)."""

    _lock = threading.Lock()
    _users = 0
    _was_set = False

    @classmethod
    def _prctl(cls, option: int, value) -> int:
        """prctl(2); -1 where there is none (not Linux)."""
        prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
        return -1 if prctl is None else prctl(option, value, 0, 0, 0)

    @classmethod
    def acquire(cls) -> bool:
        """Make the grader a subreaper (where Linux allows); True if it is one."""
        with cls._lock:
            if cls._users == 0:
                current = ctypes.c_int(0)
                if cls._prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(current)) != 0:
                    return False
                cls._was_set = bool(current.value)
                if not cls._was_set and cls._prctl(_PR_SET_CHILD_SUBREAPER, 1) != 0:
                    return False
            cls._users += 1
            return True

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            if cls._users == 0 and not cls._was_set:
                cls._prctl(_PR_SET_CHILD_SUBREAPER, 0)
