"""Run a command with nothing writable outside one folder, and some folders hidden (Linux).

Used by :mod:`minirec.grading` to start a submission's Jupyter kernel. Run as a script (it
imports nothing from minirec, so it starts fast)::

    unshare --user --map-root-user --mount --pid --fork --kill-child --mount-proc -- \\
        python -I _sandbox.py --writable WORKDIR [--overlay DIR UPPER WORK]... [--hide PATH]... \\
        [--keep DIR]... -- COMMAND...

Inside the new user, mount and PID namespaces (private: nothing propagates back to the host)
it

1. puts an overlay on each ``--overlay DIR`` (writes land in UPPER, a per-run folder the grader
   throws away; DIR itself is not changed) - Numba and Python caches in minirec's package
   folder stay usable without the submission being able to change them for the next one;
2. replaces ``/dev`` with a minimal one: a tmpfs holding the host's ``null``, ``zero``,
   ``full``, ``random`` and ``urandom`` (bound in: no other device, no ``/dev/kmsg``, no disk),
   the links ``fd``, ``stdin``, ``stdout``, ``stderr`` and a fresh, empty ``/dev/shm``;
3. hides each ``--hide PATH`` (other submissions, the solutions, other runs' folders, the
   temporary folder): an empty tmpfs over a folder, ``/dev/null`` over a file;
4. binds WORKDIR onto itself (a writable mount of its own), and binds back each overlay and each
   ``--keep DIR`` (what the command runs: the interpreter, ``PYTHONPATH``) that a hidden folder
   covers;
5. remounts every other mount read-only - ``/``, ``/proc`` (so ``/proc/sys`` and
   ``/proc/sysrq-trigger``), ``/sys`` and its cgroup mounts, ``/dev`` - keeping only WORKDIR,
   the overlays and ``/dev/shm`` writable;
6. enters one more user and mount namespace, which *locks* those mounts (they cannot be
   remounted writable or unmounted to see what they hide), and executes COMMAND in WORKDIR.
   No user is mapped into that namespace: the command runs as ``nobody``, with no capability
   at all (it cannot mount, or make namespaces of its own); on disk, its files are the
   grader's user's.

The outer ``--pid --fork --kill-child --mount-proc`` makes the command PID 1 of its own PID
namespace: when the grader kills it, every process it started dies with it, and it sees (and
can signal) no process outside (``/proc`` shows only its own). The network is not isolated
(the kernel talks to the grader over localhost).
"""

from __future__ import annotations

import ctypes
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
# Flags a remount inside a user namespace must keep as they are (statvfs bit -> mount bit).
_KEPT_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
               os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME,
               os.ST_RELATIME: MS_RELATIME}
DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}
SHM_SIZE = "1g"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)


def _mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
           data: str | None = None) -> None:
    """mount(2); raises OSError naming the target."""
    args = [None if a is None else os.fsencode(a) for a in (source, target, fstype)]
    if _libc.mount(*args, flags, None if data is None else data.encode()) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {source or ''} on {target}: {os.strerror(code)}")


def _bind_fd(fd: int, target: str) -> None:
    """Bind what ``fd`` (an O_PATH descriptor opened before a mount hid its path) names."""
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)


def _mount_points() -> list[tuple[int, str]]:
    """(mount id, mount point) of each mount of this namespace (octal escapes decoded)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return [(int(f[0]), f[4].encode().decode("unicode_escape"))
                for f in (line.split() for line in info)]


def _visible_mount_id(path: str) -> int | None:
    """The id of the mount ``path`` resolves to, or None if it cannot be opened."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="utf-8") as info:
            for line in info:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    return None


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _open_path(path: str) -> int:
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def minimal_dev() -> None:
    """Step 2: a tmpfs on /dev with the host's harmless devices bound in, and a fresh shm."""
    host = {name: _open_path(f"/dev/{name}") for name in DEVICES if os.path.exists(f"/dev/{name}")}
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")
    for name, fd in host.items():
        open(f"/dev/{name}", "w").close()  # the mount point of the bound device
        _bind_fd(fd, f"/dev/{name}")
        os.close(fd)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm", 0o1777)
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={SHM_SIZE}")


