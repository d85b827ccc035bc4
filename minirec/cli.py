"""The ``minirec`` command: regenerate the notebooks from ``lessons/`` and build the website;
run a learner's exercise notebooks; grade a folder of submissions.

    minirec build [--no-execute] [--no-book] [--check] [--timeout S] [LESSON ...]
    minirec book
    minirec check [--timeout S] NOTEBOOK ...
    minirec grade SUBMISSIONS_DIR --out grades.csv [--release NOTEBOOK] [--timeout S]
                  [--sandbox auto|on|off] [--memory BYTES] [--hide PATH ...]
                  [--feedback DIR] [--max-bytes N] [--jobs N] [--no-progress]

``check`` and ``grade`` only parse and print here; the engine is :mod:`minirec.grading`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minirec import notebooks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minirec",
        description="minirec: lessons -> notebooks -> website; check and grade exercise notebooks.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build = commands.add_parser(
        "build",
        help="regenerate solutions/ and exercises/ from lessons/, then build the website",
        description="Regenerate solutions/NN_slug.ipynb (executed) and exercises/NN_slug.ipynb "
        "(blanked) from lessons/NN_slug.py, copy the solutions into book/lessons/, and build "
        "the website into book/_build/html/ (jupyter-book; any warning fails the build).",
    )
    build.add_argument(
        "lessons",
        nargs="*",
        metavar="LESSON",
        help="lessons to regenerate: 01_cells, 01 or lessons/01_cells.py (default: all; the "
        "website always shows every lesson in solutions/)",
    )
    build.add_argument(
        "--no-execute",
        action="store_true",
        help="do not run the lessons: solution notebooks are written without outputs "
        "(quick look; do not commit them)",
    )
    build.add_argument("--no-book", action="store_true", help="do not build the website")
    build.add_argument(
        "--check",
        action="store_true",
        help="also check each blank exercise notebook: run its exercise and check cells (and "
        "the cells they use) and fail unless exactly its check cells raise NotAttempted, and "
        "fail if a cell not run uses a name an exercise defines",
    )
    build.add_argument(
        "--timeout",
        type=int,
        default=notebooks.CELL_TIMEOUT_S,
        metavar="S",
        help="time limit per notebook cell, in seconds (default "
        f"{notebooks.CELL_TIMEOUT_S}); raise it when other programs keep the cores busy",
    )
    commands.add_parser(
        "book",
        help="build only the website, from the notebooks already in solutions/",
        description="Copy solutions/*.ipynb into book/lessons/ and build the website into "
        "book/_build/html/ without executing anything.",
    )
    _add_check(commands)
    _add_grade(commands)
    return parser


def _add_check(commands) -> None:
    from minirec.grading import CHECK_TIMEOUT_S

    check = commands.add_parser(
        "check",
        help="run your filled-in exercise notebooks and report each exercise",
        description="Run each notebook from top to bottom in a fresh kernel (in the notebook's "
        "folder; the file is not modified) and print, per exercise, passed / not yet "
        "attempted / failed with the check's diagnosis. Exit status 0 only when every "
        "attempted exercise passes.",
    )
    check.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                       help="exercise notebooks, e.g. exercises/01_cells.ipynb")
    check.add_argument("--timeout", type=float, default=CHECK_TIMEOUT_S, metavar="S",
                       help=f"time limit per notebook, in seconds (default {CHECK_TIMEOUT_S})")


def _add_grade(commands) -> None:
    from minirec.grading import DEFAULT_MEMORY_BYTES, GRADE_TIMEOUT_S, MAX_NOTEBOOK_BYTES

    grade = commands.add_parser(
        "grade",
        help="grade a folder of submitted exercise notebooks into a CSV file",
        description="Run each submission (a .ipynb file in SUBMISSIONS_DIR, or a sub-folder "
        "holding one .ipynb) in isolation with a time limit, and write one row per "
        "submission (status, score, one column per exercise) to --out. Broken "
        "submissions are recorded and grading goes on. See `minirec.grading` for the "
        "isolation and its limits.",
    )
    grade.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="the collected notebooks")
    grade.add_argument("--out", required=True, metavar="CSV", help="the grades file to write")
    grade.add_argument("--release", metavar="NOTEBOOK",
                       help="the released exercise notebook (exercises/NN_slug.ipynb, as "
                       "`minirec build` wrote it) that every submission is graded against: "
                       "the grader runs it with each learner's exercise cells put in, and its "
                       "exercises are the columns (default: the lesson the submissions' "
                       "metadata names, from exercises/ of this repository)")
    grade.add_argument("--timeout", type=float, default=GRADE_TIMEOUT_S, metavar="S",
                       help=f"time limit per submission, in seconds (default {GRADE_TIMEOUT_S})")
    grade.add_argument("--sandbox", choices=["auto", "on", "off"], default="auto",
                       help="run kernels in a read-only sandbox (Linux user namespaces): auto "
                       "= where it works (default), on = refuse to grade without it, off")
    grade.add_argument("--memory", default=f"{DEFAULT_MEMORY_BYTES // 2**30}G", metavar="BYTES",
                       help="memory limit per submission, e.g. 4G or 512M, or none; a "
                       "submission over it is 'out of memory' (default "
                       f"{DEFAULT_MEMORY_BYTES // 2**30}G)")
    grade.add_argument("--hide", action="append", default=[], metavar="PATH",
                       help="a file or folder the sandboxed kernels must not see (the "
                       "submissions, the grades, the feedback, the repository's lessons/ and "
                       "solutions/ are hidden anyway); may be repeated")
    grade.add_argument("--max-bytes", type=int, default=MAX_NOTEBOOK_BYTES, metavar="N",
                       help=f"larger notebooks are not run (default {MAX_NOTEBOOK_BYTES})")
    grade.add_argument("--feedback", metavar="DIR",
                       help="also write DIR/<submission>.txt: each exercise's status with the "
                       "check's table and diagnosis, to hand back")
    grade.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="submissions graded at once, each in its own kernel and sandbox "
                       "with its own limits (default: the number of cores); without the "
                       "sandbox always one at a time")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_check(args) -> int:
    from minirec import grading

    if args.timeout <= 0:
        print("minirec check: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    all_ok = True
    for name in args.notebooks:
        print(f"Running {name} in a fresh kernel (time limit {args.timeout:g} s) ...",
              file=sys.stderr, flush=True)
        result = grading.check_notebook(name, time_limit=args.timeout)
        print(grading.format_check(name, result), flush=True)
        all_ok = all_ok and result.ok()
    return 0 if all_ok else 1


def _run_grade(args) -> int:
    from minirec import grading

    folder, out = Path(args.submissions), Path(args.out)
    if not folder.is_dir():
        print(f"minirec grade: {folder} is not a folder", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("minirec grade: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        memory = grading.parse_bytes(args.memory)
    except ValueError as exc:
        print(f"minirec grade: --memory: {exc}", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("minirec grade: --jobs must be at least 1", file=sys.stderr)
        return 2
    exclude = [out] + ([Path(args.feedback)] if args.feedback else [])
    try:
        report = grading.grade(folder, release=args.release, time_limit=args.timeout,
                               sandbox=args.sandbox,
                               max_bytes=args.max_bytes, exclude=exclude,
                               progress=not args.no_progress, memory=memory,
                               hide=[Path(p) for p in args.hide], jobs=args.jobs)
    except RuntimeError as exc:
        print(f"minirec grade: {exc}", file=sys.stderr)
        return 2
    grading.write_csv(report, out)
    print(grading.format_summary(report))
    if args.feedback:
        written = grading.write_feedback(report, args.feedback)
        print(f"Wrote {len(written)} feedback files into {args.feedback}")
    print(f"Wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "build" and args.timeout <= 0:
        print("minirec build: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    if args.command == "check":
        return _run_check(args)
    if args.command == "grade":
        return _run_grade(args)
    try:
        root = notebooks.find_root()
        if args.command == "build":
            notebooks.build(
                args.lessons or None,
                execute=not args.no_execute,
                book=not args.no_book,
                check=args.check,
                root=root,
                timeout=args.timeout,
            )
            if args.no_book:
                return 0
        else:
            notebooks.sync_book(root=root)
        index = notebooks.build_book(root=root)
    except (notebooks.LessonError, notebooks.BookBuildError, FileNotFoundError) as exc:
        print(f"minirec {args.command}: {exc}", file=sys.stderr)
        return 1
    shown = Path(index).relative_to(root) if Path(index).is_relative_to(root) else index
    print(f"\nThe website is built. Open {shown} in a browser:\n  {Path(index).as_uri()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
