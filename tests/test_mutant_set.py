"""The mutant set as a whole (issue 11): over every module of tests/mutants/, typical wrong
answers are all rejected, few get only the generic diagnosis, and every correct answer written
differently (``correct`` and the module's optional ``ALTERNATIVES``) is accepted.

Each mutant module is mapped to its check through the ``EXERCISES`` tables of
tests/test_check_*.py (no table of its own). ``python -m pytest -s tests/test_mutant_set.py``
prints the counts per lesson and in total.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from minirec.check import GENERIC, CheckFailed, NotAttempted

TESTS = Path(__file__).resolve().parent
LESSONS = TESTS.parent / "lessons"

MIN_WRONG_ANSWERS = 60
MAX_GENERIC_SHARE = 0.15


def _import(stem: str):
    """A module of tests/ as pytest or `python -m pytest` imports it (tests/ or the root on
    sys.path)."""
    for name in (stem, f"tests.{stem}"):
        if name in sys.modules:
            return sys.modules[name]
    try:
        return importlib.import_module(f"tests.{stem}")
    except ImportError:
        return importlib.import_module(stem)


@cache
def exercise_tables() -> dict:
    """name → (check, reference, mutants module, exercise factory), merged from the
    EXERCISES tables of tests/test_check_*.py."""
    merged = {}
    for path in sorted(TESTS.glob("test_check_*.py")):
        merged.update(getattr(_import(path.stem), "EXERCISES", {}))
    return merged


def mutant_module_stems() -> list[str]:
    return sorted(p.stem for p in (TESTS / "mutants").glob("*.py") if p.stem != "__init__")


@cache
def lesson_of(check_name: str) -> str:
    """The lesson whose notebook calls the check, e.g. ``09_neural_memory``."""
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.py")):
        if f"{check_name}(" in path.read_text(encoding="utf-8"):
            return path.stem
    return "(no lesson)"


@dataclass(frozen=True)
class Verdict:
    lesson: str
    exercise: str
    mutant: str
    outcome: str            # "accepted", "generic" or "named"
    diagnosis: str | None


def judge(check, mutant) -> tuple[str, str | None]:
    """Run one wrong answer through its check: accepted, generic or named. A mutant with no
    diagnosis, with the generic one, or registered with the generic text counts as generic."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check(mutant.fn)
    except NotAttempted as exc:
        return "not attempted", str(exc)
    except CheckFailed as exc:
        generic = (exc.diagnosis is None or exc.diagnosis.startswith(GENERIC[:40])
                   or mutant.phrase in GENERIC)
        return ("generic" if generic else "named"), exc.diagnosis
    return "accepted", None


@cache
def verdicts() -> tuple[Verdict, ...]:
    out = []
    for name, spec in exercise_tables().items():
        check, _reference, module = spec[:3]
        for m in module.MUTANTS:
            outcome, diagnosis = judge(check, m)
            out.append(Verdict(lesson_of(check.__name__), name, m.name, outcome, diagnosis))
    return tuple(out)


def counts_table(rows) -> str:
    """Per lesson and in total: wrong answers, accepted, generic, named."""
    lessons = sorted({v.lesson for v in rows})
    lines = [f"{'lesson':<24}{'wrong answers':>14}{'accepted':>10}{'generic':>9}{'named':>7}"]

    def line(label, vs):
        n = {k: sum(v.outcome == k for v in vs) for k in ("accepted", "generic", "named")}
        return f"{label:<24}{len(vs):>14}{n['accepted']:>10}{n['generic']:>9}{n['named']:>7}"
    lines += [line(lesson, [v for v in rows if v.lesson == lesson]) for lesson in lessons]
    lines.append(line("total", list(rows)))
    return "\n".join(lines)


def test_every_mutant_module_is_mapped_to_its_check():
    mapped = {spec[2].__name__.rsplit(".", 1)[-1] for spec in exercise_tables().values()}
    assert set(mutant_module_stems()) == mapped


def test_every_check_is_called_by_a_lesson():
    assert all(lesson_of(spec[0].__name__) != "(no lesson)" for spec in exercise_tables().values())


def test_the_mutant_set_is_rejected_and_named(capsys):
    rows = verdicts()
    with capsys.disabled():
        print("\n" + counts_table(rows))
    accepted = [f"{v.exercise}.{v.mutant}" for v in rows if v.outcome == "accepted"]
    odd = [f"{v.exercise}.{v.mutant}: {v.diagnosis}" for v in rows if v.outcome == "not attempted"]
    generic = [v for v in rows if v.outcome == "generic"]
    assert len(rows) >= MIN_WRONG_ANSWERS
    assert accepted == [], accepted
    assert odd == [], odd
    assert len(generic) <= MAX_GENERIC_SHARE * len(rows), [f"{v.exercise}.{v.mutant}"
                                                           for v in generic]


def _alternatives():
    pairs = []
    for name, spec in exercise_tables().items():
        module = spec[2]
        for fn in (module.correct, *getattr(module, "ALTERNATIVES", ())):
            pairs.append(pytest.param(name, fn, id=f"{name}-{fn.__name__}"))
    return pairs


@pytest.mark.parametrize("name,answer", _alternatives())
def test_every_correct_alternative_is_accepted(name, answer, capsys):
    exercise_tables()[name][0](answer)
    assert capsys.readouterr().out.startswith(f"✓ {name}: passed")


def test_some_modules_have_alternatives():
    modules = {spec[2] for spec in exercise_tables().values()}
    assert sum(bool(getattr(m, "ALTERNATIVES", ())) for m in modules) >= 5
