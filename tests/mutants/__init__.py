"""Typical wrong answers to the cell exercises, written as a learner would write them.

Each module holds, for one exercise: ``blank`` (the stub the exercise notebook ships),
``correct`` (a right answer written differently from the reference) and ``MUTANTS``, a list of
:class:`Mutant`: the wrong function, a phrase its diagnosis must contain and the tensors the
failure table must mark wrong (None where the function crashes before returning).

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
