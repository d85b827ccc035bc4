"""The engine behind every exercise check: compare, diagnose, report.

An exercise check runs the learner's function and the reference on a few generated cases
(float64, seeded, odd sizes). On the first case where they differ it raises
:class:`CheckFailed` with

- a table, one row per named output tensor: expected shape, the learner's shape, the largest
  absolute error, the first bad index (C order) and ok / ✗, followed by the learner's value and
  the expected one at that index;
- a diagnosis in the learner's terms: the first *suspect* (a known wrong variant of the exercise,
  with the same signature) whose outputs equal the learner's on every case, or what an exception
  or a wrong shape says about the code.

Nothing here depends on pytest: the messages are meant to be read in a notebook.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minirec._validate import is_torch

__all__ = [
    "RTOL", "ATOL", "CheckFailed", "NotAttempted",
    "Row", "Comparison", "compare", "cmp", "bad_mask", "first_bad_index",
    "Case", "Suspect", "Exercise", "run_check", "diagnose",
    "one_output", "pair_output", "dict_output",
]

#: An element is wrong when |yours − expected| > ATOL + RTOL·|expected| (float64 cases).
RTOL = 1e-8
ATOL = 1e-10


class CheckFailed(AssertionError):
    """The learner's function ran but its result differs from the reference.

    Besides the message, carries (when raised by a check) ``comparison`` (the :class:`Comparison`
    of the first failing case), ``diagnosis`` (a string or None) and ``case`` (its label).
    """

    def __init__(self, message: str = "", *, comparison: Comparison | None = None,
                 diagnosis: str | None = None, case: str | None = None):
        super().__init__(message)
        self.comparison = comparison
        self.diagnosis = diagnosis
        self.case = case


class NotAttempted(CheckFailed):
    """The learner's function still raises NotImplementedError (the blank exercise)."""


# ---------------------------------------------------------------------------------------------
# Comparison of named tensors
# ---------------------------------------------------------------------------------------------

def _as_array(value) -> np.ndarray | None:
    """NumPy view of an array-like result (torch tensors included); None for anything else."""
    if is_torch(value):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (float, int, np.number)) and not isinstance(value, bool):
        return np.asarray(value)
    return None


