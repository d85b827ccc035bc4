"""Typical wrong answers to the cell exercises, written as a learner would write them.

Each module holds, for one exercise: ``blank`` (the stub the exercise notebook ships),
``correct`` (a right answer written differently from the reference), ``MUTANTS``, a list of
:class:`Mutant`: the wrong function, a phrase its diagnosis must contain and the tensors the
failure table must mark wrong (None where the function crashes before returning), and
optionally ``ALTERNATIVES``, further right answers written differently again (a loop for a
vectorised form, torch ops, scipy) that the check must accept. tests/test_mutant_set.py
measures the whole set: every mutant rejected, at most 15 % with only the generic diagnosis,
every alternative accepted.

These are independent of the suspects in ``minirec.check.cells``: a mutant is diagnosed only
if the check's suspect, written from the equations, computes exactly what the learner's code
computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    fn: Callable
    phrase: str
    wrong: frozenset[str] | None = None  # tensors marked ✗; None when no table is expected

    @property
    def name(self) -> str:
        return self.fn.__name__


def mutant(registry: list, phrase: str, wrong=None):
    """Decorator: register ``fn`` in ``registry`` with the diagnosis phrase it must get."""
    def register(fn):
        registry.append(Mutant(fn, phrase, None if wrong is None else frozenset(wrong)))
        return fn
    return register


# --- the assertions every check test makes about its mutants and blanks ---------------------

def table_marks(text: str, names) -> dict[str, str]:
    """tensor name → "ok" / "✗" as printed in a check's failure table."""
    marks = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in names and fields[-1] in ("ok", "✗"):
            marks[fields[0]] = fields[-1]
    return marks


def assert_blank_not_attempted(check, blank):
    """The shipped stub must give NotAttempted, not a failure or a crash in the checker."""
    import pytest

    from minirec.check import NotAttempted
    with pytest.raises(NotAttempted, match=r"not yet attempted: blank still raises "
                                           r"NotImplementedError"):
        check(blank)


def assert_rejected_with_diagnosis(check, name: str, m: Mutant):
    """``check`` rejects the mutant with its diagnosis phrase, and its failure table marks
    exactly the tensors the mutant gets wrong."""
    import pytest

    from minirec.check import CheckFailed, NotAttempted
    with pytest.raises(CheckFailed) as info:
        check(m.fn)
    exc = info.value
    assert not isinstance(exc, NotAttempted)
    message = str(exc)
    assert message.startswith(f"{name} is wrong on case ")
    assert m.phrase in message, message
    if m.wrong is None:
        assert exc.comparison is None
        return exc
    assert exc.comparison is not None, message
    assert set(exc.comparison.failed) == m.wrong, message
    names = [r.name for r in exc.comparison.rows]
    assert table_marks(message, names) == {n: "✗" if n in m.wrong else "ok" for n in names}, message
    return exc


# --- the contract every lesson's checks are tested against ----------------------------------

class CheckContract:
    """What every exercise check must do, tested over a table of a lesson's exercises.

    ``EXERCISES``: name → ``(check, reference, mutants_module, exercise_factory, ...)`` where
    ``check`` is the ``minirec.check`` function, ``reference`` a right answer, the module holds
    ``blank``, ``correct`` and ``MUTANTS``, and ``exercise_factory()`` builds the check's
    :class:`minirec.check.Exercise`. A test module subclasses it::

        class TestScanChecks(CheckContract):
            EXERCISES = EXERCISES

    and the root ``conftest.py`` parametrizes each method over the table (``name``, the
    ``name, mutant`` pairs, or the ``name, suspect_index`` pairs).
    """

    EXERCISES: dict = {}
    MIN_MUTANTS = 3          # typical wrong answers per exercise
    MIN_SUSPECTS = 4         # diagnoses per exercise

    def test_mutant_library_is_large_enough(self):
        per_check = {name: len(spec[2].MUTANTS) for name, spec in self.EXERCISES.items()}
        assert all(n >= self.MIN_MUTANTS for n in per_check.values()), per_check

    def test_reference_passes_on_every_case(self, name, capsys):
        check, reference, _module, exercise = self.EXERCISES[name][:4]
        assert check(reference) is None
        n_cases = len(exercise().cases)
        assert capsys.readouterr().out == f"✓ {name}: passed on {n_cases} cases\n"

    def test_independent_correct_solution_passes(self, name, capsys):
        check, _reference, module = self.EXERCISES[name][:3]
        check(module.correct)
        assert capsys.readouterr().out.startswith(f"✓ {name}: passed")

    def test_blank_is_not_attempted(self, name):
        check, _reference, module = self.EXERCISES[name][:3]
        assert_blank_not_attempted(check, module.blank)

    def test_mutant_is_rejected_with_its_diagnosis(self, name, mutant):
        assert_rejected_with_diagnosis(self.EXERCISES[name][0], name, mutant)

    def test_enough_suspects(self, name):
        assert len(self.EXERCISES[name][3]().suspects) >= self.MIN_SUSPECTS

    def test_every_suspect_diagnoses_itself(self, name, suspect_index):
        """Each suspect is wrong, and reachable: no earlier suspect shadows it."""
        import pytest

        from minirec.check import CheckFailed
        check, *_rest = self.EXERCISES[name]
        suspect = self.EXERCISES[name][3]().suspects[suspect_index]
        with pytest.raises(CheckFailed) as info:
            check(suspect.fn)
        assert info.value.diagnosis.endswith(suspect.message), suspect.message
