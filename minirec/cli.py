"""The ``minirec`` command: regenerate the notebooks from ``lessons/`` and build the website.

    minirec build [--no-execute] [--no-book] [--check] [LESSON ...]
    minirec book
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minirec import notebooks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minirec", description="minirec: lessons -> notebooks -> website."
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
        help="also run each blank exercise notebook and fail unless exactly its check cells "
        "raise NotAttempted",
    )
    commands.add_parser(
        "book",
        help="build only the website, from the notebooks already in solutions/",
        description="Copy solutions/*.ipynb into book/lessons/ and build the website into "
        "book/_build/html/ without executing anything.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = notebooks.find_root()
        if args.command == "build":
            notebooks.build(
                args.lessons or None,
                execute=not args.no_execute,
                book=not args.no_book,
                check=args.check,
                root=root,
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