def bad_mask(expected, actual, *, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    """Boolean array, True where ``|actual − expected| > atol + rtol·|expected|`` or either
    side is NaN. Shapes must agree."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"bad_mask needs equal shapes; got {e.shape} and {a.shape}")
    with np.errstate(invalid="ignore"):
        good = np.abs(a - e) <= atol + rtol * np.abs(e)
    return ~good


def first_bad_index(expected, actual, *, rtol: float = RTOL, atol: float = ATOL):
    """Index tuple of the first wrong element in C (row-major) order, or None if all are ok."""
    mask = bad_mask(expected, actual, rtol=rtol, atol=atol)
    if not mask.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


@dataclass(frozen=True)
class Row:
    """One tensor of a comparison. ``got_shape`` is None when the learner's value is not an
    array; ``got_kind`` then says what it is (``"missing"``, ``"NoneType"``, ...)."""

    name: str
    expected_shape: tuple
    got_shape: tuple | None
    got_kind: str
    max_abs_err: float | None
    first_bad: tuple | None
    ok: bool
    got_value: float | None = None
    expected_value: float | None = None
    got_dtype: str | None = None

    @property
    def shape_ok(self) -> bool:
        return self.got_shape == self.expected_shape


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _fmt_index(index) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


@dataclass(frozen=True)
class Comparison:
    """Per-tensor comparison of a result with the expected one; its repr is the table."""

    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[str]:
        """Names of the tensors that are wrong, in table order."""
        return [r.name for r in self.rows if not r.ok]

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def table(self) -> str:
        head = ("tensor", "expected shape", "your shape", "max abs err", "first bad", "")
        body = []
        for r in self.rows:
            got = _fmt_shape(r.got_shape) if r.got_shape is not None else r.got_kind
            if r.max_abs_err is None:
                err = "—"
            else:
                err = f"{r.max_abs_err:.1e}"
            if r.ok:
                bad = "—"
            elif r.first_bad is not None:
                bad = str(r.first_bad)
            else:
                bad = "shape" if r.got_shape is not None else "—"
            body.append((r.name, _fmt_shape(r.expected_shape), got, err, bad,
                         "ok" if r.ok else "✗"))
        widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in (head, *body)]
        for r in self.rows:
            if r.first_bad is not None and r.got_value is not None:
                lines.append(f"{r.name}{_fmt_index(r.first_bad)}: yours {r.got_value:.10g}, "
                             f"expected {r.expected_value:.10g}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__


_MISSING = object()


def compare(expected: Mapping[str, Any], actual: Mapping[str, Any], *, rtol: float = RTOL,
            atol: float = ATOL) -> Comparison:
    """Compare named tensors. ``expected`` fixes the names and their order; a name absent from
    ``actual`` is reported as missing, extra names in ``actual`` are ignored. Returns a
    :class:`Comparison`, whose ``repr`` (what a notebook shows) is the table."""
    rows = []
    for name, exp in expected.items():
        e = np.asarray(_as_array(exp), dtype=np.float64)
        raw = actual.get(name, _MISSING) if isinstance(actual, Mapping) else _MISSING
        a = None if raw is _MISSING else _as_array(raw)
        if a is None:
            kind = "missing" if raw is _MISSING else type(raw).__name__
            rows.append(Row(name, e.shape, None, kind, None, None, False))
            continue
        dtype = str(a.dtype)
        if a.shape != e.shape:
            rows.append(Row(name, e.shape, a.shape, "", None, None, False, got_dtype=dtype))
            continue
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            rows.append(Row(name, e.shape, a.shape, "", None, None, False, got_dtype=dtype))
            continue
        a64 = a.astype(np.float64)
        mask = bad_mask(e, a64, rtol=rtol, atol=atol)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a64 - e)
        max_err = float(np.max(diff)) if diff.size else 0.0
        if np.isnan(diff).any():
            max_err = float("nan")
        if mask.any():
            idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))
            rows.append(Row(name, e.shape, a.shape, "", max_err, idx, False,
                            float(a64[idx]), float(e[idx]), dtype))
        else:
            rows.append(Row(name, e.shape, a.shape, "", max_err, None, True, got_dtype=dtype))
    return Comparison(tuple(rows))


def cmp(expected: Mapping[str, Any], actual: Mapping[str, Any], *, rtol: float = RTOL,
        atol: float = ATOL) -> bool:
    """Print the comparison table of named tensors (as micrograd's ``cmp``); return True when
    every tensor matches."""
    result = compare(expected, actual, rtol=rtol, atol=atol)
    print(result.table())
    return result.ok


# ---------------------------------------------------------------------------------------------
# Cases, suspects, exercises
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One set of arguments for the learner's function. ``sizes`` names the symbols of the
    case (``{"B": 3, "D": 5, "H": 7}``): they label the case and resolve symbolic shapes."""

    args: tuple
    sizes: Mapping[str, int]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.sizes.items())


@dataclass(frozen=True)
class Suspect:
    """A known wrong variant of an exercise: ``fn`` has the learner's signature, ``message``
    says what is wrong in the learner's terms."""

    message: str
    fn: Callable


@dataclass(frozen=True)
class Exercise:
    """Everything a check needs.

    - ``outputs(result, case)`` turns a return value into named tensors (a dict), or raises
      :class:`CheckFailed` with a message when its structure is wrong (not a pair, not a dict);
    - ``shapes`` gives each output's symbolic shape, e.g. ``{"h_new": ("B", "H")}``;
    - ``matmul_hint`` is appended to the diagnosis of a matrix product with mismatched shapes.
    """

    name: str
    reference: Callable
    cases: Sequence[Case]
    suspects: Sequence[Suspect]
    outputs: Callable[[Any, Case], dict]
    shapes: Mapping[str, tuple]
    arg_names: tuple[str, ...]
    matmul_hint: str | Callable[[Case], str] = ""
    shape_hints: Mapping[str, str] = field(default_factory=dict)


def _copy(value):
    """Deep copy of nested arrays / tuples / dicts, so that a function cannot alter a case."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    return value


def _changed(before, after, path: str) -> list[str]:
    """Paths of the arrays in ``after`` that differ from ``before`` (an in-place change)."""
    if isinstance(before, np.ndarray):
        same = (isinstance(after, np.ndarray) and after.shape == before.shape
                and np.array_equal(after, before, equal_nan=True))
        return [] if same else [path]
    if isinstance(before, dict):
        out = []
        for k in before:
            out += _changed(before[k], after.get(k) if isinstance(after, dict) else None,
                            f"{path}[{k!r}]")
        return out
    if isinstance(before, (tuple, list)):
        out = []
        for i, b in enumerate(before):
            a = after[i] if isinstance(after, (tuple, list)) and i < len(after) else None
            out += _changed(b, a, f"{path}[{i}]")
        return out
    return []


def _resolve(symbol: str, sizes: Mapping[str, int]) -> int | str:
    m = re.fullmatch(r"(\d*)([A-Za-z_]\w*)", symbol)
    if m and m.group(2) in sizes:
        return int(m.group(1) or 1) * sizes[m.group(2)]
    return symbol


def _shape_message(ex: Exercise, row: Row, case: Case) -> str:
    spec = ex.shapes.get(row.name)
    expected = _fmt_shape(row.expected_shape)
    if spec is not None:
        expected = f"{_fmt_shape(spec)} = {expected}"
    if row.got_shape is None:
        if row.got_kind == "missing":
            return (f"your result has no {row.name!r}: {ex.name} must return "
                    f"{', '.join(repr(k) for k in ex.shapes)}")
        return f"{row.name} should be an array of shape {expected}; got a {row.got_kind}"
    if row.got_shape != row.expected_shape:
        msg = f"{row.name} should have shape {expected}; yours has {_fmt_shape(row.got_shape)}"
        got, exp = row.got_shape, row.expected_shape
        if len(got) == len(exp) >= 2 and got == exp[::-1]:
            msg += ": it looks transposed"
        elif len(got) == len(exp) + 1 and got[1:] == exp:
            if got[0] == case.sizes.get("B"):
                msg += (": it keeps the batch axis — the gradient of a shared parameter is "
                        "summed over the batch (axis 0)")
            elif got[0] == case.sizes.get("T"):
                msg += (": it keeps a time axis — the gradient of a shared parameter is "
                        "summed over the time steps")
            else:
                msg += f": it has an extra leading axis of size {got[0]}"
        elif len(exp) == len(got) + 1 and exp[1:] == got:
            axis = f"{spec[0]} = {exp[0]}" if spec else f"of size {exp[0]}"
            msg += (f": its leading axis ({axis}) is missing — keep one slice per index along "
                    f"it, not a single slice or their sum")
        hint = ex.shape_hints.get(row.name)
        return msg + (f". {hint}" if hint else "")
    return f"{row.name} has dtype {row.got_dtype}, not a number"


def _exception_message(ex: Exercise, fn_name: str, exc: BaseException,
                       case: Case) -> tuple[str, str | None]:
    """(what happened, diagnosis or None) for an exception raised by the learner's function."""
    text = (f"{fn_name} raised {type(exc).__name__}: {exc}\n"
            f"The case's shapes: {_case_shapes(ex, case)}")
    lower = str(exc).lower()
    hint_text = ex.matmul_hint(case) if callable(ex.matmul_hint) else ex.matmul_hint
    if isinstance(exc, (ValueError, RuntimeError)) and (
            "matmul" in lower or "not aligned" in lower or "core dimension" in lower
            or "cannot be multiplied" in lower):
        hint = f" ({hint_text})" if hint_text else ""
        return text, ("a matrix product has mismatched shapes: a weight looks transposed"
                      f"{hint}")
    if isinstance(exc, ValueError) and "broadcast" in lower:
        hint = f"; {hint_text}" if hint_text else ""
        return text, ("two arrays of different shapes were combined element by element: check "
                      "the shape of each term and which axis each split or sum runs along (a "
                      f"weight may be transposed{hint})")
    return text, None


def _case_shapes(ex: Exercise, case: Case) -> str:
    parts = []

    def walk(name, value):
        if isinstance(value, np.ndarray):
            parts.append(f"{name} {_fmt_shape(value.shape)}")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}[{k!r}]", v)
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                walk(f"{name}[{i}]", v)
        else:
            parts.append(f"{name}={value!r}")

    for name, value in zip(ex.arg_names, case.args, strict=True):
        walk(name, value)
    return ", ".join(parts)


