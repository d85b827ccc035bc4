"""The time summary at the end of ``.ci/run``: seconds per phase, per lesson, and what fifteen
lessons would take.

    python .ci/times.py PHASES [JUNIT_XML] [--lessons-now N] [--lessons-then 15] [--goal-min 25]

``PHASES``: the lines ``.ci/run`` wrote, ``<seconds since start>\\t<phase name>`` at the start of
each phase and ``<seconds>\\tend`` at the end. ``JUNIT_XML``: pytest's ``--junitxml`` report of
the test phase. Per lesson it shows the strict nbval run of ``solutions/NN_slug.ipynb`` (the
lesson's one execution in CI: every cell's setup, call and teardown, so the kernel's start too)
and the tests of ``tests/test_pipeline.py`` parametrized by the lesson (its blank exercise run
among them).

Two projections for more lessons: from the per-lesson costs (this run plus the mean lesson's
nbval and pipeline seconds for each lesson added), which leaves out the unit and check tests a
new mechanism brings; and one that errs high, judged against the goal: the phases that install
(the virtual environment, the packages, Chromium) stay as measured, and everything else, tests
and site, is scaled by lessons then / lessons now, as if every test grew with the lessons (the
mechanisms' unit and check tests roughly do; the fixture-lesson and site tests do not).

Exit status 1 when a lesson's nbval run took longer than ``minirec.notebooks.LESSON_LIMIT_S``
(the limit ``minirec build`` enforces where ``CI`` is set), else 0. Standard library only
(``minirec`` is read for the limit where it is installed).
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

INSTALL_PHASES = ("create .venv", "install", "chromium")  # phase names that start with these
LESSONS = "lessons/[0-9][0-9]_*.py"  # from the repository root, where .ci/run runs this
NBVAL_CLASS = re.compile(r"^solutions\.(\d\d_\w+)\.ipynb$")
PIPELINE_CLASS = "tests.test_pipeline"
LESSON_PARAM = re.compile(r"\[(\d\d_[a-z0-9_]+?)(?:-[^\]]*)?\]$")


def read_phases(text: str) -> list[tuple[str, float]]:
    """``(name, seconds)`` per phase, from the start marks (the last phase ends at ``end``, or
    at the last mark when the run stopped before it)."""
    marks = []
    for line in text.splitlines():
        seconds, _, name = line.partition("\t")
        if name:
            marks.append((name, float(seconds)))
    return [(name, marks[i + 1][1] - start)
            for i, (name, start) in enumerate(marks[:-1]) if name != "end"]


def read_cases(xml_text: str) -> list[tuple[str, str, float]]:
    """``(classname, name, seconds)`` of every test case in a JUnit XML report."""
    root = ET.fromstring(xml_text)
    return [(case.get("classname", ""), case.get("name", ""), float(case.get("time") or 0))
            for case in root.iter("testcase")]


def lesson_costs(cases) -> dict[str, dict[str, float]]:
    """Per lesson stem: ``nbval`` (its solution notebook) and ``pipeline`` (its parametrized
    tests in tests/test_pipeline.py) seconds."""
    costs: dict[str, dict[str, float]] = defaultdict(lambda: {"nbval": 0.0, "pipeline": 0.0})
    for classname, name, seconds in cases:
        nbval = NBVAL_CLASS.match(classname)
        if nbval:
            costs[nbval.group(1)]["nbval"] += seconds
            continue
        param = LESSON_PARAM.search(name)
        if classname == PIPELINE_CLASS and param:
            costs[param.group(1)]["pipeline"] += seconds
    return dict(sorted(costs.items()))


def is_install(phase: str) -> bool:
    return phase.startswith(INSTALL_PHASES)


def projection(phases, lessons_now: int, lessons_then: int) -> float:
    """Seconds for ``lessons_then`` lessons: install phases as measured, the rest scaled."""
    fixed = sum(s for name, s in phases if is_install(name))
    scaled = sum(s for name, s in phases if not is_install(name))
    return fixed + scaled * lessons_then / max(lessons_now, 1)


def lesson_limit() -> float | None:
    try:
        from minirec.notebooks import LESSON_LIMIT_S
    except ImportError:
        return None
    return float(LESSON_LIMIT_S)


def minutes(seconds: float) -> str:
    return f"{seconds:7.0f} s  ({seconds / 60:4.1f} min)"


def report(phases, costs, *, lessons_now: int, lessons_then: int, goal_min: float,
           limit: float | None):
    """The summary's lines and the lessons over ``limit``."""
    lines = ["", "=== CI time summary", "", f"{'phase':58} seconds"]
    lines += [f"{name[:58]:58} {minutes(s)}" for name, s in phases]
    total = sum(s for _, s in phases)
    lines.append(f"{'total':58} {minutes(total)}")
    over = {}
    if costs:
        lines += ["", "per lesson (seconds): the strict nbval run of its solution notebook (its "
                  "one execution in CI) and its tests in tests/test_pipeline.py (the blank "
                  "exercise run among them)", "",
                  f"{'lesson':28} {'nbval':>7} {'pipeline':>9} {'sum':>7}"]
        for stem, c in costs.items():
            lines.append(f"{stem:28} {c['nbval']:7.1f} {c['pipeline']:9.1f} "
                         f"{c['nbval'] + c['pipeline']:7.1f}")
            if limit is not None and c["nbval"] > limit:
                over[stem] = c["nbval"]
        sums = [c["nbval"] + c["pipeline"] for c in costs.values()]
        lines.append(f"{'mean':28} {'':7} {'':9} {sum(sums) / len(sums):7.1f}")
    if costs and phases:
        n = lessons_now or len(costs)
        per_lesson = total + (lessons_then - n) * sum(sums) / len(sums)
        then = projection(phases, n, lessons_then)
        verdict = "fits" if then <= 60 * goal_min else "does NOT fit"
        lines += ["", f"projection for {lessons_then} lessons ({n} now):",
                  f"  from the per-lesson costs (this run + {lessons_then - n} x the mean "
                  f"lesson): {per_lesson / 60:.1f} min",
                  f"  erring high (install phases as measured, every other phase x "
                  f"{lessons_then}/{n}): {then / 60:.1f} min: {verdict} in {goal_min:g} min"]
    for stem, seconds in over.items():
        lines.append(f"{stem}: its solution notebook ran {seconds:.1f} s under nbval, over the "
                     f"{limit:g} s limit per lesson")
    return lines, over


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("phases", help="the phase marks .ci/run wrote")
    parser.add_argument("junit", nargs="?", help="pytest's --junitxml report (optional)")
    parser.add_argument("--lessons-now", type=int, default=len(glob.glob(LESSONS)),
                        help=f"lessons in this run (default: the number of {LESSONS})")
    parser.add_argument("--lessons-then", type=int, default=15)
    parser.add_argument("--goal-min", type=float, default=25.0)
    args = parser.parse_args(argv)
    with open(args.phases, encoding="utf-8") as f:
        phases = read_phases(f.read())
    costs = {}
    if args.junit:
        try:
            with open(args.junit, encoding="utf-8") as f:
                costs = lesson_costs(read_cases(f.read()))
        except (OSError, ET.ParseError) as exc:
            print(f"(no per-lesson times: {exc})")
    lines, over = report(phases, costs, lessons_now=args.lessons_now,
                         lessons_then=args.lessons_then, goal_min=args.goal_min,
                         limit=lesson_limit())
    print("\n".join(lines))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
