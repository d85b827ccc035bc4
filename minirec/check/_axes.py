"""Relations along a named axis of the outputs, found without a suspect: along time (T or C) a
step late or early, reversed, wrong only at the first or the last step, right up to a step and
wrong from it on; along the batch (B or N) one example's value everywhere; along the last axis
reversed or permuted.

Each detector takes the evidence of every case (:class:`_Evidence`) and claims only what the
values show; the axes are read from the exercise's symbolic shapes (``Exercise.shapes``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minirec.check._evidence import _all, _close, _Evidence, _finite, _leaves, _Pair
from minirec.check._exercise import Exercise

__all__ = ["AXIS_RELATIONS"]

_TIME_AXES = ("T", "C")
_BATCH_AXES = ("B", "N")


def _axis(ex: Exercise, name: str, symbols: Sequence[str]) -> tuple[int, str] | None:
    """(position, symbol) of the first of ``symbols`` in the symbolic shape of output ``name``."""
    spec = tuple(ex.shapes.get(name, ()))
    return next(((spec.index(s), s) for s in symbols if s in spec), None)


def _time_axis(ex: Exercise, name: str) -> tuple[int, str] | None:
    """(position, symbol) of the time axis (T or C) of output ``name``, or None."""
    return _axis(ex, name, _TIME_AXES)


def _time_symbol(ev: _Evidence, pairs: Sequence[_Pair]) -> str:
    """The symbol of the time axis of the first of ``pairs`` that has one (T by default)."""
    return next((_time_axis(ev.ex, p.name)[1] for p in pairs if _time_axis(ev.ex, p.name)), "T")


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


def _timed_and_untimed(ev: _Evidence) -> tuple[list[tuple[_Pair, int]], list[_Pair]]:
    """The wrong tensors whose time axis has length ≥ 2, each with that axis, and the wrong
    tensors that have no time axis (a weight's gradient, an initial state)."""
    timed, untimed = [], []
    for p in ev.wrong:
        found = _time_axis(ev.ex, p.name)
        if found is None:
            untimed.append(p)
        elif p.got.shape[found[0]] >= 2:
            timed.append((p, found[0]))
    return timed, untimed


def _steps_right(p: _Pair, ax: int) -> list[bool]:
    """For every step along ``ax``: whether the learner's values there are right."""
    return [_close(np.take(p.got, [t], ax), np.take(p.expected, [t], ax))
            for t in range(p.got.shape[ax])]


def _is(names: str) -> str:
    """The verb for ``names``: ``h0 is``, ``a and b are``."""
    return "are" if " and " in names else "is"


def _also_wrong(ev: _Evidence, untimed: Sequence[_Pair]) -> str:
    """``; h0 is wrong too`` for the wrong tensors that have no time axis (empty if none)."""
    if not untimed:
        return ""
    names = ev.names(untimed)
    return f"; {names} {_is(names)} wrong too"


# ---------------------------------------------------------------------------------------------
# Along time
# ---------------------------------------------------------------------------------------------

def _shifted_in_time(ev: _Evidence) -> str | None:
    """yours[t] = expected[t − 1] (one step late) or expected[t + 1] (one step early)."""
    def late(p, ax):
        n = p.got.shape[ax]
        return _close(np.take(p.got, range(1, n), ax), np.take(p.expected, range(n - 1), ax))

    def early(p, ax):
        n = p.got.shape[ax]
        return _close(np.take(p.got, range(n - 1), ax), np.take(p.expected, range(1, n), ax))
    sym = _time_symbol(ev, ev.wrong)
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


#: For the first and the last step along time: its name, its index, and the loops that leave
#: it out.
_END_STEP = {
    0: ("first", "{sym} index 0", "a loop that stops one step early — a backward loop must "
        "reach index 0 (range({sym} − 1, −1, −1) over t; range({sym} − 1, 0, −1) only when it "
        "writes t − 1), a forward one start there (range({sym}), not range(1, {sym}))"),
    -1: ("last", "{sym} index {sym} − 1", "a loop that stops one step short (range({sym} − 1) "
         "where range({sym}) belongs, or a backward loop that starts at {sym} − 2)"),
}


def _only_wrong_at(p: _Pair, ax: int, position: int) -> bool:
    """The tensor is wrong at step ``position`` (0 or −1) along ``ax`` and right at the rest."""
    right = _steps_right(p, ax)
    rest = right[1:] if position == 0 else right[:-1]
    return not right[position] and all(rest)


def _zero_at(timed: Sequence[tuple[_Pair, int]], position: int) -> bool:
    """Every tensor of ``timed`` is all zeros at step ``position`` along its axis."""
    return all(not np.take(p.got, [position % p.got.shape[ax]], ax).any() for p, ax in timed)


def _wrong_only_at_an_end(ev: _Evidence) -> str | None:
    """Right at every step except the first (or the last) along the time axis, in every wrong
    tensor that has one; the wrong tensors without a time axis are named as wrong too."""
    timed, untimed = _timed_and_untimed(ev)
    if not timed:
        return None
    names, sym = ev.names([p for p, _ in timed]), _time_symbol(ev, [p for p, _ in timed])
    for position, (word, index, loop) in _END_STEP.items():
        if all(_only_wrong_at(p, ax, position) for p, ax in timed):
            zero = ", where it is all zeros" if _zero_at(timed, position) else ""
            return (f"your {names} {_is(names)} right at every step but the {word} "
                    f"({index.format(sym=sym)}){zero}{_also_wrong(ev, untimed)}: the {word} "
                    f"step is left out or computed apart from the others — e.g. "
                    f"{loop.format(sym=sym)}")
    return None


def _first_wrong_step(p: _Pair, ax: int) -> int:
    """The first step along ``ax`` where the tensor is wrong (its length if none)."""
    right = _steps_right(p, ax)
    return next((t for t, ok in enumerate(right) if not ok), len(right))


def _step_named(ev: _Evidence, timed: Sequence[tuple[_Pair, int]],
                starts: Sequence[int]) -> str | None:
    """The first wrong step of every tensor as one name: ``1``, or a size of the case (``C``)
    that varies from case to case and equals it on every case."""
    if all(s == 1 for s in starts):
        return "1"
    for sym in ev.ex.cases[timed[0][0].case_no].sizes:
        values = [ev.ex.cases[p.case_no].sizes.get(sym) for p, _ in timed]
        if len(set(values)) > 1 and all(v == s for v, s in zip(values, starts, strict=True)):
            return sym
    return None


def _wrong_from_a_step(ev: _Evidence) -> str | None:
    """Right at the steps before s and wrong at s, in every wrong tensor with a time axis,
    where s is step 1 on every case or a size of the case (the chunk length C); else, when s
    varies but every step from s on is wrong, the steps s of each case."""
    timed, untimed = _timed_and_untimed(ev)
    if not timed:
        return None
    starts = [_first_wrong_step(p, ax) for p, ax in timed]
    step = _step_named(ev, timed, starts) if all(s >= 1 for s in starts) else None
    if step is None:
        return _wrong_from_steps_that_vary(ev, timed, untimed, starts)
    names, sym = ev.names([p for p, _ in timed]), _time_symbol(ev, [p for p, _ in timed])
    before = "step 0" if step == "1" else f"steps 0 … {step} − 1"
    return (f"your {names} {_is(names)} right at {before} and wrong from step {step} on "
            f"(along {sym}, on every case){_also_wrong(ev, untimed)}: look at what the steps "
            f"from {step} on take from the ones before them (a carried state, a carry, a running "
            f"total) and how they combine it")


def _wrong_from_steps_that_vary(ev: _Evidence, timed, untimed, starts) -> str | None:
    """Right at the steps before s and wrong at every step from s to the end, s ≥ 1 changing
    from case to case (neither 1 nor a size): each case's s."""
    if not all(s >= 1 for s in starts) or len(set(starts)) < 2:
        return None
    if not all(not any(_steps_right(p, ax)[s:]) for (p, ax), s in zip(timed, starts, strict=True)):
        return None
    names, sym = ev.names([p for p, _ in timed]), _time_symbol(ev, [p for p, _ in timed])
    where = ", ".join(dict.fromkeys(f"{s} on case {p.case_no + 1}"
                                    for (p, _ax), s in zip(timed, starts, strict=True)))
    return (f"your {names} {_is(names)} right up to a step and wrong at every step from it to "
            f"the end (along {sym}: from step {where}){_also_wrong(ev, untimed)}: look at the "
            f"step where that happens — where a loop starts or stops (a last chunk or step "
            f"left out), and what the later steps take from the earlier ones")


def _zero_at_an_end(ev: _Evidence) -> str | None:
    """All zeros at the first (or the last) step along the time axis, where the expected value
    is not, in every wrong tensor with a time axis (and wrong elsewhere too)."""
    timed, untimed = _timed_and_untimed(ev)
    if not timed:
        return None
    names, sym = ev.names([p for p, _ in timed]), _time_symbol(ev, [p for p, _ in timed])
    for position, (word, index, loop) in _END_STEP.items():
        expected_there = [np.take(p.expected, [position % p.got.shape[ax]], ax).any()
                          for p, ax in timed]
        if _zero_at(timed, position) and all(expected_there):
            return (f"your {names} {_is(names)} all zeros at the {word} step "
                    f"({index.format(sym=sym)}), where the expected value is not, and wrong at "
                    f"other steps too"
                    f"{_also_wrong(ev, untimed)}: zeros are what a step that is never computed "
                    f"or written leaves — e.g. {loop.format(sym=sym)}")
    return None


# ---------------------------------------------------------------------------------------------
# Along the batch
# ---------------------------------------------------------------------------------------------

def _examples_held(p: _Pair, ax: int) -> list[int]:
    """The examples j along ``ax`` whose expected value the learner's tensor holds at every
    example (yours[..., i, ...] = expected[..., j, ...] for every i)."""
    return [j for j in range(p.got.shape[ax])
            if _close(p.got, np.broadcast_to(np.take(p.expected, [j], ax), p.got.shape).copy())]


def _extreme_argument(ev: _Evidence, usable, held) -> tuple[str, str] | None:
    """("largest" or "smallest", path) of a 1-D argument with one value per example whose
    largest (smallest) example is, on every case, one whose value the learner's tensor holds
    everywhere."""
    first = ev.ex.cases[usable[0][0].case_no]
    paths = [path for name, arg in zip(ev.ex.arg_names, first.args, strict=True)
             for path, _ in _leaves(arg, name)]
    for path in paths:
        for word, pick in (("largest", np.argmax), ("smallest", np.argmin)):
            if all(_pick_is_held(ev, p, ax, js, path, pick)
                   for (p, ax), js in zip(usable, held, strict=True)):
                return word, path
    return None


def _pick_is_held(ev: _Evidence, p: _Pair, ax: int, held: Sequence[int], path: str,
                  pick: Callable) -> bool:
    """The argument ``path`` of p's case is 1-D with one value per example, and the example
    ``pick`` (argmax or argmin) chooses is among those held."""
    case = ev.ex.cases[p.case_no]
    arrays = dict(a for name, arg in zip(ev.ex.arg_names, case.args, strict=True)
                  for a in _leaves(arg, name))
    arr = arrays.get(path)
    return (arr is not None and arr.ndim == 1 and len(arr) == p.got.shape[ax]
            and np.issubdtype(arr.dtype, np.number) and int(pick(arr)) in held)


def _one_example_everywhere(ev: _Evidence) -> str | None:
    """Every example along the batch axis (B or N) holds one example's expected value: example
    0's, the example with the largest (smallest) value of an argument, or another one."""
    wrong = ev.wrong
    axes = [_axis(ev.ex, p.name, _BATCH_AXES) for p in wrong]
    if not wrong or None in axes:
        return None
    usable = [(p, ax) for p, (ax, _s) in zip(wrong, axes, strict=True) if p.got.shape[ax] >= 2]
    held = [_examples_held(p, ax) for p, ax in usable]
    if not usable or not all(held):
        return None
    names, sym = ev.names(wrong), _axis(ev.ex, wrong[0].name, _BATCH_AXES)[1]
    extreme = _extreme_argument(ev, usable, held)
    if all(0 in js for js in held):
        also = (f" (on every case example 0 is also the one with the {extreme[0]} "
                f"{extreme[1]}: {extreme[1]}.{'max' if extreme[0] == 'largest' else 'min'}() "
                f"would do the same)" if extreme else "")
        return (f"every example of your {names} (along {sym}) is example 0's{also}: something "
                f"indexed with [0] (b[0], x[0], gates[0]) where the whole batch belongs")
    if extreme:
        word, path = extreme
        fn = "max" if word == "largest" else "min"
        return (f"every example of your {names} (along {sym}) is that of the example with the "
                f"{word} {path}, on every case: one value for the whole batch ({path}.{fn}()) "
                f"where each example's own {path}[i] belongs")
    (p, _ax), js = usable[0], held[0]
    return (f"every example of your {names} (along {sym}) is the same, one example's (example "
            f"{js[0]} on case {p.case_no + 1}): one value for the whole batch (a max, a mean, an "
            f"index) where each example's own belongs")


# ---------------------------------------------------------------------------------------------
# Along the last axis
# ---------------------------------------------------------------------------------------------

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


def _distinct_in_rows(x: np.ndarray) -> bool:
    """No two values of a row (along the last axis) are equal: an order can be read from it
    (a one-hot row, all zeros but one, cannot say which order it was in)."""
    ordered = np.sort(x, axis=-1)
    return bool((np.diff(ordered, axis=-1) != 0).all())


def _permuted_last_axis(ev: _Evidence) -> str | None:
    """Every row (along the last axis) of every wrong tensor holds the expected values in
    another order (rows whose values are distinct)."""
    def permuted(p: _Pair) -> bool:
        return (p.got.ndim >= 1 and p.got.shape[-1] >= 2 and _finite(p.got).all()
                and _finite(p.expected).all() and _distinct_in_rows(p.expected)
                and _close(np.sort(p.got, axis=-1), np.sort(p.expected, axis=-1)))
    if not _all(ev.wrong, permuted):
        return None
    return (f"each row of your {ev.names(ev.wrong)} (along its last axis) holds the expected "
            f"values, in another order: put them in the order asked for (best first: "
            f"np.argsort(-p)) — a set found with np.argpartition, or collected in a loop, comes "
            f"in no guaranteed order")


#: The detectors of this module, in the order the engine tries them.
AXIS_RELATIONS: tuple[Callable[[_Evidence], str | None], ...] = (
    _shifted_in_time, _reversed_in_time, _one_example_everywhere, _reversed_last_axis,
    _permuted_last_axis, _wrong_only_at_an_end, _wrong_from_a_step, _zero_at_an_end,
)