def _run(fn, case: Case):
    args = _copy(case.args)
    return fn(*args), args


def diagnose(suspects: Sequence[Suspect], cases: Sequence[Case],
             learner: Sequence[dict | BaseException | None],
             outputs: Callable[[Any, Case], dict], *, rtol: float = RTOL,
             atol: float = ATOL) -> Suspect | None:
    """The first suspect that behaves as the learner's function on every case.

    ``learner[i]`` is the learner's named tensors on ``cases[i]``, the exception it raised
    there, or None (not compared). A suspect matches when its tensors equal the learner's
    wherever the learner returned, and it raises the same type of exception wherever the
    learner raised.
    """
    for suspect in suspects:
        matched = True
        for case, mine in zip(cases, learner, strict=True):
            if mine is None:
                continue
            try:
                theirs = outputs(_run(suspect.fn, case)[0], case)
            except Exception as exc:  # noqa: BLE001 - a suspect's failure is information
                matched = isinstance(mine, BaseException) and type(exc) is type(mine)
            else:
                matched = (not isinstance(mine, BaseException)
                           and compare(theirs, mine, rtol=rtol, atol=atol).ok)
            if not matched:
                break
        if matched:
            return suspect
    return None


def _fail(ex: Exercise, case_no: int, case: Case, comparison: Comparison | None,
          diagnosis: str | None, notes: Sequence[str], exc: BaseException | None = None,
          what: str | None = None):
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


