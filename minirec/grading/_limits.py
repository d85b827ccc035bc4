"""Start a command inside a run's cgroups and under its resource limits (Linux).

Used by :mod:`minirec.grading` in front of a submission's kernel (and its sandbox). Run as a
script (it imports nothing from minirec, so it starts fast)::

    python -I _limits.py [--cgroup DIR]... [--rlimit NAME BYTES]... -- COMMAND...

It moves itself into each cgroup ``DIR`` (writes its pid into ``DIR/cgroup.procs``) and sets
each resource limit (``NAME`` a ``resource.RLIMIT_*`` name without the prefix, e.g. ``DATA``)
before executing COMMAND, so that the command and every process it starts - detached or not -
are in the cgroups and under the limits from their first instruction.
"""

from __future__ import annotations

import os
import resource
import sys


def _parse(argv: list[str]):
    if "--" not in argv:
        raise SystemExit("usage: _limits.py [--cgroup DIR]... [--rlimit NAME BYTES]... -- CMD")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    cgroups, limits = [], []
    i = 0
    while i < len(options):
        if options[i] == "--cgroup":
            cgroups.append(options[i + 1])
            i += 2
        elif options[i] == "--rlimit":
            limits.append((options[i + 1], int(options[i + 2])))
            i += 3
        else:
            raise SystemExit(f"_limits.py: unknown option {options[i]!r}")
    if not command:
        raise SystemExit("_limits.py: a command is required")
    return cgroups, limits, command


def main(argv: list[str]) -> None:
    cgroups, limits, command = _parse(argv)
    try:
        for folder in cgroups:
            with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
                procs.write(str(os.getpid()))
        for name, value in limits:
            which = getattr(resource, f"RLIMIT_{name}")
            _soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
    except (OSError, ValueError, AttributeError) as exc:
        sys.stderr.write(f"minirec limits: could not enter the run's cgroup or set its limits: "
                         f"{exc}\n")
        sys.exit(96)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
