"""Submissions: the folder an instructor collected, read into memory before anything runs.

A submission is a ``*.ipynb`` file directly in the folder (named by its file name) or a
sub-folder holding exactly one ``*.ipynb`` at any depth (named by the folder;
``.ipynb_checkpoints`` are ignored); other entries are ignored and listed. A folder and a
file of the same name (``alice/`` and ``alice.ipynb``) are one row, ``name collision``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._statuses import NAME_COLLISION, NOT_A_NOTEBOOK, TOO_LARGE

MAX_NOTEBOOK_BYTES = 50_000_000


@dataclass
class Submission:
    """One submission: its name, where it came from, its bytes (read before anything runs) or
    why it could not be read."""

    name: str
    source: Path
    data: bytes | None = None
    problem: str | None = None
    problem_status: str = NOT_A_NOTEBOOK


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and not p.is_symlink())


def collect_submissions(folder, *, max_bytes: int = MAX_NOTEBOOK_BYTES,
                        exclude: Iterable[Path] = ()) -> tuple[list[Submission], list[str]]:
    """Read every submission of ``folder`` into memory; return them and the ignored entries."""
    folder = Path(folder)
    excluded = {Path(p).resolve() for p in exclude}
    submissions, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.resolve() in excluded:
            continue
        if entry.is_symlink():
            ignored.append(f"{entry.name} (a symbolic link)")
            continue
        if entry.is_dir():
            found = _notebooks_in(entry)
            sub = Submission(entry.name, found[0] if len(found) == 1 else entry)
            if not found:
                sub.problem = "the folder holds no .ipynb file"
            elif len(found) > 1:
                names = ", ".join(str(p.relative_to(entry)) for p in found[:5])
                sub.problem = f"the folder holds {len(found)} notebooks ({names}): keep one"
        elif entry.suffix == ".ipynb" and entry.is_file():
            sub = Submission(entry.name, entry)
        else:
            ignored.append(f"{entry.name} (not a .ipynb file or a folder)")
            continue
        if sub.problem is None:
            size = sub.source.stat().st_size
            if size > max_bytes:
                sub.problem, sub.problem_status = (f"{size} bytes, over the limit of "
                                                   f"{max_bytes}"), TOO_LARGE
            else:
                try:
                    sub.data = sub.source.read_bytes()
                except OSError as exc:
                    sub.problem = f"cannot read it: {exc.strerror}"
        submissions.append(sub)
    return _one_row_per_name(folder, submissions), ignored


def _one_row_per_name(folder: Path, submissions: list[Submission]) -> list[Submission]:
    """A folder ``alice/`` beside ``alice.ipynb`` is one learner twice: one row saying so
    (``name collision``), neither run."""
    by_name: dict[str, list[Submission]] = {}
    for sub in submissions:
        by_name.setdefault(sub.name.removesuffix(".ipynb"), []).append(sub)
    rows = []
    for name, subs in by_name.items():
        if len(subs) == 1:
            rows.append(subs[0])
            continue
        both = " and ".join(s.name + ("/" if s.name == name else "") for s in subs)
        rows.append(Submission(name, folder / name, problem=f"both {both} were submitted: "
                               "keep one", problem_status=NAME_COLLISION))
    return rows
