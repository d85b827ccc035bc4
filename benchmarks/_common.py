"""What every benchmark script shares: its command line, its timing policy, the machine it ran on,
its header, table and goals as printed, and its JSON. The scripts run as
``python benchmarks/<script>.py``, so this folder is on ``sys.path``. A script reads::

    run = Run(parser(__doc__, "tiny sizes (...)").parse_args(argv))  # --quick --json --rounds --budget
    times = run.time({"method": fn, ...})          # minirec._timing's policy: name → Timing
    rows = [{"method": name, **t.as_row(), ...} for name, t in times.items()]
    info = run.machine()                           # at the end: the load average then
    print(run.header("Title", info, "sizes: ...") + table(rows, COLUMNS))
    goals = [run.goal("what", met, "the numbers"), ...]
    print(goal_lines(goals, run.quick))
    run.write_json("name", info, rows=rows, goals=goals)

The timing policy (``benchmarks/README.md``, at the top) is :mod:`minirec._timing`'s, with the
sizes below: at full size 3 rounds, a 0.3 s budget per method and round, a 0.2 s pause before
each method; at ``--quick`` 1 round, 0.01 s, no pause.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence

from minirec._timing import Timing, time_methods, wall_time

FULL_POLICY = {"rounds": 3, "budget_s": 0.3, "pause_s": 0.2, "max_calls": 100, "warmup": 1}
QUICK_POLICY = {**FULL_POLICY, "rounds": 1, "budget_s": 0.01, "pause_s": 0.0}
GOAL_WORD = {True: "MET", False: "MISSED", None: "not judged"}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none): other jobs on the cores."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine(**extra) -> dict:
    """CPU, core and thread counts, library versions; ``extra`` adds script-specific entries."""
    import numba
    import numpy as np
    import torch

    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        **extra,
    }


def parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The options every script takes; a script adds its own to the parser returned."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{quick_help}: seconds (the smoke test)")
    ap.add_argument("--json", metavar="PATH", help="also write the header, rows and goals as JSON")
    ap.add_argument("--rounds", type=int, default=None,
                    help=f"timing rounds (default {FULL_POLICY['rounds']}, "
                         f"quick {QUICK_POLICY['rounds']})")
    ap.add_argument("--budget", type=float, default=None, metavar="S",
                    help=f"seconds of calls per method and round (default "
                         f"{FULL_POLICY['budget_s']}, quick {QUICK_POLICY['budget_s']})")
    return ap


def policy_text(policy: Mapping) -> str:
    """The timing policy in one line, for a script's header."""
    pause = f", {policy['pause_s']:g} s pause before each" if policy["pause_s"] else ""
    return (f"timing: {policy['warmup']} warm-up call per method, then {policy['rounds']} "
            f"round(s) of every method in turn{pause}, each called until its calls take "
            f"{policy['budget_s']:g} s (1 to {policy['max_calls']} calls); best (quoted) and "
            "median of all timed calls")


class Run:
    """One run of a benchmark script: its options, its timing policy, when it started and the
    load average then."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = bool(args.quick)
        policy = dict(QUICK_POLICY if self.quick else FULL_POLICY)
        if args.rounds is not None:
            policy["rounds"] = args.rounds
        if args.budget is not None:
            policy["budget_s"] = args.budget
        self.policy = policy
        self.date = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.load_start = load_average()

    def time(self, methods: Mapping[str, Callable[[], object]],
             timer: Callable[[Callable[[], object]], float] = wall_time) -> dict[str, Timing]:
        """name → :class:`minirec._timing.Timing` of every method, under this run's policy."""
        return time_methods(methods, timer=timer, **self.policy)

    def machine(self, **extra) -> dict:
        """:func:`machine` with the load average at the start of the run and now."""
        return machine(**extra, load_avg_1min={"start": self.load_start, "end": load_average()})

    def header(self, title: str, info: Mapping, *lines: str) -> str:
        """The lines every script prints above its table: title and date, load average,
        machine, versions, the script's own ``lines``, the timing policy; a blank line."""
        load = info.get("load_avg_1min") or {}
        loads = " / ".join("n/a" if x is None else f"{x:.2f}"
                           for x in (load.get("start"), load.get("end")))
        threads = ", ".join(f"{k} threads {info[f'{k}_threads']}" for k in ("torch", "numba")
                            if f"{k}_threads" in info)
        versions = ", ".join(f"{k} {info[k]}" for k in
                             ("python", "numpy", "numba", "torch", "scipy", "hmmlearn") if k in info)
        return "\n".join([
            f"{title} — {self.date}",
            f"load average (1 min) at start / end: {loads} (other jobs on the cores slow the "
            "2-thread timings most)",
            f"machine: {info.get('cpu', '?')}, {info.get('logical_cpus', '?')} logical CPUs"
            + (f", {threads}" if threads else ""),
            versions,
            *lines,
            policy_text(self.policy),
            "",
        ]) + "\n"

    def goal(self, goal: str, met: bool | None, detail: str) -> dict:
        """A goal as the website reads it; not judged (``met`` None) at ``--quick`` sizes."""
        return {"goal": goal, "met": None if self.quick else met, "detail": detail}

    def write_json(self, benchmark: str, info: Mapping, **fields) -> None:
        """With ``--json PATH``: the run (benchmark, date, quick, timing policy, machine) and
        ``fields`` (rows, goals, no_goal, sizes, ...) as JSON."""
        if not self.args.json:
            return
        with open(self.args.json, "w") as f:
            json.dump({"benchmark": benchmark, "date": self.date, "quick": self.quick,
                       "timing": self.policy, "machine": dict(info), **fields}, f, indent=2)


def goal_lines(goals: Sequence[Mapping], quick: bool) -> str:
    """``Goals:`` and one ``goal: [MET] what: numbers`` line per goal."""
    lines = ["Goals" + (" (quick sizes: not judged)" if quick else "") + ":"]
    lines += [f"goal: [{GOAL_WORD[g['met']]}] {g['goal']}: {g['detail']}" for g in goals]
    return "\n".join(lines)


_SPEC = re.compile(r"^(?P<align>[<>^]?)(?P<width>\d*)")


def _aligned(text: str, spec: str) -> str:
    """``text`` in the alignment and width of the format spec ``spec`` (right by default)."""
    m = _SPEC.match(spec)
    return format(text, f"{m['align'] or '>'}{m['width']}")


def table(rows: Sequence[Mapping], columns: Sequence[tuple], *,
          group: str | Callable[[Mapping], object] | None = None) -> str:
    """Rows as fixed-width text under a header and a rule. Each column is ``(heading, key,
    spec)``: ``key`` a row key or a function of the row, ``spec`` a format spec with its width
    (``">10.2f"``, ``"<30"``); None prints as ``-``. A blank line between rows whose ``group``
    (a key, or a function of the row) differs."""
    head = " ".join(_aligned(h, spec) for h, _, spec in columns).rstrip()
    lines = [head, "-" * len(head)]
    key_of = group if callable(group) or group is None else (lambda r: r[group])
    for i, r in enumerate(rows):
        if key_of is not None and i and key_of(r) != key_of(rows[i - 1]):
            lines.append("")
        values = (key(r) if callable(key) else r[key] for _, key, _ in columns)
        lines.append(" ".join(_aligned("-", spec) if v is None else format(v, spec)
                              for v, (_, _, spec) in zip(values, columns)).rstrip())
    return "\n".join(lines)
