"""The engine behind every exercise check: compare, diagnose, report.

An exercise check runs the learner's function and the reference on a few generated cases
(float64, seeded, odd sizes). On the first case where they differ it raises
:class:`CheckFailed` with

- a table, one row per named output tensor: expected shape, the learner's shape, the largest
  absolute error, the first bad index (C order) and ok / ✗, followed by the learner's value and
  the expected one at that index;
- a diagnosis in the learner's terms, the first that applies of: the learner's earlier function
  (``Exercise.calls``) that produced the first wrong value; what a wrong shape or an exception
  says about the code (with the learner's line); a small error of one sign everywhere (an ε
  in a denominator); float32 rounding; an integer result that is the expected value rounded
  down (integer division); the first *suspect* (a known wrong variant of the exercise, with
  the same signature) whose outputs equal the learner's on every case; a relation between the
  learner's values and the expected ones that the engine finds by itself (a sign, a constant
  factor, a step in time, a transposition, NaN/inf, values rounded down, a size of the case as
  a factor, a step that is wrong, one example's value everywhere, ...); else the generic text.

In IPython a failure shows its message only (``_render_traceback_``), not minirec's traceback.
Nothing here depends on pytest: the messages are meant to be read in a notebook.

This module runs a check and writes its report; the parts it uses are modules of their own:

- :mod:`~minirec.check._compare`: the comparison of named tensors and its table;
- :mod:`~minirec.check._exercise`: Case, Suspect, Exercise (and CheckFailed / NotAttempted, defined
  in the leaf :mod:`minirec._errors`);
- :mod:`~minirec.check._outputs`: a result as named tensors, and what a wrong shape says;
- :mod:`~minirec.check._traceback`: where the learner's code raised and why (operands, masks);
- :mod:`~minirec.check._calls`: the learner's earlier functions that this one calls;
- :mod:`~minirec.check._evidence`, :mod:`~minirec.check._relations`,
  :mod:`~minirec.check._axes`, :mod:`~minirec.check._case_split`: the relations the engine
  finds without a suspect; :mod:`~minirec.check._precision`: float32 rounding and a small ε;
- :mod:`~minirec.check._guards`: checks whose reference carries a stability guard.
- :mod:`~minirec.check._verdict`: the signed verdict record a grader reads (unarmed, nothing).

Every name tests and lesson checks import from ``minirec.check._core`` is still importable
from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from minirec.check import _verdict as verdict
from minirec.check._calls import calls_diagnosis, recording_calls
from minirec.check._compare import (
    ATOL,
    RTOL,
    Comparison,
    Row,
    bad_mask,
    cmp,
    compare,
    first_bad_index,
)
from minirec.check._exercise import (
    Case,
    CheckFailed,
    Exercise,
    NotAttempted,
    Suspect,
    _changed,
    _copy,
    _run,
)
from minirec.check._outputs import _shape_message, dict_output, one_output, pair_output
from minirec.check._relations import (
    FLOAT32_ROUNDING,
    FLOAT32_ULPS,
    GENERIC,
    evidence,
    float32_rounding,
    float32_tolerances,
    generic,
    integer_division,
    relation,
    systematic_bias,
)
from minirec.check._traceback import OUTER_PRODUCT, exception_message, learner_traceback

__all__ = [
    "RTOL", "ATOL", "FLOAT32_ULPS", "GENERIC", "OUTER_PRODUCT", "FLOAT32_ROUNDING",
    "CheckFailed", "NotAttempted",
    "Row", "Comparison", "compare", "cmp", "bad_mask", "first_bad_index",
    "Case", "Suspect", "Exercise", "run_check", "diagnose",
    "one_output", "pair_output", "dict_output",
]


def diagnose(suspects: Sequence[Suspect], cases: Sequence[Case],
             learner: Sequence[dict | BaseException | None],
             outputs: Callable[[Any, Case], dict], *, rtol: float = RTOL,
             atol: float = ATOL, tolerances: Mapping[str, tuple[float, float]] | None = None
             ) -> Suspect | None:
    """The first suspect that behaves as the learner's function on every case.

    ``learner[i]`` is the learner's named tensors on ``cases[i]``, the exception it raised
    there, or None (not compared). A suspect matches when its tensors equal the learner's
    (to ``rtol, atol``, or a name's own entry in ``tolerances``) wherever the learner returned,
    and it raises wherever the learner raised: the same type of exception, or both a shape
    error (ValueError or IndexError: the same wrong shape may reach NumPy through a product,
    a comparison or an index).
    """
    for suspect in suspects:
        matched = True
        for case, mine in zip(cases, learner, strict=True):
            if mine is None:
                continue
            try:
                theirs = outputs(_run(suspect.fn, case)[0], case)
            except Exception as exc:  # noqa: BLE001 - a suspect's failure is information
                matched = isinstance(mine, BaseException) and _same_failure(exc, mine)
            else:
                matched = (not isinstance(mine, BaseException)
                           and compare(theirs, mine, rtol=rtol, atol=atol,
                                       tolerances=tolerances).ok)
            if not matched:
                break
        if matched:
            return suspect
    return None


_SHAPE_ERRORS = (ValueError, IndexError)


def _same_failure(theirs: BaseException, mine: BaseException) -> bool:
    """A suspect's exception stands for the learner's: the same type (for a floating-point
    error, the same kind: an overflow, an invalid value), or both shape errors."""
    if isinstance(theirs, FloatingPointError) and isinstance(mine, FloatingPointError):
        return _floating_point_kind(theirs) == _floating_point_kind(mine)
    return type(theirs) is type(mine) or (isinstance(theirs, _SHAPE_ERRORS)
                                          and isinstance(mine, _SHAPE_ERRORS))


def _floating_point_kind(exc: FloatingPointError) -> str:
    """``overflow`` or ``invalid value``: the words before "encountered" in NumPy's message."""
    return str(exc).split(" encountered")[0].strip()


def _fail(ex: Exercise, case_no: int, case: Case, comparison: Comparison | None,
          diagnosis: str | None, notes: Sequence[str], exc: BaseException | None = None,
          what: str | None = None):
    """Raise the CheckFailed of case ``case_no``: its header, what happened, the table, the
    diagnosis and the notes."""
    parts = [f"{ex.name} is wrong on case {case_no + 1} of {len(ex.cases)} ({case.label}):"]
    if what:
        parts.append(what)
    if comparison is not None:
        parts.append(comparison.table())
    if diagnosis:
        parts.append(f"Diagnosis: {diagnosis}")
    parts += [f"Note: {n}" for n in notes]
    err = CheckFailed("\n".join(parts), comparison=comparison, diagnosis=diagnosis,
                      case=case.label)
    if exc is not None:
        raise err from exc
    raise err


def run_check(ex: Exercise, fn: Callable) -> None:
    """Run ``fn`` on every case of ``ex``. Print ``✓ <name>: passed on N cases`` when all agree
    with the reference; otherwise raise :class:`CheckFailed` (or :class:`NotAttempted` for a
    function that still raises NotImplementedError) for the first failing case.

    Where a grader armed :mod:`~minirec.check._verdict`, the verdict (passed, not attempted,
    failed, or error for any other exception) is also published as a signed record, before the
    exception is raised; unarmed, nothing more happens."""
    try:
        _check(ex, fn)
    except NotAttempted:
        verdict.report(ex.name, "not attempted")
        raise
    except CheckFailed:
        verdict.report(ex.name, "failed")
        raise
    except BaseException:
        verdict.report(ex.name, "error")
        raise
    verdict.report(ex.name, "passed")


def _check(ex: Exercise, fn: Callable) -> None:
    """:func:`run_check` without the verdict record; the learner's function runs while
    :func:`~minirec.check._verdict.watching`."""
    if not callable(fn):
        raise TypeError(f"check_{ex.name} needs your function {ex.name}; got {type(fn).__name__}")
    fn_name = getattr(fn, "__name__", ex.name)
    expected = [ex.outputs(ex.reference(*_copy(case.args)), case) for case in ex.cases]
    with recording_calls(fn, ex.calls) as wrong_calls, verdict.watching():
        learner, first_fail = _run_cases(ex, fn, fn_name, expected)
    if first_fail is None:
        print(f"✓ {ex.name}: passed on {len(ex.cases)} cases")
        return
    _report(ex, fn_name, expected, learner, first_fail, wrong_calls)


def _run_cases(ex: Exercise, fn: Callable, fn_name: str, expected: Sequence[dict]):
    """The learner's outputs on every case (a dict, an exception, or None where its result had
    the wrong structure) and the first failure: (case index, comparison or None, exception or
    None, notes), or None when every case passes."""
    learner: list[dict | BaseException | None] = []
    first_fail = None
    for i, case in enumerate(ex.cases):
        try:
            result, used_args = _run(fn, case)
        except NotImplementedError as exc:
            raise NotAttempted(_not_attempted(ex, fn_name, exc)) from None
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the learner with a diagnosis
            learner.append(exc)
            if first_fail is None:
                first_fail = (i, None, exc, [])
            continue
        notes = _in_place_notes(ex, fn_name, case, used_args)
        try:
            mine = ex.outputs(result, case)
        except CheckFailed as bad:
            if first_fail is None:
                _fail(ex, i, case, None, str(bad), notes)
            learner.append(None)
            continue
        learner.append(mine)
        comparison = compare(expected[i], mine, tolerances=ex.tolerances)
        if first_fail is None and (not comparison.ok or notes):
            first_fail = (i, comparison, None, notes)
    return learner, first_fail


def _in_place_notes(ex: Exercise, fn_name: str, case: Case, used_args) -> list[str]:
    """A note for every argument the learner's function changed in place."""
    changed = [p for name, before, after in zip(ex.arg_names, case.args, used_args, strict=True)
               for p in _changed(before, after, name)]
    return [f"{fn_name} changed its argument {p} in place (+=, *= or [...] = on it, or on a "
            f"view of it such as a[t]); the caller still needs the old value: build a new "
            f"array instead (a = a + b rather than a += b)" for p in changed]


def _not_attempted(ex: Exercise, fn_name: str, exc: NotImplementedError) -> str:
    """The NotAttempted message: the learner's function is still the stub, or it calls one of
    the learner's earlier functions (``Exercise.calls``) that is."""
    tb = learner_traceback(exc)
    inner = tb.tb_frame.f_code.co_name if tb is not None else None
    if inner in ex.calls and inner != ex.name:
        return (f"not yet attempted: {fn_name} calls your {inner}, which still raises "
                f"NotImplementedError — write {inner} first (check_{inner} checks it)")
    return (f"not yet attempted: {fn_name} still raises NotImplementedError — write the "
            f"exercise's lines in place of the `raise NotImplementedError`")


def _report(ex: Exercise, fn_name: str, expected: Sequence[dict],
            learner: Sequence[dict | BaseException | None], first_fail, wrong_calls: list[str]):
    """Raise the CheckFailed of the first failing case, with the best diagnosis found: the
    learner's earlier function that went wrong first, else what the exception or the values
    say."""
    i, comparison, exc, notes = first_fail
    case = ex.cases[i]
    ev = evidence(ex, expected, learner)
    calls = calls_diagnosis(wrong_calls[0], ex.name) if wrong_calls else None
    if exc is not None:
        what, diagnosis = _exception_diagnosis(ex, fn_name, exc, case, ev, learner)
        _fail(ex, i, case, None, calls or diagnosis, notes, exc, what)
    if comparison.ok and not calls:  # values right, but an argument was modified in place
        _fail(ex, i, case, comparison, notes[0], [])
    diagnosis = calls or _value_diagnosis(ex, comparison, case, ev, learner)
    _fail(ex, i, case, comparison, diagnosis, notes + _value_notes(comparison))


def _exception_diagnosis(ex: Exercise, fn_name: str, exc: BaseException, case: Case, ev,
                         learner) -> tuple[str, str | None]:
    """(what happened, diagnosis) when the learner's function raised on the first failing
    case: what the exception says, made precise by a suspect that matches every case (sought
    when some case returned wrong values, or when the exception is a floating-point error: a
    suspect that overflows or makes a NaN on the same cases, and is right elsewhere, names
    which guard is missing or wrong)."""
    what, diagnosis = exception_message(ex, fn_name, exc, case)
    wrong_value = any(ev.case_ok(j) is False for j, m in enumerate(learner) if isinstance(m, dict))
    search = wrong_value or isinstance(exc, FloatingPointError)
    suspect = diagnose(ex.suspects, ex.cases, learner, ex.outputs,
                       tolerances=ex.tolerances) if search else None
    if suspect is None:
        return what, diagnosis
    return what, f"{diagnosis}. More precisely: {suspect.message}" if diagnosis else suspect.message


def _value_diagnosis(ex: Exercise, comparison: Comparison, case: Case, ev, learner) -> str:
    """The diagnosis of wrong values, the first that applies: a wrong shape, a small error of
    one sign (an ε), float32 rounding, an integer division, a suspect, a relation the engine
    finds, the generic text."""
    shape_rows = [r for r in comparison.rows if not r.ok and r.max_abs_err is None]
    if shape_rows:
        return "; ".join(_shape_message(ex, r, case) for r in shape_rows)
    if found := systematic_bias(ev):
        return found
    if float32_rounding(ev):
        return FLOAT32_ROUNDING
    if found := integer_division(ev):
        return found
    suspect = diagnose(ex.suspects, ex.cases, learner, ex.outputs,
                       tolerances=float32_tolerances(ev) or ex.tolerances)
    return suspect.message if suspect is not None else (relation(ev) or generic(ev))


def _value_notes(comparison: Comparison) -> list[str]:
    """Notes on the dtypes and NaNs of the learner's tensors (float results only: an integer
    output that should be an integer, a path or indices, gets none)."""
    notes = []
    for r in comparison.rows:
        expected_float = r.expected_dtype is None or np.issubdtype(np.dtype(r.expected_dtype),
                                                                   np.floating)
        got = np.dtype(r.got_dtype) if r.got_dtype is not None else None
        if expected_float and got is not None and got.kind == "f" and got != np.float64:
            notes.append(f"{r.name} has dtype {r.got_dtype}; the case is float64 and the "
                         f"tolerance is {RTOL:g} relative: keep float64 throughout")
        elif expected_float and got is not None and got.kind in "iub":
            notes.append(f"{r.name} has dtype {r.got_dtype} where a float is expected: its "
                         f"values were made whole numbers (an integer division //, int(...), "
                         f"or floats written into an integer array)")
        if r.max_abs_err is not None and np.isnan(r.max_abs_err):
            notes.append(f"{r.name} contains NaN")
    return notes
