"""Checks of exercises whose reference carries a stability guard (a max shift, a −inf guard).

Such a check runs the learner's function, and its suspects, with NumPy's overflow and
invalid-value warnings raised as ``FloatingPointError`` (``np.errstate(over="raise",
invalid="raise")``): an ``exp`` that overflows, or a ``−inf − (−inf)`` that makes a NaN, stops at
the line that made it instead of leaving an ``inf`` or ``nan`` three steps later. ``log 0 = −inf``
is an answer in log space, so division by zero stays quiet.

A function that is right on every case except the one that needs the guard fails only by that
error; :func:`run_guarded_check` then names the missing guard from the error's words. A suspect
that makes the same mistake without the guard raises where the learner's function raises, so
:func:`with_unguarded_twins` lists a mistake twice, with and without the guard, wherever the two
differ. (Each suspect's own pure-guard variant is one more suspect, reached only through
:func:`run_guarded_check`: it differs from the reference by the error alone.)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from minirec.check._core import Case, CheckFailed, Exercise, Suspect, run_check
from minirec.check._exercise import _copy

__all__ = ["raising", "run_guarded_check", "with_unguarded_twins", "softmax_overflow",
           "SOFTMAX_GUARD"]

#: What an unguarded twin of a softmax exercise's suspect adds to its message.
SOFTMAX_GUARD = "the softmax has no max shift: subtract each row's largest logit before exp"


def softmax_overflow(logits_near: int) -> str:
    """The diagnosis of a softmax without its max shift, on a check with logits near
    ``logits_near``."""
    return (f"softmax without the max shift: e^{{logit}} is inf in float64 once a logit exceeds "
            f"709, and inf / inf is NaN (the check has logits near {logits_near}). Subtract "
            f"each row's largest logit first, p = e^{{z − max z}} / Σ e^{{z − max z}}: the same "
            f"p, with every exponent ≤ 0")


def raising(fn: Callable, *, quiet: bool = False) -> Callable:
    """``fn`` run with NumPy's overflow and invalid-value warnings turned into errors;
    ``quiet`` also silences its RuntimeWarnings (a suspect's "Mean of empty slice" is not the
    learner's)."""
    @functools.wraps(fn)
    def wrapped(*args):
        with np.errstate(over="raise", invalid="raise", divide="ignore"), \
                warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args)
    return wrapped


def run_guarded_check(ex: Exercise, fn: Callable, guards: Sequence[tuple[str, str]]) -> None:
    """:func:`~minirec.check._core.run_check` of ``raising(fn)``. ``guards`` pairs the words of
    a ``FloatingPointError`` (``"overflow"``, ``"invalid value"``) with the diagnosis of the
    guard whose absence raises it; the first pair whose words appear names a failure that has
    no diagnosis yet."""
    try:
        run_check(ex, raising(fn))
    except CheckFailed as failed:
        cause = failed.__cause__
        if failed.diagnosis is None and isinstance(cause, FloatingPointError):
            for words, diagnosis in guards:
                if words in str(cause):
                    raise CheckFailed(f"{failed}\nDiagnosis: {diagnosis}",
                                      comparison=failed.comparison, diagnosis=diagnosis,
                                      case=failed.case) from cause
        raise


def _raises_floating_point_error(fn: Callable, case: Case) -> bool:
    """``fn`` raises a floating-point error on the case (overflow or an invalid value)."""
    try:
        raising(fn, quiet=True)(*_copy(case.args))
    except FloatingPointError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is the mistake's, not the guard's
        return False
    return False


def with_unguarded_twins(make_suspects: Callable[[bool], Sequence[Suspect]], missing_guard: str,
                         cases: Sequence[Case]) -> tuple[Suspect, ...]:
    """Every suspect of ``make_suspects(True)``, then the same mistakes made without the guard
    (``make_suspects(False)``), their messages followed by ``missing_guard``: those that raise a
    floating-point error on some case where the guarded one does not (elsewhere the twins
    agree, and the later one would never be reached). Each runs as the learner's function does,
    with floating-point errors raised."""
    guarded, bare = make_suspects(True), make_suspects(False)
    twins = [Suspect(f"{b.message}; and {missing_guard}", raising(b.fn, quiet=True))
             for g, b in zip(guarded, bare, strict=True)
             if any(_raises_floating_point_error(b.fn, c)
                    and not _raises_floating_point_error(g.fn, c) for c in cases)]
    return (*(Suspect(g.message, raising(g.fn, quiet=True)) for g in guarded), *twins)
