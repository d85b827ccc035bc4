r"""Gradient checking by central finite differences, in float64.

The backward functions of minirec (and a learner's) are checked against

    ∂f/∂x_i ≈ (f(x + ε e_i) − f(x − ε e_i)) / 2ε

whose error is O(ε²) from the Taylor series plus O(u/ε) from rounding (u ≈ 1.1e-16 in float64):
with ε = 1e-6 both are near 1e-10 relative. In float32 (u ≈ 6e-8) the rounding term alone is
about 0.1 at that ε, so float32 input is refused rather than checked badly.

The numerical gradient perturbs the array **in place**, one element at a time, and restores it,
so ``f`` can close over the arrays it reads (as in cs231n)::

    loss = lambda: np.sum(gru_step(x, h, params) * dh_new)
    check_gradients(loss, {"x": x, "h": h, **params}, gru_step_backward(x, h, params, dh_new))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from minirec._errors import CheckFailed

__all__ = ["numerical_gradient", "rel_error", "check_gradients", "GradientReport", "TINY"]

#: Floor of the denominator of :func:`rel_error`, so that two zero arrays compare as equal.
TINY = np.finfo(np.float64).tiny


def _require_float64(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy float64 array; got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} has dtype {x.dtype}: finite differences need float64 (in float32 the "
            f"rounding error of f(x ± ε) / 2ε is about 0.1 at ε = 1e-6). "
            f"Cast it with {name}.astype(np.float64) and recompute."
        )
    if not x.flags.writeable:
        raise TypeError(f"{name} is read-only; the finite differences perturb it in place")
    return x


def _scalar(value) -> float:
    arr = np.asarray(value)
    if arr.shape != ():
        raise TypeError(f"f must return a scalar; got an array of shape {arr.shape}")
    return float(arr)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6):
    """Central-difference gradient of the scalar ``f(x)`` with respect to ``x``.

    ``x`` must be a writable float64 array; each element is moved by ±``eps`` in place and put
    back exactly (also when ``f`` raises). Returns an array of ``x``'s shape. ``f`` is called
    as ``f(x)``; a closure that ignores its argument and reads ``x`` directly works too.
    """
    _require_float64("x", x)
    grad = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        try:
            x[idx] = old + eps
            f_plus = _scalar(f(x))
            x[idx] = old - eps
            f_minus = _scalar(f(x))
        finally:
            x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def rel_error(a, b) -> float:
    """Relative error of two arrays as a whole::

        rel_error(a, b) = max_i |a_i − b_i| / max( max_i (|a_i| + |b_i|), TINY )

    It is 0 for equal arrays, 1 for ``b = −a``, unchanged by scaling both, and, unlike the
    element-wise ``|a_i − b_i| / (|a_i| + |b_i|)``, not blown up by entries that are zero up to
    rounding. Shapes must agree.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs equal shapes; got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    num = np.max(np.abs(a - b))
    den = max(float(np.max(np.abs(a) + np.abs(b))), TINY)
    return float(num / den)


@dataclass(frozen=True)
class GradientRow:
    name: str
    shape: tuple
    analytic_shape: tuple | None
    rel_error: float
    max_abs_diff: float
    ok: bool


@dataclass(frozen=True)
class GradientReport:
    """One row per checked input: relative error and largest absolute difference."""

    rows: tuple[GradientRow, ...]
    tol: float
    eps: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.rows if not r.ok]

    def table(self) -> str:
        head = ("input", "shape", "rel error", "max |Δ|", "")
        body = []
        for r in self.rows:
            if r.analytic_shape != r.shape:
                got = "missing" if r.analytic_shape is None else f"shape {r.analytic_shape}"
                body.append((r.name, str(r.shape), f"analytic {got}", "", "✗"))
            else:
                body.append((r.name, str(r.shape), f"{r.rel_error:.1e}", f"{r.max_abs_diff:.1e}",
                             "ok" if r.ok else "✗"))
        widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in (head, *body)]
        lines.append(f"(central differences, eps={self.eps:g}; rel error must be ≤ {self.tol:g})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__


def check_gradients(f: Callable[[], float], inputs: Mapping[str, np.ndarray],
                    analytic: Mapping[str, np.ndarray], *, eps: float = 1e-6,
                    tol: float = 1e-6) -> GradientReport:
    """Compare analytic gradients with central finite differences of ``f``.

    ``f()`` takes no argument and returns a scalar computed from the arrays in ``inputs``
    (float64, perturbed in place and restored). ``analytic[name]`` is the claimed ∂f/∂inputs[name];
    extra keys in ``analytic`` are ignored. Returns a :class:`GradientReport`; raises
    :class:`~minirec.check.CheckFailed` with the report's table when an analytic gradient is
    missing, has the wrong shape, or has :func:`rel_error` above ``tol``.
    """
    for name, x in inputs.items():
        _require_float64(f"inputs[{name!r}]", x)
    rows = []
    for name, x in inputs.items():
        numeric = numerical_gradient(lambda _x: f(), x, eps)
        got = analytic.get(name)
        got_shape = None if got is None else tuple(np.shape(got))
        if got_shape != x.shape:
            rows.append(GradientRow(name, x.shape, got_shape, np.inf, np.inf, False))
            continue
        got = np.asarray(got, dtype=np.float64)
        err = rel_error(got, numeric)
        diff = float(np.max(np.abs(got - numeric))) if x.size else 0.0
        rows.append(GradientRow(name, x.shape, got_shape, err, diff, bool(err <= tol)))
    report = GradientReport(tuple(rows), tol, eps)
    if not report.ok:
        raise CheckFailed(f"gradient check failed for {', '.join(report.failed)}:\n{report}")
    return report