# --- turning a learner's result into named tensors (an Exercise's ``outputs``) -------------

def _describe(result) -> str:
    if isinstance(result, (tuple, list)):
        return f"a {type(result).__name__} of length {len(result)}"
    if isinstance(result, np.ndarray):
        return f"one array of shape {result.shape}"
    return f"a {type(result).__name__}"


def one_output(name: str):
    """``outputs`` for a function that returns one array, compared as ``name``."""
    def outputs(result, case):
        if isinstance(result, (tuple, list, Mapping)):
            raise CheckFailed(f"the result must be one array {name}; got {_describe(result)}")
        return {name: result}
    return outputs


def pair_output(name: str, first: str, second: str, *, integer: Sequence[str] = ()):
    """``outputs`` for a function ``name`` that returns the pair ``(first, second)``. Integer
    arrays named in ``integer`` (indices) are compared as float64, so that their dtype is not
    reported as lost precision."""
    def outputs(result, case):
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise CheckFailed(f"{name} must return the pair ({first}, {second}); "
                              f"got {_describe(result)}")
        out = {first: result[0], second: result[1]}
        for key in integer:
            if isinstance(out[key], np.ndarray) and np.issubdtype(out[key].dtype, np.integer):
                out[key] = out[key].astype(np.float64)
        return out
    return outputs


