"""Run a command with a read-only view of the machine, except one writable folder (Linux).

Used by :mod:`minirec.grading` to start a submission's Jupyter kernel. Run as a script (it
imports nothing from minirec, so it starts fast)::

    unshare --user --map-root-user --mount --pid --fork --kill-child --mount-proc -- \\
        python -I _sandbox.py --writable WORKDIR [--overlay DIR UPPER WORK] -- COMMAND...

Inside the new user, mount and PID namespaces (private: nothing propagates back to the host)
it

1. bind-mounts WORKDIR onto itself (a writable mount of its own);
2. puts an overlay on each ``--overlay DIR`` (writes land in UPPER, a per-run folder the grader
   throws away; DIR itself is not changed) - Numba and Python caches in minirec's package
   folder stay usable without the submission being able to change them for the next one;
3. gives ``/dev/shm`` a fresh, empty tmpfs;
4. remounts every other mount point read-only, except ``/proc``, ``/sys`` and ``/dev``;
5. enters one more user and mount namespace, which *locks* those read-only mounts (a process
   cannot remount them writable or unmount them), and executes COMMAND in WORKDIR.

The outer ``--pid --fork --kill-child --mount-proc`` makes the command PID 1 of its own PID
namespace: when the grader kills it, every process it started dies with it, and it sees (and
can signal) no process outside. The network is not isolated (the kernel talks to the grader
over localhost).
"""

from __future__ import annotations

import os
import subprocess
import sys

_SKIP_PREFIXES = ("/proc", "/sys", "/dev")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _mount_points() -> list[str]:
    """Mount points of this namespace, from /proc/self/mountinfo (octal escapes decoded)."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            raw = line.split()[4]
            points.append(raw.encode().decode("unicode_escape"))
    return points


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def setup(writable: str, overlays: list[tuple[str, str, str]]) -> None:
    """Steps 1-4 of the module docstring (the caller holds a private mount namespace)."""
    writable = os.path.realpath(writable)
    _mount("--make-rprivate", "/")
    _mount("--bind", writable, writable)
    keep = {writable}
    for folder, upper, work in overlays:
        folder = os.path.realpath(folder)
        _mount("-t", "overlay", "overlay", "-o",
               f"lowerdir={folder},upperdir={upper},workdir={work}", folder)
        keep.add(folder)
    if os.path.isdir("/dev/shm"):
        _mount("-t", "tmpfs", "-o", "size=1g", "tmpfs", "/dev/shm")
    for point in _mount_points():
        if point in keep or any(_under(point, p) for p in _SKIP_PREFIXES):
            continue
        if any(_under(point, k) for k in keep):
            continue
        try:
            _mount("-o", "remount,bind,ro", point)
        except subprocess.CalledProcessError:
            # A mount we may not touch (e.g. already read-only and locked): check it is not
            # writable before going on; refuse otherwise.
            if os.access(point, os.W_OK) and not _read_only(point):
                raise
    os.chdir(writable)


def _read_only(point: str) -> bool:
    try:
        return bool(os.statvfs(point).f_flag & os.ST_RDONLY)
    except OSError:
        return True


def _parse(argv: list[str]):
    if "--" not in argv:
        raise SystemExit("usage: _sandbox.py --writable DIR [--overlay DIR UPPER WORK]... -- CMD")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    writable, overlays = None, []
    i = 0
    while i < len(options):
        if options[i] == "--writable":
            writable, i = options[i + 1], i + 2
        elif options[i] == "--overlay":
            overlays.append(tuple(options[i + 1:i + 4]))
            i += 4
        else:
            raise SystemExit(f"_sandbox.py: unknown option {options[i]!r}")
    if writable is None or not command:
        raise SystemExit("_sandbox.py: --writable DIR and a command are required")
    return writable, overlays, command


def main(argv: list[str]) -> None:
    writable, overlays, command = _parse(argv)
    try:
        setup(writable, overlays)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        sys.stderr.write(f"minirec sandbox: could not set up the mounts: {exc} "
                         f"{detail.decode(errors='replace').strip()}\n")
        sys.exit(97)
    # Step 5: a nested user namespace locks the read-only mounts.
    os.execvp("unshare", ["unshare", "--user", "--map-root-user", "--mount", "--", *command])


if __name__ == "__main__":
    main(sys.argv[1:])
