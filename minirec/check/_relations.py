"""Relations between the learner's values and the expected ones, found without a suspect: float32
rounding, NaN or inf, an input returned unchanged, outputs in the wrong order, a sign, a
constant factor, an offset, a transposition, a step in time, a case split, ...

Each detector looks at the evidence of every case (:class:`_Evidence`) and claims only what the
values show, on every case where a tensor is wrong; :data:`RELATIONS` lists them, most specific
first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minirec.check._case_split import case_split
from minirec.check._compare import _as_array
from minirec.check._evidence import (
    _all,
    _close,
    _Evidence,
    _finite,
    _first_index,
    _leaves,
    _numbers,
    _Pair,
    _scalars,
    _scale,
    evidence,
)
from minirec.check._exercise import Exercise

__all__ = ["GENERIC", "FLOAT32_ROUNDING", "FLOAT32_ULPS", "RELATIONS", "evidence", "relation",
           "generic", "float32_rounding", "float32_tolerances", "integer_division"]

#: A value computed in float32 is within FLOAT32_ULPS · 2^-24 · (|expected| + scale) of the
#: float64 one, scale the largest finite |expected| of its tensor (a few roundings of 2^-24).
FLOAT32_ULPS = 64

#: The diagnosis when nothing better is known.
GENERIC = ("no known mistake matches your result; compare your lines with the equations, "
           "starting from the tensor and index the table points to")
FLOAT32_ROUNDING = ("float32 rounding in your computation: your values agree with the expected "
                    "ones to float32's precision (2^-24 ≈ 6e-8 relative), not to the check's "
                    "1e-8 — a float32 array or tensor somewhere (np.float32, torch.tensor(...) "
                    "of Python floats, .float()) rounds every value it touches; keep float64 "
                    "throughout (or, if you added a small ε for safety, leave it out)")

_TIME_AXES = ("T", "C")
_BATCH_AXES = ("B", "N")


def float32_rounding(ev: _Evidence) -> bool:
    """Every wrong tensor of every case is within float32 rounding of the expected one (and the
    learner returned right shapes everywhere)."""
    if any(isinstance(m, BaseException) for m in ev.learner):
        return False
    compared = sum(len(exp) for exp, m in zip(ev.expected, ev.learner, strict=True)
                   if isinstance(m, dict))
    wrong = ev.wrong
    if not wrong or len(ev.pairs) < compared:       # a missing tensor or a wrong shape somewhere
        return False

    def rounded(p: _Pair) -> bool:
        fin = _finite(p.expected)
        if not (p.got[~fin] == p.expected[~fin]).all() or np.issubdtype(np.dtype(p.got_dtype),
                                                                         np.integer):
            return False                               # equal infinities only, no NaN
        e, a = p.expected[fin], p.got[fin]
        return bool((np.abs(a - e) <= FLOAT32_ULPS * 2.0**-24 * (np.abs(e) + _scale(e))).all())
    return _all(wrong, rounded)


def float32_tolerances(ev: _Evidence) -> dict[str, tuple[float, float]] | None:
    """Tolerances that admit float32 rounding, for matching suspects against a learner whose
    outputs are float32 (None when they are not)."""
    if not any(np.dtype(p.got_dtype) in (np.float32, np.float16) for p in ev.pairs):
        return None
    tol = FLOAT32_ULPS * 2.0**-24
    return {name: (tol, tol) for name in ev.ex.shapes}


def _nan_where_infinite(ev: _Evidence) -> str | None:
    """NaN where the expected value is ±inf: inf − inf or 0 · inf, an unguarded −inf."""
    for p in ev.wrong:
        mask = np.isnan(p.got) & np.isinf(p.expected)
        if mask.any():
            sign = "−" if p.expected[np.unravel_index(int(np.argmax(mask)), mask.shape)] < 0 else ""
            return (f"your {p.name} is NaN where the expected value is {sign}inf (case "
                    f"{p.case_no + 1}, at {_first_index(mask)}): an unguarded −inf — "
                    f"−inf − (−inf) and 0 · inf are NaN. Where every term is −inf (log 0: an "
                    f"empty sum, a forbidden transition) the max m is −inf too: shift by 0 "
                    f"there, m = np.where(np.isfinite(m), m, 0), and the answer stays −inf")
    return None


def _nonfinite(ev: _Evidence) -> str | None:
    """NaN or ±inf where the expected value is finite."""
    for p in ev.wrong:
        mask = ~_finite(p.got) & _finite(p.expected)
        if mask.any():
            return (f"your {p.name} has NaN or inf where the expected value is finite (case "
                    f"{p.case_no + 1}, at {_first_index(mask)}): a division by zero, an "
                    f"overflow (exp of a large value: a missing max shift), or an unguarded "
                    f"−inf (−inf − (−inf) is NaN)")
    return None


def _unchanged_input(ev: _Evidence) -> str | None:
    """The learner returned one of the inputs unchanged (an update not applied)."""
    found = []
    for p in ev.wrong:
        case = ev.ex.cases[p.case_no]
        paths = [path for name, arg in zip(ev.ex.arg_names, case.args, strict=True)
                 for path, arr in _leaves(arg, name)
                 if np.issubdtype(arr.dtype, np.number) and _close(p.got, arr.astype(np.float64))]
        if not paths:
            return None
        found.append((p.name, paths[0]))
    which = ", ".join(f"your {name} is the input {path}"
                      for name, path in dict.fromkeys(found))
    return (f"{which}, unchanged: nothing was applied to it (an update skipped, the old value "
            f"returned instead of the new one, or every term combined with it the identity)")


def _holds_other_output(ev: _Evidence) -> list[tuple[_Pair, str]] | None:
    """For every wrong tensor, the first other output whose expected value it holds; None when
    some wrong tensor holds none."""
    found = []
    for p in ev.wrong:
        others = [q for q, value in ev.expected[p.case_no].items() if q != p.name
                  and _close(p.got, np.asarray(_as_array(value), np.float64))]
        if not others:
            return None
        found.append((p, others[0]))
    return found


def _swapped_outputs(ev: _Evidence) -> str | None:
    """The wrong tensors hold each other's expected values (results in the wrong order): on
    every case, the tensors they hold are the wrong tensors themselves."""
    found = _holds_other_output(ev)
    if not found:
        return None
    for case_no in {p.case_no for p, _ in found}:
        wrong_here = {p.name for p, _ in found if p.case_no == case_no}
        if {other for p, other in found if p.case_no == case_no} != wrong_here:
            return None                                # not a permutation of the wrong ones
    pairs = dict.fromkeys((p.name, other) for p, other in found)
    which = ", ".join(f"your {a} holds the expected {b}" for a, b in pairs)
    order = ", ".join(ev.ex.shapes)
    return f"{which}: the results are in the wrong order — {ev.ex.name} returns ({order})"


def _copied_output(ev: _Evidence) -> str | None:
    """A wrong tensor holds the expected value of another output, which is right: it was
    computed as that one is (or the same array returned twice)."""
    found = _holds_other_output(ev)
    if not found:
        return None
    pairs = dict.fromkeys((p.name, other) for p, other in found)
    which = ", ".join(f"your {a} equals the expected {b}" for a, b in pairs)
    names = ", ".join(a for a, _ in pairs)
    return (f"{which}: you computed {names} the way {', '.join(b for _, b in pairs)} is "
            f"computed (or returned the same array twice) — look for the term that makes "
            f"them differ")


def _rounded_down(ev: _Evidence) -> str | None:
    """yours = ⌊expected⌋ where the expected value is not a whole number: integer division."""
    wrong = ev.wrong
    if not _all(wrong, lambda p: _close(p.got, np.floor(p.expected))):
        return None
    if not any((p.expected != np.floor(p.expected)).any() for p in wrong):
        return None
    if not any(p.got.any() or np.issubdtype(np.dtype(p.got_dtype), np.integer) for p in wrong):
        return None                                    # zeros alone: see _all_zero
    return (f"your {ev.names(wrong)} is the expected value rounded down to a whole number: an "
            f"integer division (// or int(...) of a ratio) where a true division / belongs")


def integer_division(ev: _Evidence) -> str | None:
    """An integer result where a float is expected, equal to the expected value rounded down
    (said before any suspect: a suspect computed in floats cannot explain an integer)."""
    def integer_for_float(p: _Pair) -> bool:
        expected = np.asarray(_as_array(ev.expected[p.case_no][p.name]))
        return np.dtype(p.got_dtype).kind in "iu" and expected.dtype.kind == "f"
    return _rounded_down(ev) if _all(ev.wrong, integer_for_float) else None


def _all_zero(ev: _Evidence) -> str | None:
    """yours is all zeros where the expected values are not."""
    wrong = ev.wrong
    if not _all(wrong, lambda p: not p.got.any()):
        return None
    return (f"your {ev.names(wrong)} is all zeros where the expected values are not: it is "
            f"never written (an array of zeros not filled in), it is multiplied by 0, or it is "
            f"built from a ratio taken with integer division (a count // a larger count is 0)")


def _negated(ev: _Evidence) -> str | None:
    """yours = −expected."""
    wrong = ev.wrong
    if not _all(wrong, lambda p: _close(p.got, -p.expected)):
        return None
    return (f"the sign is flipped: your {ev.names(wrong)} is −1 × the expected value (a − b "
            f"where b − a belongs, or a minus where a plus belongs)")


def _complement(ev: _Evidence) -> str | None:
    """yours = 1 − expected (a miss rate for a hit rate, 1 − p for p)."""
    wrong = ev.wrong
    if sum(p.expected.size for p in wrong) < 2 or not _all(
            wrong, lambda p: _close(p.got, 1.0 - p.expected)):
        return None
    return (f"your {ev.names(wrong)} is 1 − the expected value: the complement (what is missed "
            f"instead of what is hit, or 1 − p for p)")


def _factor(p: _Pair) -> float | None:
    """c with yours = c · expected on this tensor (least squares, then verified), or None."""
    if not (_finite(p.expected).all() and _finite(p.got).all()):
        return None
    norm = float(np.sum(p.expected * p.expected))
    if norm == 0.0:
        return None
    c = float(np.sum(p.got * p.expected)) / norm
    return c if _close(p.got, c * p.expected) else None


_NAMED_FACTORS = (
    (100.0, "a percentage instead of a fraction: your {names} is 100 × the expected value — "
            "return the fraction itself, without the × 100"),
    (0.01, "your {names} is the expected value / 100: a fraction where a percentage belongs"),
    (2.0, "your {names} is twice the expected value: a factor 2 too many"),
    (0.5, "your {names} is half the expected value: a factor 2 missing (or a ½ too many)"),
)


def _scaled(ev: _Evidence) -> str | None:
    """yours = c · expected, c a named constant, a size or scalar argument of the case, or any
    constant."""
    wrong = ev.wrong
    factors = [_factor(p) for p in wrong]
    if not wrong or None in factors or any(abs(c - 1.0) < 1e-6 or abs(c) < 1e-12
                                           for c in factors):
        return None
    if sum(int(np.count_nonzero(p.expected)) for p in wrong) < 2:
        return None                                    # one number cannot show a factor
    names = ev.names(wrong)
    found = _factor_of_the_case(ev, wrong, factors)
    if found:
        return found
    c = factors[0]
    if all(abs(f - c) <= 1e-9 * abs(c) for f in factors):
        for value, text in _NAMED_FACTORS:
            if abs(c - value) <= 1e-9 * value:
                return text.format(names=names)
        return f"your {names} is {c:.6g} × the expected value on every case: a constant factor is wrong"
    if all(np.count_nonzero(p.expected) >= 2 for p in wrong):
        shown = ", ".join(f"{f:.4g}" for f in factors)
        return (f"your {names} is proportional to the expected value, by a factor that changes "
                f"from case to case ({shown}): a scale or normalisation is wrong")
    return None


def _case_numbers(ev: _Evidence, case_no: int) -> dict[str, float]:
    """The sizes and the numeric scalar arguments of a case, by name."""
    case = ev.ex.cases[case_no]
    numbers = {sym: float(v) for sym, v in case.sizes.items()}
    for name, arg in zip(ev.ex.arg_names, case.args, strict=True):
        for path, value in _scalars(arg, name):
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                numbers.setdefault(path, float(value))
    return numbers


def _factor_of_the_case(ev: _Evidence, wrong: Sequence[_Pair], factors: Sequence[float]):
    """The diagnosis when every factor is 1/v or v for a size or scalar v of its case (one
    that varies from case to case)."""
    names = ev.names(wrong)
    numbers = [_case_numbers(ev, p.case_no) for p in wrong]
    for sym in numbers[0]:
        values = [n.get(sym) for n in numbers]
        if None in values or len(set(values)) < 2 or 0.0 in values:
            continue                                   # one that does not vary tells nothing
        size = sym in ev.ex.cases[wrong[0].case_no].sizes
        if all(abs(c * v - 1.0) <= 1e-9 for c, v in zip(factors, values, strict=True)):
            why = (f"a mean over {sym} where a sum belongs?" if size
                   else f"a factor {sym} missing, or a division by {sym}")
            return (f"your {names} is the expected value divided by {sym} on every case: a "
                    f"1/{sym} too many ({why})")
        if all(abs(c / v - 1.0) <= 1e-9 for c, v in zip(factors, values, strict=True)):
            why = (f"a sum over {sym} where a mean belongs?" if size
                   else f"a factor {sym} applied twice?")
            return (f"your {names} is the expected value multiplied by {sym} on every case: "
                    f"{'a 1/' + sym + ' missing' if size else 'one ' + sym + ' too many'} "
                    f"({why})")
    return None


def _offset(ev: _Evidence) -> str | None:
    """yours = expected + d with the same constant d everywhere."""
    wrong = ev.wrong
    if sum(p.expected.size for p in wrong) < 2 or not _all(
            wrong, lambda p: _finite(p.got).all() and _finite(p.expected).all()):
        return None
    d = float(np.mean(wrong[0].got - wrong[0].expected))
    if not _all(wrong, lambda p: _close(p.got, p.expected + d)):
        return None
    return (f"your {ev.names(wrong)} is the expected value {'+' if d > 0 else '−'} {abs(d):.6g} "
            f"everywhere: a constant term is added or missing")


def _transposed(ev: _Evidence) -> str | None:
    """yours = expected with its last two axes swapped (square matrices only)."""
    wrong = ev.wrong
    if not _all(wrong, lambda p: p.got.ndim >= 2 and p.got.shape[-1] == p.got.shape[-2]
                and _close(p.got, np.swapaxes(p.expected, -1, -2))):
        return None
    return (f"your {ev.names(wrong)} is the expected value transposed (its last two axes "
            f"swapped): check which axis is which in your indexing or outer product")


def _axis(ex: Exercise, name: str, symbols: Sequence[str]) -> tuple[int, str] | None:
    """(position, symbol) of the first of ``symbols`` in the symbolic shape of output ``name``."""
    spec = tuple(ex.shapes.get(name, ()))
    return next(((spec.index(s), s) for s in symbols if s in spec), None)


def _time_axis(ex: Exercise, name: str) -> tuple[int, str] | None:
    """(position, symbol) of the time axis (T or C) of output ``name``, or None."""
    return _axis(ex, name, _TIME_AXES)


def _along(ev: _Evidence, symbols: Sequence[str],
           transform: Callable[[_Pair, int], bool]) -> bool:
    """``transform(pair, axis)`` holds on every wrong tensor whose axis named by one of
    ``symbols`` has length ≥ 2, there is one, and no wrong tensor lacks such an axis."""
    wrong = ev.wrong
    axes = [_axis(ev.ex, p.name, symbols) for p in wrong]
    if not wrong or None in axes:
        return False
    usable = [(p, ax) for p, (ax, _sym) in zip(wrong, axes, strict=True) if p.got.shape[ax] >= 2]
    return bool(usable) and all(transform(p, ax) for p, ax in usable)


def _along_time(ev: _Evidence, transform: Callable[[_Pair, int], bool]) -> bool:
    """``transform`` holds along the time axis (T or C) of every wrong tensor."""
    return _along(ev, _TIME_AXES, transform)


def _shifted_in_time(ev: _Evidence) -> str | None:
    """yours[t] = expected[t − 1] (one step late) or expected[t + 1] (one step early)."""
    def late(p, ax):
        n = p.got.shape[ax]
        return _close(np.take(p.got, range(1, n), ax), np.take(p.expected, range(n - 1), ax))

    def early(p, ax):
        n = p.got.shape[ax]
        return _close(np.take(p.got, range(n - 1), ax), np.take(p.expected, range(1, n), ax))
    sym = next((_time_axis(ev.ex, p.name)[1] for p in ev.wrong
                if _time_axis(ev.ex, p.name)), "T")
    names = ev.names(ev.wrong)
    if _along_time(ev, late):
        return (f"off by one step in time: your {names} at step t is the expected value at "
                f"step t − 1 (along {sym}), one step late")
    if _along_time(ev, early):
        return (f"off by one step in time: your {names} at step t is the expected value at "
                f"step t + 1 (along {sym}), one step early")
    return None


def _reversed_in_time(ev: _Evidence) -> str | None:
    """yours = expected read back to front along the time axis."""
    if not _along_time(ev, lambda p, ax: _close(p.got, np.flip(p.expected, ax))):
        return None
    return (f"your {ev.names(ev.wrong)} is the expected one reversed in time: built from the "
            f"end, it must be written back to front (or reversed once at the end)")


def _softmax(x: np.ndarray) -> np.ndarray:
    """The softmax along the last axis, shifted by the max."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_of_expected(ev: _Evidence) -> str | None:
    """yours = softmax(expected) along the last axis: probabilities returned for scores."""
    def is_softmax(p: _Pair) -> bool:
        return (p.got.ndim >= 1 and p.got.shape[-1] >= 2 and _finite(p.expected).all()
                and _close(p.got, _softmax(p.expected)))
    if not _all(ev.wrong, is_softmax):
        return None
    return (f"your {ev.names(ev.wrong)} is the softmax of the expected value (along its last "
            f"axis): return the scores themselves (the logits), before any softmax")


