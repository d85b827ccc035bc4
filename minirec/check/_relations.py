"""Relations between the learner's values and the expected ones, found without a suspect: NaN
or inf, an infinity replaced by a number, an input returned unchanged, outputs in the wrong
order, a sign, a constant factor (a size of the case among them), an offset, a transposition,
the relations along an axis (:mod:`~minirec.check._axes`), a case split, ...

Each detector looks at the evidence of every case (:class:`_Evidence`) and claims only what the
values show, on every case where a tensor is wrong; :data:`RELATIONS` lists them, most specific
first. The diagnoses of a tiny error (float32 rounding, a small ε) are in
:mod:`~minirec.check._precision`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minirec.check._axes import AXIS_RELATIONS
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
    evidence,
)
from minirec.check._precision import (
    FLOAT32_ROUNDING,
    FLOAT32_ULPS,
    float32_rounding,
    float32_tolerances,
    systematic_bias,
)

__all__ = ["GENERIC", "FLOAT32_ROUNDING", "FLOAT32_ULPS", "RELATIONS", "evidence", "relation",
           "generic", "float32_rounding", "float32_tolerances", "integer_division",
           "systematic_bias"]

#: The diagnosis when nothing better is known.
GENERIC = ("no known mistake matches your result; compare your lines with the equations, "
           "starting from the tensor and index the table points to")


def _on_every_wrong_case(ev: _Evidence, where: Callable[[_Pair], np.ndarray]):
    """(pair, mask) of the first wrong tensor where ``where(pair)`` marks something, provided
    every case with a wrong tensor has such a tensor (a detector that names what one case shows
    must not speak for a case that shows something else); None otherwise."""
    found, cases = None, set()
    for p in ev.wrong:
        mask = where(p)
        if mask.any():
            found = found or (p, mask)
            cases.add(p.case_no)
    if found is None or cases != {p.case_no for p in ev.wrong}:
        return None
    return found


def _nan_where_infinite(ev: _Evidence) -> str | None:
    """NaN where the expected value is ±inf: inf − inf or 0 · inf, an unguarded −inf."""
    found = _on_every_wrong_case(ev, lambda p: np.isnan(p.got) & np.isinf(p.expected))
    if found is None:
        return None
    p, mask = found
    sign = "−" if p.expected[np.unravel_index(int(np.argmax(mask)), mask.shape)] < 0 else ""
    return (f"your {p.name} is NaN where the expected value is {sign}inf (case "
            f"{p.case_no + 1}, at {_first_index(mask)}): an unguarded −inf — "
            f"−inf − (−inf) and 0 · inf are NaN. Where every term is −inf (log 0: an "
            f"empty sum, a forbidden transition) the max m is −inf too: shift by 0 "
            f"there, m = np.where(np.isfinite(m), m, 0), and the answer stays −inf")


def _nonfinite(ev: _Evidence) -> str | None:
    """NaN or ±inf where the expected value is finite."""
    found = _on_every_wrong_case(ev, lambda p: ~_finite(p.got) & _finite(p.expected))
    if found is None:
        return None
    p, mask = found
    return (f"your {p.name} has NaN or inf where the expected value is finite (case "
            f"{p.case_no + 1}, at {_first_index(mask)}): a division by zero, an "
            f"overflow (exp of a large value: a missing max shift), or an unguarded "
            f"−inf (−inf − (−inf) is NaN)")


def _finite_where_infinite(ev: _Evidence) -> str | None:
    """A number where the expected value is ±inf, and right everywhere else."""
    def only_there(p: _Pair) -> bool:
        inf = np.isinf(p.expected)
        return (bool((_finite(p.got) & inf).any()) and _close(p.got[~inf], p.expected[~inf])
                and bool((p.got[inf & ~_finite(p.got)] == p.expected[inf & ~_finite(p.got)])
                         .all()))
    if not _all(ev.wrong, only_there):
        return None
    p = ev.wrong[0]
    mask = _finite(p.got) & np.isinf(p.expected)
    index = np.unravel_index(int(np.argmax(mask)), mask.shape)
    sign = "−" if p.expected[index] < 0 else ""
    return (f"your {ev.names(ev.wrong)} is a number ({p.got[index]:g}) where the expected value "
            f"is {sign}inf (case {p.case_no + 1}, at {_first_index(mask)}), and right everywhere "
            f"else: the infinity was replaced — e.g. a guard's stand-in (np.where(np.isfinite(m), "
            f"m, 0) shifts by 0 where m = −inf) returned instead of the value it stands for; "
            f"where every term is −inf the answer stays −inf")


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
    found = _factor_of_the_case(ev, wrong, factors) or _scaled_by_a_size(ev)
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
    """The sizes, the numeric scalar arguments and the axis lengths of the array arguments of
    a case (``obs_target.shape[0]``), by name, in that order (a size is named first)."""
    case = ev.ex.cases[case_no]
    numbers = {sym: float(v) for sym, v in case.sizes.items()}
    for name, arg in zip(ev.ex.arg_names, case.args, strict=True):
        for path, value in _scalars(arg, name):
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                numbers.setdefault(path, float(value))
    for name, arg in zip(ev.ex.arg_names, case.args, strict=True):
        for path, arr in _leaves(arg, name):
            for axis, length in enumerate(arr.shape):
                numbers.setdefault(f"{path}.shape[{axis}]", float(length))
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
        size = sym in ev.ex.cases[wrong[0].case_no].sizes or ".shape[" in sym
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


def _scaled_by_a_size(ev: _Evidence) -> str | None:
    """Some of the wrong tensors are v × (or 1/v ×) the expected value on every case, v a
    number of the case that varies (a size, a scalar, an argument's length), each tensor its
    own v; the other wrong tensors are named as wrong too. (When every wrong tensor has the
    same v, :func:`_factor_of_the_case` says it.)"""
    by_name: dict[str, list[_Pair]] = {}
    for p in ev.wrong:
        by_name.setdefault(p.name, []).append(p)
    found, others = [], []
    for pairs in by_name.values():
        factors = [_factor(p) for p in pairs]
        text = None
        if None not in factors and not any(abs(c - 1.0) < 1e-6 or abs(c) < 1e-12
                                           for c in factors):
            text = _factor_of_the_case(ev, pairs, factors)
        if text:
            found.append(text)
        else:
            others.extend(pairs)
    if not found or (not others and len(found) < 2):
        return None
    if not others:
        return "; ".join(found)
    names = ev.names(others)
    return f"{'; '.join(found)}; {names} {'is' if ' and ' not in names else 'are'} wrong too"


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


#: The detectors, most specific first.
RELATIONS: tuple[Callable[[_Evidence], str | None], ...] = (
    _nan_where_infinite, _nonfinite, _finite_where_infinite, _unchanged_input, _swapped_outputs,
    _copied_output, _rounded_down, _all_zero, _negated, _complement, _scaled, _scaled_by_a_size,
    _offset, _transposed, _softmax_of_expected, *AXIS_RELATIONS, case_split,
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