def hide(path: str) -> None:
    """Step 3: an empty, read-only tmpfs over a folder; /dev/null over a file."""
    if os.path.isdir(path):
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=4k")
    elif os.path.exists(path):
        _mount("/dev/null", path, None, MS_BIND)


def bind_back(fd: int, path: str, always: bool = False) -> None:
    """Step 4: bind the folder ``fd`` names onto ``path`` (re-created inside a hiding tmpfs)
    where a hidden folder covers it, or ``always``."""
    if not always and os.path.isdir(path) and os.path.samestat(os.stat(path), os.fstat(fd)):
        return  # still visible
    os.makedirs(path, exist_ok=True)
    _bind_fd(fd, path)


def make_read_only(keep: set[str]) -> None:
    """Step 5: every mount read-only except those on ``keep`` (and their submounts). A mount
    hidden under another one (its path leads to that one) cannot be reached: it is left."""
    for mount_id, point in _mount_points():
        if any(_under(point, k) for k in keep) or _visible_mount_id(point) != mount_id:
            continue
        flags = os.statvfs(point).f_flag
        kept = 0
        for st_bit, ms_bit in _KEPT_FLAGS.items():
            kept |= ms_bit if flags & st_bit else 0
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)
        except OSError:
            # A mount we may not touch (e.g. already read-only and locked): refuse to go on
            # unless it is read-only.
            if not os.statvfs(point).f_flag & os.ST_RDONLY:
                raise


_NEVER_HIDDEN = ("/", "/dev", "/proc", "/sys")


def setup(writable: str, overlays: list[tuple[str, str, str]], hidden: list[str],
          kept: list[str] = ()) -> None:
    """Steps 1-5 of the module docstring (the caller holds a private mount namespace)."""
    writable = os.path.realpath(writable)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    back = {os.path.realpath(k): _open_path(k) for k in kept if os.path.isdir(k)}
    back[writable] = _open_path(writable)
    writable_mounts = {writable, "/dev/shm"}
    for folder, upper, work in overlays:
        folder = os.path.realpath(folder)
        _mount("overlay", folder, "overlay", 0,
               f"lowerdir={folder},upperdir={upper},workdir={work}")
        back[folder] = _open_path(folder)  # the overlay, to bind back where it is hidden
        writable_mounts.add(folder)
    minimal_dev()
    hidden = [p for p in map(os.path.realpath, hidden) if p not in _NEVER_HIDDEN]
    covering = [h for h in hidden if any(_under(b, h) for b in back)]
    for path in covering:  # hidden paths that hold something bound back: first
        hide(path)
    for path in sorted(back, key=len):  # parents first
        bind_back(back[path], path, always=path == writable)
        os.close(back[path])
    for path in hidden:  # then the others (inside a folder bound back, they are seen again)
        if path not in covering:
            hide(path)
    make_read_only(writable_mounts)
    os.chdir(writable)


def _parse(argv: list[str]):
    if "--" not in argv:
        raise SystemExit("usage: _sandbox.py --writable DIR [--overlay DIR UPPER WORK]... "
                         "[--hide PATH]... [--keep DIR]... -- CMD")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    writable, overlays, hidden, kept = None, [], [], []
    i = 0
    while i < len(options):
        if options[i] == "--writable":
            writable, i = options[i + 1], i + 2
        elif options[i] == "--overlay":
            overlays.append(tuple(options[i + 1:i + 4]))
            i += 4
        elif options[i] in ("--hide", "--keep"):
            (hidden if options[i] == "--hide" else kept).append(options[i + 1])
            i += 2
        else:
            raise SystemExit(f"_sandbox.py: unknown option {options[i]!r}")
    if writable is None or not command:
        raise SystemExit("_sandbox.py: --writable DIR and a command are required")
    return writable, overlays, hidden, kept, command


def main(argv: list[str]) -> None:
    writable, overlays, hidden, kept, command = _parse(argv)
    try:
        setup(writable, overlays, hidden, kept)
    except OSError as exc:
        sys.stderr.write(f"minirec sandbox: could not set up the mounts: {exc}\n")
        sys.exit(97)
    # Step 6: a nested user namespace, with no user mapped into it, locks the mounts.
    os.execvp("unshare", ["unshare", "--user", "--mount", "--", *command])


if __name__ == "__main__":
    main(sys.argv[1:])