def _reversed_last_axis(ev: _Evidence) -> str | None:
    """yours = expected read back to front along the last axis (ascending for descending)."""
    def reversed_(p: _Pair) -> bool:
        return (p.got.ndim >= 1 and p.got.shape[-1] >= 2
                and _close(p.got, np.flip(p.expected, -1)))
    if not _all(ev.wrong, reversed_):
        return None
    return (f"your {ev.names(ev.wrong)} is the expected value in reverse order along its last "
            f"axis: sorted ascending where the order is descending (best first), or read back "
            f"to front")


def _first_example_everywhere(ev: _Evidence) -> str | None:
    """Every example along the batch axis (B or N) holds example 0's expected value."""
    def first_everywhere(p: _Pair, ax: int) -> bool:
        first = np.take(p.expected, [0], ax)
        return _close(p.got, np.broadcast_to(first, p.got.shape).copy())
    if not _along(ev, _BATCH_AXES, first_everywhere):
        return None
    sym = _axis(ev.ex, ev.wrong[0].name, _BATCH_AXES)[1]
    return (f"every example of your {ev.names(ev.wrong)} (along {sym}) is example 0's: "
            f"something indexed with [0] (b[0], x[0], gates[0]) where the whole batch belongs")


def _wrong_only_at_an_end(ev: _Evidence) -> str | None:
    """Right at every step except the first (or the last) along the time axis."""
    def only_at(position: int) -> Callable[[_Pair, int], bool]:
        def holds(p: _Pair, ax: int) -> bool:
            n = p.got.shape[ax]
            keep = [t for t in range(n) if t != position % n]
            return (not _close(np.take(p.got, [position % n], ax),
                               np.take(p.expected, [position % n], ax))
                    and _close(np.take(p.got, keep, ax), np.take(p.expected, keep, ax)))
        return holds
    names = ev.names(ev.wrong)
    sym = next((_time_axis(ev.ex, p.name)[1] for p in ev.wrong
                if _time_axis(ev.ex, p.name)), "T")
    if _along_time(ev, only_at(0)):
        return (f"your {names} is right at every step but the first ({sym} index 0): the "
                f"first step is never written, or a loop stops one step early (a backward "
                f"range(…, 0, −1) writing index t − 1 reaches 0; range(…, 1, −1) does not)")
    if _along_time(ev, only_at(-1)):
        return (f"your {names} is right at every step but the last ({sym} index {sym} − 1): "
                f"the last step is never written, or a loop stops one step short")
    return None


#: The detectors, most specific first.
RELATIONS: tuple[Callable[[_Evidence], str | None], ...] = (
    _nan_where_infinite, _nonfinite, _unchanged_input, _swapped_outputs, _copied_output,
    _rounded_down, _all_zero, _negated, _complement, _scaled, _offset, _transposed,
    _softmax_of_expected, _shifted_in_time, _reversed_in_time, _reversed_last_axis,
    _first_example_everywhere, _wrong_only_at_an_end, case_split,
)


def relation(ev: _Evidence) -> str | None:
    """The first detector's finding, or None."""
    for detector in RELATIONS:
        found = detector(ev)
        if found:
            return found
    return None


def generic(ev: _Evidence) -> str:
    """The generic diagnosis, with the cases where the function is right, if any."""
    verdicts = [(i, ev.case_ok(i)) for i in range(len(ev.ex.cases))]
    right = [i for i, ok in verdicts if ok]
    wrong = [i for i, ok in verdicts if ok is False]
    if right and wrong:
        return f"{GENERIC} (right on case(s) {_numbers(right)}, wrong on {_numbers(wrong)})"
    return GENERIC
