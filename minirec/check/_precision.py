"""Results that are right but for a tiny error: float32 rounding (said first: a float32 array
somewhere), or a small systematic term such as an ε in a denominator (said before float32: its
error has one sign everywhere, rounding errs both ways)."""

from __future__ import annotations

import numpy as np

from minirec.check._evidence import _all, _Evidence, _finite, _Pair, _scale

__all__ = ["FLOAT32_ROUNDING", "FLOAT32_ULPS", "float32_rounding", "float32_tolerances",
           "systematic_bias"]

#: A value computed in float32 is within FLOAT32_ULPS · 2^-24 · (|expected| + scale) of the
#: float64 one, scale the largest finite |expected| of its tensor (a few roundings of 2^-24).
FLOAT32_ULPS = 64

FLOAT32_ROUNDING = ("float32 rounding in your computation: your values agree with the expected "
                    "ones to float32's precision (2^-24 ≈ 6e-8 relative), not to the check's "
                    "1e-8 — a float32 array or tensor somewhere (np.float32, torch.tensor(...) "
                    "of Python floats, .float()) rounds every value it touches; keep float64 "
                    "throughout (or, if you added a small ε for safety, leave it out)")

#: A systematic error is sought below this relative size, on at least this many values (the
#: chance that rounding errs the same way on all of them is 2^-(n−1)); relative differences
#: below NOISE are float64 rounding (another order of the same sums) and are left out.
BIAS_LIMIT = 1e-3
BIAS_MIN_VALUES = 10
NOISE = 1e-13


def _shapes_all_right(ev: _Evidence) -> bool:
    """The learner returned every tensor of every compared case, with the right shape."""
    if any(isinstance(m, BaseException) for m in ev.learner):
        return False
    compared = sum(len(exp) for exp, m in zip(ev.expected, ev.learner, strict=True)
                   if isinstance(m, dict))
    return bool(ev.wrong) and len(ev.pairs) == compared


def _same_infinities(p: _Pair) -> bool:
    """Where the expected value is ±inf the learner's is the same infinity, and the learner's
    is not an integer array."""
    fin = _finite(p.expected)
    return bool((p.got[~fin] == p.expected[~fin]).all()) and not np.issubdtype(
        np.dtype(p.got_dtype), np.integer)


def float32_rounding(ev: _Evidence) -> bool:
    """Every wrong tensor of every case is within float32 rounding of the expected one (and the
    learner returned right shapes everywhere)."""
    if not _shapes_all_right(ev):
        return False

    def rounded(p: _Pair) -> bool:
        if not _same_infinities(p):
            return False                               # equal infinities only, no NaN
        fin = _finite(p.expected)
        e, a = p.expected[fin], p.got[fin]
        return bool((np.abs(a - e) <= FLOAT32_ULPS * 2.0**-24 * (np.abs(e) + _scale(e))).all())
    return _all(ev.wrong, rounded)


def float32_tolerances(ev: _Evidence) -> dict[str, tuple[float, float]] | None:
    """Tolerances that admit float32 rounding, for matching suspects against a learner whose
    outputs are float32 (None when they are not)."""
    if not any(np.dtype(p.got_dtype) in (np.float32, np.float16) for p in ev.pairs):
        return None
    tol = FLOAT32_ULPS * 2.0**-24
    return {name: (tol, tol) for name in ev.ex.shapes}


def _relative_errors(p: _Pair) -> np.ndarray | None:
    """yours / expected − 1 at every finite, non-zero expected element of a tensor where it is
    above float64 noise (None where the learner's value there is not finite or has the other
    sign)."""
    e, a = p.expected, p.got
    where = _finite(e) & (e != 0)
    if not _finite(a[where]).all():
        return None
    ratio = a[where] / e[where]
    if not (ratio > 0).all():
        return None
    rel = ratio - 1.0
    return rel[np.abs(rel) > NOISE]


def systematic_bias(ev: _Evidence) -> str | None:
    """Float64 results off by less than 1e-3 relative, and all in the same direction (all
    smaller in magnitude than expected, or all larger) wherever they differ from it by more
    than float64 noise, on ten values or more: a small term such as an ε, not rounding (which
    errs both ways)."""
    if not _shapes_all_right(ev) or any(np.dtype(p.got_dtype) != np.float64 for p in ev.pairs):
        return None
    if not _all(ev.wrong, _same_infinities):
        return None
    errors = [_relative_errors(p) for p in ev.wrong]
    if any(e is None for e in errors):
        return None
    rel = np.concatenate(errors)
    if rel.size < BIAS_MIN_VALUES or not (np.abs(rel) < BIAS_LIMIT).all():
        return None
    if not ((rel < 0).all() or (rel > 0).all()):
        return None
    return _bias_message(ev, rel)


def _bias_message(ev: _Evidence, rel: np.ndarray) -> str:
    """The diagnosis of a small error of one sign: its size, its direction, its usual causes."""
    names, lo, hi = ev.names(ev.wrong), float(np.abs(rel).min()), float(np.abs(rel).max())
    head = (f"your {names} is slightly {'smaller' if rel[0] < 0 else 'larger'} in magnitude "
            f"than the expected value wherever it differs ({rel.size} values, by {lo:.1e} to "
            f"{hi:.1e} relative), never {'larger' if rel[0] < 0 else 'smaller'}: a small "
            f"systematic term, not float32 rounding (which errs both ways)")
    if rel[0] < 0:
        return (f"{head} — e.g. an ε added to a denominator, x / (d + ε), shrinks every result "
                f"a little; leave it out (no case divides by zero)")
    return (f"{head} — e.g. an ε added to a numerator or inside a log or a square root; leave "
            f"it out (no case needs it)")