def dict_output(keys: Sequence[str]):
    """``outputs`` for a function that returns a dict with (at least) ``keys``; a missing key
    shows as missing in the table."""
    def outputs(result, case):
        if not isinstance(result, Mapping):
            raise CheckFailed(f"the result must be a dict with keys {', '.join(keys)}; "
                              f"got {type(result).__name__}")
        return {k: result.get(k) for k in keys if k in result}
    return outputs


def run_check(ex: Exercise, fn: Callable) -> None:
    """Run ``fn`` on every case of ``ex``. Print ``✓ <name>: passed on N cases`` when all agree
    with the reference; otherwise raise :class:`CheckFailed` (or :class:`NotAttempted` for a
    function that still raises NotImplementedError) for the first failing case."""
    if not callable(fn):
        raise TypeError(f"check_{ex.name} needs your function {ex.name}; got {type(fn).__name__}")
    fn_name = getattr(fn, "__name__", ex.name)
    expected = [ex.outputs(ex.reference(*_copy(case.args)), case) for case in ex.cases]

    learner: list[dict | BaseException | None] = []
    wrong_value = False
    first_fail = None  # (index, comparison or None, exception or None, notes)
    for i, case in enumerate(ex.cases):
        try:
            result, used_args = _run(fn, case)
        except NotImplementedError:
            raise NotAttempted(
                f"not yet attempted: {fn_name} still raises NotImplementedError — write the "
                f"exercise's lines in place of the `raise NotImplementedError`"
            ) from None
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the learner with a diagnosis
            learner.append(exc)
            if first_fail is None:
                first_fail = (i, None, exc, [])
            continue
        changed = [p for name, before, after in zip(ex.arg_names, case.args, used_args, strict=True)
                   for p in _changed(before, after, name)]
        notes = [f"{fn_name} changed its argument {p} in place (+=, *= or [...] = on it, or on "
                 f"a view of it such as a[t]); the caller still needs the old value: build a "
                 f"new array instead (a = a + b rather than a += b)"
                 for p in changed]
        try:
            mine = ex.outputs(result, case)
        except CheckFailed as bad:
            if first_fail is None:
                _fail(ex, i, case, None, str(bad), notes)
            learner.append(None)
            continue
        learner.append(mine)
        comparison = compare(expected[i], mine)
        wrong_value = wrong_value or not comparison.ok
        if first_fail is None and (not comparison.ok or notes):
            first_fail = (i, comparison, None, notes)

    if first_fail is None:
        print(f"✓ {ex.name}: passed on {len(ex.cases)} cases")
        return

    i, comparison, exc, notes = first_fail
    case = ex.cases[i]
    if exc is not None:
        what, diagnosis = _exception_message(ex, fn_name, exc, case)
        suspect = diagnose(ex.suspects, ex.cases, learner, ex.outputs) if wrong_value else None
        if suspect is not None:
            diagnosis = f"{diagnosis}. More precisely: {suspect.message}" if diagnosis \
                else suspect.message
        _fail(ex, i, case, None, diagnosis, notes, exc, what)
    if comparison.ok:  # values right, but an argument was modified in place
        _fail(ex, i, case, comparison, notes[0], [])
    shape_rows = [r for r in comparison.rows if not r.shape_ok or r.got_shape is None]
    if shape_rows:
        diagnosis = "; ".join(_shape_message(ex, r, case) for r in shape_rows)
    else:
        suspect = diagnose(ex.suspects, ex.cases, learner, ex.outputs)
        if suspect is not None:
            diagnosis = suspect.message
        else:
            diagnosis = ("no known mistake matches your result; compare your lines with the "
                         "equations, starting from the tensor and index the table points to")
    for r in comparison.rows:
        if r.got_dtype is not None and r.got_dtype != "float64":
            notes.append(f"{r.name} has dtype {r.got_dtype}; the case is float64 and the "
                         f"tolerance is {RTOL:g} relative: keep float64 throughout")
        if r.max_abs_err is not None and np.isnan(r.max_abs_err):
            notes.append(f"{r.name} contains NaN")
    _fail(ex, i, case, comparison, diagnosis, notes)
