"""Every lesson's execution time, quiet and while busy processes occupy the cores.

    python benchmarks/lesson_times.py                      # every lesson, with 0 and 2 busy processes
    python benchmarks/lesson_times.py 01_cells --cells     # one lesson, with each cell's time
    python benchmarks/lesson_times.py --exercises          # the blank exercise notebooks too
    python benchmarks/lesson_times.py --json times.json    # also the machine and rows as JSON
    python benchmarks/lesson_times.py --write-docs         # put the table in benchmarks/README.md

A busy process is ``python -c "while True: pass"``. For each load level (``--busy``, default
``0 2``) the script starts that many, runs every lesson's solution notebook (and, with
``--exercises``, its blank exercise notebook) as ``minirec build`` runs it — a fresh kernel,
``lessons/`` (or ``exercises/``) as working directory, the same per-cell time limit — and stops
them: killed and reaped when the level is done, when a run fails and when the script is
interrupted. Nothing is written into ``solutions/`` or ``exercises/``.

The table gives each lesson's seconds at each load, the ratio to the quiet run, and the
slowest cell; ``--cells`` adds every cell that took at least 0.5 s (its index and the lesson
line of its ``# %%`` header). A run that fails (an error, or a cell past ``--timeout``) shows
``failed`` and makes the exit status 1; over :data:`minirec.notebooks.LESSON_LIMIT_S` seconds a
row is marked ``over``. Times depend on the machine and on everything else running on it: run
this on an otherwise quiet machine (the load average is printed) before recording a table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import load_average, machine

from minirec import notebooks

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
DOCS_START = "<!-- lesson-times:start -->"
DOCS_END = "<!-- lesson-times:end -->"
BUSY_LOOP = "while True: pass"
CELL_REPORT_S = 0.5  # --cells lists the cells at least this slow


@contextlib.contextmanager
def busy_processes(n: int):
    """Start ``n`` processes that spin a core each; yield their Popen objects; always stop them."""
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP]))
        time.sleep(0.5 if n else 0.0)  # let them reach the cores before the clock starts
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def notebook_of(path: Path, kind: str, root: Path):
    """The ``kind`` ("solution" or "exercise") notebook of a lesson, split fresh from its source,
    its working directory, and the lesson line of each cell's header."""
    rel = path.relative_to(root).as_posix()
    solution, exercise, lines = notebooks._split(path.read_text(encoding="utf-8"), rel)
    if kind == "solution":
        return solution, root / "lessons", lines
    kept = {cell.id for cell in exercise.cells}
    return exercise, root / "exercises", [n for c, n in zip(solution.cells, lines) if c.id in kept]


def run_one(path: Path, kind: str, busy: int, root: Path, timeout: int) -> dict:
    """Execute one notebook; its total and per-cell seconds, and how it failed, if it did."""
    nb, cwd, lines = notebook_of(path, kind, root)
    cells: dict[int, float] = {}
    error = None
    start = time.perf_counter()
    try:
        notebooks.execute(nb, timeout, cwd=cwd, allow_errors=kind == "exercise", cell_seconds=cells)
    except Exception as exc:  # a lesson that fails is reported, and the others still run
        index = getattr(exc, "cell_index", None)
        error = (notebooks.timeout_advice(nb, index, timeout) if index is not None
                 else _first_line(exc))
    seconds = time.perf_counter() - start
    return {
        "lesson": path.stem, "notebook": kind, "busy": busy, "seconds": round(seconds, 2),
        "ok": error is None, "error": error,
        "cells": [{"index": i, "line": lines[i], "first_line": _first_line(nb.cells[i].source),
                   "seconds": round(t, 2)} for i, t in sorted(cells.items())],
    }


def _first_line(text) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text)).strip().split("\n")[0][:70]


def measure(paths, busy_levels, kinds, root: Path, timeout: int, log=print) -> list[dict]:
    """Every notebook at every load level, one after the other (a level's busy processes run
    for all of its notebooks)."""
    rows = []
    for busy in busy_levels:
        with busy_processes(busy):
            for path in paths:
                for kind in kinds:
                    row = run_one(path, kind, busy, root, timeout)
                    status = "ok" if row["ok"] else "FAILED: " + row["error"]
                    log(f"  {path.stem} {kind}, {busy} busy: {row['seconds']:.1f} s {status}")
                    rows.append(row)
    return rows


