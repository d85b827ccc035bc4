"""One comparison of a result with its expected value for every test: :func:`assert_close`.

Each entry of ``got`` may differ from the same entry of ``want`` by

    |got_i − want_i| ≤ tol · (|want_i| + scale),        scale = max_j |want_j|  (finite entries)

that is ``np.isclose(got, want, rtol=tol, atol=tol · scale)``: ``tol`` is a relative error, of
each entry and of the largest one. An entry near zero is held to the digits the largest value
carries, not to digits of its own that no implementation keeps (a float32 sum of terms of size 1
that cancels to 1e-7). A test that knows better says so:

- ``scale=`` replaces max|want|: the size of the terms that cancelled (an error relative to
  them), or a small number that turns the bound into ``rtol = tol, atol = tol · scale``;
- ``floor=`` is a lower bound of max|want|: a gradient that saturated gates make tiny, compared
  with the gradient flowing in.

A non-finite expected entry must be matched exactly (the same infinity, or NaN); where the
expected entry is finite, so must the result be. Where every expected entry is zero the bound is
zero: the result must be zero too. ``dtype=`` requires ``got`` (each part) to be a NumPy array of
that dtype; the values are compared in float64. Tuples and dicts are compared part by part, the
parts named ``name[i]`` and ``name[key]``. NumPy arrays, torch tensors and numbers are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["assert_close"]


def assert_close(name: str, got, want, *, tol: float, scale: float | None = None,
                 floor: float = 0.0, dtype=None) -> None:
    """Raise AssertionError unless ``got`` equals ``want`` within ``tol`` (module docstring).

    ``name`` is the quantity compared; the failure message gives it, the largest error and its
    index, the entry that most exceeds its bound, and the bound.
    """
    if isinstance(want, tuple):
        assert isinstance(got, tuple), f"{name}: {type(got).__name__}, expected a tuple"
        assert len(got) == len(want), f"{name}: {len(got)} parts, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(f"{name}[{i}]", g, w, tol=tol, scale=scale, floor=floor, dtype=dtype)
        return
    if isinstance(want, Mapping):
        assert isinstance(got, Mapping), f"{name}: {type(got).__name__}, expected a dict"
        assert set(got) == set(want), f"{name}: keys {sorted(got)}, expected {sorted(want)}"
        for key, w in want.items():
            assert_close(f"{name}[{key}]", got[key], w, tol=tol, scale=scale, floor=floor,
                         dtype=dtype)
        return
    if dtype is not None:
        assert isinstance(got, np.ndarray), f"{name}: {type(got).__name__}, not a NumPy array"
        assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    g, w = _float64(got), _float64(want)
    assert g.shape == w.shape, f"{name}: shape {g.shape}, expected {w.shape}"
    finite = np.isfinite(w)
    _assert_same_non_finite(name, g, w, finite)
    s = float(np.abs(w[finite]).max(initial=0.0)) if scale is None else float(scale)
    s = max(s, floor)
    err = np.where(finite, np.abs(g - np.where(finite, w, 0.0)), 0.0)
    bound = tol * (np.abs(np.where(finite, w, 0.0)) + s)
    if np.all(err <= bound):
        return
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    largest = np.unravel_index(np.argmax(err), err.shape)
    n_bad = int(np.count_nonzero(err > bound))
    raise AssertionError(
        f"{name}: max |got − want| = {err[largest]:.3g} at index {_index(largest)}; "
        f"{n_bad} of {err.size} entries exceed tol·(|want| + scale) with tol = {tol:g}, "
        f"scale = {s:.3g}; the worst, at index {_index(worst)}: got {float(g[worst])!r}, "
        f"want {float(w[worst])!r}, |got − want| = {err[worst]:.3g} > {bound[worst]:.3g}")


def _float64(x) -> np.ndarray:
    """A NumPy float64 copy of an array, a tensor (detached, on the CPU) or a number."""
    if hasattr(x, "detach"):  # a torch tensor; torch is not imported for NumPy-only tests
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _assert_same_non_finite(name, got, want, finite) -> None:
    """Where ``want`` is finite ``got`` is finite; elsewhere it is the same inf, or NaN."""
    same = np.where(finite, np.isfinite(got),
                    (got == want) | (np.isnan(got) & np.isnan(want)))
    if not np.all(same):
        i = np.unravel_index(np.argmin(same), same.shape)
        raise AssertionError(f"{name}: non-finite values differ, first at index {_index(i)}: "
                             f"got {float(got[i])!r}, want {float(want[i])!r}")


def _index(i: tuple) -> tuple[int, ...]:
    return tuple(int(j) for j in i)
