"""``minirec grade --jobs``: a class of lesson 03 graded one at a time and two at a time, and the
grader's own cost per submission against executing the same notebook alone.

    python benchmarks/bench_grade.py                 # 40 submissions
    python benchmarks/bench_grade.py --count 8       # fewer
    python benchmarks/bench_grade.py --quick         # 2 submissions (the smoke test)
    python benchmarks/bench_grade.py --json out.json # also write the rows as JSON

The submissions are generated in a temporary folder from ``exercises/03_scans.ipynb`` (the
released notebook every one is graded against) and ``solutions/03_scans.ipynb``, the i-th of
kind ``KINDS[i % len(KINDS)]``: right (every exercise cell answered from the solution), wrong
(right but ``affine_combine`` composes the maps in the wrong order), blank (the release as
it is), and broken (a syntax error, a kernel that exits, a file that is not a notebook).

Measured, in this order, in one process:

1. *alone*: for each kind, the notebook the grader runs for it (the release with the kind's
   exercise cells put in, :mod:`minirec.grading._assemble`) executed by nbclient in a fresh
   kernel, in an empty folder, the kernel ended at once as the grader ends its own (nbclient's
   default graceful shutdown adds a wait the graded runs do not have): no grader, no sandbox,
   no limits, no verdict channel; the best of two runs (the first also writes Numba's cache in
   minirec's folder, which the sandboxed runs then read, and pays for cold imports);
2. ``grading.grade(..., jobs=1)`` then ``jobs=2`` of the whole folder (the sandbox as
   ``--sandbox auto`` decides: without it ``--jobs 2`` runs one at a time and the ratio is not
   measured); the two CSVs must be the same but for the seconds column, and each row what
   its kind should get.

Printed: the wall time of each grading and their ratio (goal: ``--jobs 2`` at least 1.7×
faster on 2 cores), and the grader's overhead per submission: (wall time with ``--jobs 1`` −
Σ the submissions' times alone) / submissions, split into the kernel's run inside the grader
(start-up behind the limits and the sandbox, the armed checks: the CSV's seconds − alone) and
the rest (assembling, the package guard, folders, cgroups, reading the verdicts). One run on
a shared machine: the load average is in the header.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as _dt
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average, machine

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "exercises" / "03_scans.ipynb"
SOLUTION = ROOT / "solutions" / "03_scans.ipynb"
KINDS = ("right", "wrong", "blank", "right", "syntax error", "wrong", "right", "kernel exits",
         "blank", "not a notebook")
FULL_COUNT, QUICK_COUNT = 40, 2
GOAL_RATIO = 1.7
GOAL = f"--jobs 2 at least {GOAL_RATIO}× faster than --jobs 1 on 2 cores"

# What a learner who composes the maps the wrong way round writes (h ↦ a2 h + b2 first).
RIGHT_AFFINE, WRONG_AFFINE = "return a1 * a2, a2 * b1 + b2", "return a1 * a2, a1 * b2 + b1"
SYNTAX_ERROR = "def affine_combine(left, right):\n    a1, b1 = left\n    return a1 *\n"
KERNEL_EXITS = "import os\nos._exit(3)\n"


# --------------------------------------------------------------------------------------------
# The class
# --------------------------------------------------------------------------------------------

def _answered(release, solution):
    """The release with every exercise cell answered from the solution (same cell id)."""
    answers = {c.get("id"): c.source for c in solution.cells}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []):
            cell.source = answers[cell.get("id")]
    return nb


def _with_affine(nb, source: str):
    nb = copy.deepcopy(nb)
    [cell] = [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])
              and "def affine_combine(" in c.source]
    cell.source = source
    return nb


def submission_bytes(kind: str) -> bytes:
    """The file a learner of ``kind`` hands in."""
    import nbformat

    if kind == "not a notebook":
        return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    release, solution = (nbformat.read(p, as_version=4) for p in (RELEASE, SOLUTION))
    right = _answered(release, solution)
    affine = next(c.source for c in right.cells if "def affine_combine(" in c.source)
    if RIGHT_AFFINE not in affine:
        raise SystemExit(f"bench_grade: lesson 03's affine_combine no longer holds "
                         f"{RIGHT_AFFINE!r}: update WRONG_AFFINE")
    nb = {"right": right, "blank": release,
          "wrong": _with_affine(right, affine.replace(RIGHT_AFFINE, WRONG_AFFINE)),
          "syntax error": _with_affine(release, SYNTAX_ERROR),
          "kernel exits": _with_affine(right, KERNEL_EXITS)}[kind]
    return nbformat.writes(nb, version=4).encode("utf-8")


def make_class(folder: Path, count: int) -> dict[str, str]:
    """``count`` submissions in ``folder``; their kinds by file name."""
    kinds = {f"{i:02d}_{KINDS[i % len(KINDS)].replace(' ', '_')}.ipynb": KINDS[i % len(KINDS)]
             for i in range(count)}
    data = {kind: submission_bytes(kind) for kind in set(kinds.values())}
    for name, kind in kinds.items():
        (folder / name).write_bytes(data[kind])
    return kinds


EXPECTED = {  # (status, score) of each kind's row
    "right": ("ran", 4), "wrong": ("ran", 3), "blank": ("ran", 0),
    "syntax error": ("ran", 0), "kernel exits": ("kernel died", 1),  # blelloch ran before
    "not a notebook": ("not a notebook", 0),
}


# --------------------------------------------------------------------------------------------
# Alone: the assembled notebook, executed by nbclient
# --------------------------------------------------------------------------------------------

def time_alone(kind: str, runs: int = 2) -> float | None:
    """Seconds nbclient takes to execute the notebook the grader runs for ``kind``, the best of
    ``runs`` (the first also pays for cold imports and for writing Numba's cache, which every
    graded run finds written); None for a kind that starts no kernel."""
    times = [_time_alone_once(kind) for _ in range(runs)]
    return None if times[0] is None else min(times)


def _time_alone_once(kind: str) -> float | None:
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    from minirec.grading import load_release
    from minirec.grading._assemble import Assembled, assemble
    from minirec.notebooks import current_env_kernel_manager

    run = assemble(submission_bytes(kind), load_release(RELEASE))
    if not isinstance(run, Assembled):
        return None
    with tempfile.TemporaryDirectory(prefix="bench-grade-alone-") as cwd:
        client = NotebookClient(copy.deepcopy(run.nb), kernel_name="python3", allow_errors=True,
                                kernel_manager_class=current_env_kernel_manager(),
                                resources={"metadata": {"path": cwd}}, timeout=600,
                                shutdown_kernel="immediate")  # as the grader ends its kernels
        start = time.perf_counter()
        try:
            client.execute(env={**os.environ, "TQDM_DISABLE": "1"})
        except DeadKernelError:
            pass  # the kernel that exits: timed until it died, as the grader's run is
        return time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Graded
# --------------------------------------------------------------------------------------------

def graded(folder: Path, jobs: int):
    """Grade ``folder`` with ``jobs``; (report, wall seconds, CSV text without seconds)."""
    from minirec import grading

    start = time.perf_counter()
    report = grading.grade(folder, release=RELEASE, jobs=jobs, progress=False)
    wall = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="bench-grade-csv-") as scratch:
        out = Path(scratch, "grades.csv")
        grading.write_csv(report, out)
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    seconds = rows[0].index("seconds")
    return report, wall, [r[:seconds] + r[seconds + 1:] for r in rows]


def check_rows(report, kinds: dict[str, str]) -> None:
    """Every row is what its kind should get."""
    for sub, result in report.rows:
        got = (result.status, report.score(result))
        if got != EXPECTED[kinds[sub.name]]:
            raise SystemExit(f"bench_grade: {sub.name} got {got}, expected "
                             f"{EXPECTED[kinds[sub.name]]}: {result.detail}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} submissions (smoke)")
    ap.add_argument("--count", type=int, default=None, help=f"submissions (default {FULL_COUNT})")
    ap.add_argument("--json", metavar="PATH", help="also write the header and rows as JSON")
    args = ap.parse_args(argv)
    count = args.count or (QUICK_COUNT if args.quick else FULL_COUNT)
    if count < 1:
        raise SystemExit("bench_grade: --count must be at least 1")

    from minirec import grading

    sandboxed, why = grading.sandbox_available()
    info = machine(load_average=load_average(), cores=grading.default_jobs(),
                   sandbox=sandboxed)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, {info['cores']} for "
          f"this process, load {info['load_average']:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as scratch:
        folder = Path(scratch, "submissions")
        folder.mkdir()
        kinds = make_class(folder, count)
        tally = {k: sum(v == k for v in kinds.values()) for k in KINDS}
        print(f"class: {count} submissions of lesson 03 ("
              + ", ".join(f"{n} {k}" for k, n in tally.items() if n) + "); sandbox "
              + ("on" if sandboxed else f"off ({why}): --jobs 2 runs one at a time"))
        alone = {kind: time_alone(kind) for kind in tally if tally[kind]}
        report_1, wall_1, csv_1 = graded(folder, 1)
        report_2, wall_2, csv_2 = graded(folder, 2)
    check_rows(report_1, kinds)
    if csv_1 != csv_2:
        raise SystemExit("bench_grade: the CSVs of --jobs 1 and --jobs 2 differ")

    ratio = wall_1 / wall_2
    alone_total = sum(alone[kinds[s.name]] or 0.0 for s, _r in report_1.rows)
    in_kernel = sum(r.seconds for _s, r in report_1.rows)
    overhead = (wall_1 - alone_total) / count
    kernel_part = (in_kernel - alone_total) / count
    rest = (wall_1 - in_kernel) / count

    print("\nalone (nbclient, no grader, no sandbox), per kind:")
    for kind, seconds in alone.items():
        mean_graded = [r.seconds for s, r in report_1.rows if kinds[s.name] == kind]
        shown = "no kernel" if seconds is None else f"{seconds:6.2f} s"
        print(f"  {kind:<15} {shown:>9}   in the grader (--jobs 1, the CSV's seconds): "
              f"{sum(mean_graded) / len(mean_graded):6.2f} s")
    print(f"\n--jobs 1: {wall_1:7.1f} s   ({wall_1 / count:.2f} s a submission)")
    print(f"--jobs 2: {wall_2:7.1f} s   ({wall_2 / count:.2f} s a submission)"
          + ("" if report_2.jobs == 2 else f"   [{report_2.jobs_note}]"))
    print(f"ratio --jobs 1 / --jobs 2: {ratio:.2f}×")
    print(f"grader's overhead per submission: {overhead:+.2f} s = kernel's run in the grader "
          f"{kernel_part:+.2f} s + outside it {rest:+.2f} s (alone: {alone_total / count:.2f} s "
          "a submission)")
    measured = sandboxed and report_2.jobs == 2 and not args.quick and count >= 10
    met = ratio >= GOAL_RATIO if measured else None
    word = {True: "met", False: "NOT met", None: "not judged (--quick, a small class or no "
            "sandbox)"}[met]
    print(f"\nGoals\ngoal: {GOAL}: {word} ({ratio:.2f}×)")

    if args.json:
        rows = [{"method": "grade --jobs 1", "best_ms": wall_1 * 1e3, "submissions": count},
                {"method": "grade --jobs 2", "best_ms": wall_2 * 1e3, "submissions": count,
                 "jobs_run": report_2.jobs},
                {"method": "alone (nbclient), summed", "best_ms": alone_total * 1e3,
                 "submissions": count}]
        with open(args.json, "w") as f:
            json.dump({"benchmark": "grade", "date": now, "machine": info, "quick": args.quick,
                       "class": tally, "rows": rows, "ratio": ratio,
                       "overhead_s": {"per_submission": overhead, "kernel_run": kernel_part,
                                      "outside_kernel": rest},
                       "alone_s": alone,
                       "goals": [{"goal": GOAL, "met": met, "detail": f"{ratio:.2f}×"}]},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