def table(rows, busy_levels, limit: float = notebooks.LESSON_LIMIT_S) -> list[str]:
    """A markdown table: one line per lesson and notebook, one column per load level."""
    quiet = min(busy_levels)
    by_key = {(r["lesson"], r["notebook"], r["busy"]): r for r in rows}
    keys = list(dict.fromkeys((r["lesson"], r["notebook"]) for r in rows))
    head = ["lesson", "notebook"] + [_level(b) for b in busy_levels]
    head += [f"{_name(b)} / {_name(quiet)}" for b in busy_levels if b != quiet]
    head += ["slowest cell (line: s)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lesson, kind in keys:
        runs = [by_key.get((lesson, kind, b)) for b in busy_levels]
        cells = [_seconds(r, limit) for r in runs]
        base = by_key.get((lesson, kind, quiet))
        ratios = [f"{r['seconds'] / base['seconds']:.1f}" if r and base and r["ok"] and base["ok"]
                  else "—" for r, b in zip(runs, busy_levels) if b != quiet]
        slowest = [_slowest(r) for r in runs if r]
        out.append("| " + " | ".join([lesson, kind] + cells + ratios + [" / ".join(slowest)]) + " |")
    return out


def _name(busy: int) -> str:
    return "quiet" if busy == 0 else f"{busy} busy"


def _level(busy: int) -> str:
    return f"{_name(busy)} (s)"


def _seconds(row, limit: float) -> str:
    if row is None:
        return "—"
    if not row["ok"]:
        return f"failed ({row['seconds']:.0f})"
    return f"{row['seconds']:.1f}" + (" over" if row["seconds"] > limit else "")


def _slowest(row) -> str:
    if not row["cells"]:
        return "—"
    cell = max(row["cells"], key=lambda c: c["seconds"])
    return f"{cell['line']}: {cell['seconds']:.1f}"


def cell_lines(rows) -> list[str]:
    """Per notebook and load, the cells that took at least CELL_REPORT_S seconds."""
    out = []
    for row in rows:
        slow = [c for c in row["cells"] if c["seconds"] >= CELL_REPORT_S]
        out.append(f"{row['lesson']} {row['notebook']}, {row['busy']} busy: "
                   f"{row['seconds']:.1f} s in all, {len(row['cells'])} cells")
        for c in slow:
            out.append(f"    cell {c['index']:3d} (line {c['line']}) {c['seconds']:7.2f} s  "
                       f"{c['first_line']}")
    return out


def write_docs(lines: list[str], header: str, readme: Path = README) -> None:
    """Replace what lies between the lesson-times markers of ``readme`` with ``lines``."""
    text = readme.read_text(encoding="utf-8")
    if DOCS_START not in text or DOCS_END not in text:
        raise SystemExit(f"{readme}: no {DOCS_START} ... {DOCS_END} block to fill")
    before, rest = text.split(DOCS_START, 1)
    _, after = rest.split(DOCS_END, 1)
    block = "\n".join([DOCS_START, header, "", *lines, DOCS_END])
    readme.write_text(before + block + after, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", metavar="LESSON", help="default: every lesson")
    parser.add_argument("--busy", nargs="+", type=int, default=[0, 2], metavar="N",
                        help="load levels: busy processes beside the lessons (default: 0 2)")
    parser.add_argument("--exercises", action="store_true",
                        help="also run each blank exercise notebook")
    parser.add_argument("--cells", action="store_true", help="print each slow cell's time")
    parser.add_argument("--timeout", type=int, default=notebooks.CELL_TIMEOUT_S, metavar="S",
                        help=f"per-cell time limit (default {notebooks.CELL_TIMEOUT_S}, as the build)")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: found)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"replace the table between the markers in {README.name}")
    args = parser.parse_args(argv)
    if any(b < 0 for b in args.busy):
        parser.error("--busy takes numbers of processes, 0 or more")
    root = (args.root or notebooks.find_root()).resolve()
    paths = notebooks.lesson_paths(args.lessons or None, root=root)
    kinds = ["solution", "exercise"] if args.exercises else ["solution"]
    load = load_average()
    info = machine(load_average_before=load)
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, load average "
          f"{load if load is None else round(load, 2)} before the run")
    started = _dt.datetime.now(_dt.timezone.utc)
    rows = measure(paths, args.busy, kinds, root, args.timeout)
    lines = table(rows, args.busy)
    print("\n".join([""] + lines))
    if args.cells:
        print("\n".join([""] + cell_lines(rows)))
    if args.json:
        args.json.write_text(json.dumps({"date": started.isoformat(timespec="seconds"),
                                         "machine": info, "busy": args.busy, "rows": rows},
                                        indent=1) + "\n", encoding="utf-8")
    if args.write_docs:
        before = "" if load is None else f", load average {load:.2f} before the run"
        command = " ".join(["python benchmarks/lesson_times.py", *(argv or sys.argv[1:])])
        write_docs(lines, f"Measured {started:%Y-%m-%d %H:%M} UTC on {info['cpu']} "
                   f"({info['logical_cpus']} logical CPUs){before}, with `{command}`.")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
