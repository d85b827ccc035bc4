"""Comparison of named tensors: the table a failed check prints, and ``cmp`` for the learner's
own comparisons.

An element is right when ``|yours − expected| ≤ atol + rtol·|expected|``; equal infinities are
right (a −inf where −inf is expected), a NaN is wrong wherever it is (even where NaN is
expected), and an infinity where a finite value is expected, or the other way round, is wrong.
Integer expected tensors (indices, paths) are compared exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from minirec._validate import is_torch

__all__ = ["RTOL", "ATOL", "Row", "Comparison", "compare", "cmp", "bad_mask", "first_bad_index"]

#: An element is wrong when |yours − expected| > ATOL + RTOL·|expected| (float64 cases).
RTOL = 1e-8
ATOL = 1e-10


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
    """Boolean array, True where an element is wrong: ``|actual − expected| > atol +
    rtol·|expected|`` where the expected value is finite; anything but the same infinity where
    it is ±inf; NaN on either side. Shapes must agree."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"bad_mask needs equal shapes; got {e.shape} and {a.shape}")
    with np.errstate(invalid="ignore"):
        near = np.abs(a - e) <= atol + rtol * np.abs(e)
    return ~np.where(np.isfinite(e), near, a == e)


def abs_errors(expected, actual) -> np.ndarray:
    """|actual − expected| element by element, 0 where both are the same infinity (inf − inf
    would be NaN), NaN where either is NaN."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(a == e, 0.0, np.abs(a - e))


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
    expected_dtype: str | None = None

    @property
    def shape_ok(self) -> bool:
        return self.got_shape == self.expected_shape


def _fmt_shape(shape) -> str:
    """A shape as the table prints it: ``(3, 5)``, ``(4,)``."""
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _fmt_index(index) -> str:
    """An index as the table prints it: ``[0, 2]``."""
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
        """The table: one row per tensor, then the learner's and the expected value at each first
        bad index."""
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


def _tolerance(name: str, expected: np.ndarray, rtol: float, atol: float,
               tolerances: Mapping[str, tuple[float, float]] | None) -> tuple[float, float]:
    """(rtol, atol) for one tensor: its own entry in ``tolerances``; exact for an integer
    expected tensor (indices, paths: compared as integers); else the common ``rtol, atol``."""
    if tolerances and name in tolerances:
        return tolerances[name]
    if np.issubdtype(expected.dtype, np.integer):
        return 0.0, 0.0
    return rtol, atol


def compare(expected: Mapping[str, Any], actual: Mapping[str, Any], *, rtol: float = RTOL,
            atol: float = ATOL, tolerances: Mapping[str, tuple[float, float]] | None = None
            ) -> Comparison:
    """Compare named tensors. ``expected`` fixes the names and their order; a name absent from
    ``actual`` is reported as missing, extra names in ``actual`` are ignored. ``tolerances``
    gives some names their own ``(rtol, atol)``; integer expected tensors are compared
    exactly; equal infinities agree and NaN never does (see :func:`bad_mask`). Returns a
    :class:`Comparison`, whose ``repr`` (what a notebook shows) is the table."""
    rows = []
    for name, exp in expected.items():
        e_raw = np.asarray(_as_array(exp))
        raw = actual.get(name, _MISSING) if isinstance(actual, Mapping) else _MISSING
        tol = _tolerance(name, e_raw, rtol, atol, tolerances)
        rows.append(_row(name, e_raw, raw, tol))
    return Comparison(tuple(rows))


def _row(name: str, e_raw: np.ndarray, raw, tol: tuple[float, float]) -> Row:
    """The row of one tensor: ``e_raw`` the expected array, ``raw`` the learner's value (or
    ``_MISSING``), ``tol`` its ``(rtol, atol)``."""
    e = e_raw.astype(np.float64)
    e_dtype = str(e_raw.dtype)
    a = None if raw is _MISSING else _as_array(raw)
    if a is None:
        kind = "missing" if raw is _MISSING else type(raw).__name__
        return Row(name, e.shape, None, kind, None, None, False, expected_dtype=e_dtype)
    dtype = str(a.dtype)
    if a.shape != e.shape or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        return Row(name, e.shape, a.shape, "", None, None, False, got_dtype=dtype,
                   expected_dtype=e_dtype)
    a64 = a.astype(np.float64)
    mask = bad_mask(e, a64, rtol=tol[0], atol=tol[1])
    diff = abs_errors(e, a64)
    max_err = float(np.max(diff)) if diff.size else 0.0      # NaN when any element is NaN
    if not mask.any():
        return Row(name, e.shape, a.shape, "", max_err, None, True, got_dtype=dtype,
                   expected_dtype=e_dtype)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))
    return Row(name, e.shape, a.shape, "", max_err, idx, False, float(a64[idx]),
               float(e[idx]), dtype, e_dtype)


def cmp(expected: Mapping[str, Any], actual: Mapping[str, Any], *, rtol: float = RTOL,
        atol: float = ATOL) -> bool:
    """Print the comparison table of named tensors (as micrograd's ``cmp``); return True when
    every tensor matches."""
    result = compare(expected, actual, rtol=rtol, atol=atol)
    print(result.table())
    return result.ok
