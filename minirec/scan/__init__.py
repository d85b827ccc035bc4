"""Associative scans and linear recurrences: the operator half the curriculum runs on (linear
recurrences, SSMs, linear attention, Titans' momentum, the HMM forward pass, Viterbi).

Four implementations, in this folder:

- ``reference.py``  NumPy, the specification: generic scans (sequential, Hillis–Steele,
  Blelloch, chunked) with any associative combine; the combines; the linear recurrence, its
  backward, its log-space form and the closed form that fails;
- ``numba_cpu.py``  compiled kernels for the linear recurrence (``@njit(cache=True)``);
- ``torch_ops.py``  the linear recurrence as a ``torch.autograd.Function`` whose backward is the
  reverse-time recurrence, and a parallel (doubling) form; any device;
- ``numba_cuda.py`` ``@cuda.jit`` kernels: a Blelloch block scan and a multi-block scan.

Public functions::

    linear_recurrence(a, b, h0=None, *, backend=None) -> h
        h_t = a_t h_{t−1} + b_t,  a (T, ...), b (T, ...), h0 (...) -> h (T, ...)
    associative_scan(combine, elems, *, method="sequential") -> scanned elems   (NumPy)
    add_combine, affine_combine, matrix_affine_combine, logaddexp_combine, log_matmul_combine,
    max_plus_combine, softmax_attention_combine        (combines: named so, unlike the mechanisms)

``backend=None`` picks Numba for NumPy input and Torch for tensors; ``"numpy"`` runs the
reference, ``"numba"``, ``"torch"``, and ``"cuda"`` (NumPy in and out; a GPU, or numba's
simulator with ``NUMBA_ENABLE_CUDASIM=1``). Results have the input's type, dtype and device.
"""

from __future__ import annotations

import numpy as np

from minirec._dispatch import Implementations, same_kind
from minirec._validate import is_torch, require_float
from minirec.scan import reference
from minirec.scan.reference import (
    ASSOCIATIVE_SCAN_METHODS,
    COMBINES,
    add_combine,
    affine_combine,
    count_combines,
    log_matmul_combine,
    logaddexp_combine,
    matrix_affine_combine,
    max_plus_combine,
    softmax_attention_combine,
    softmax_attention_elements,
    softmax_attention_output,
)

__all__ = [
    "linear_recurrence", "associative_scan", "count_combines", "COMBINES", "ASSOCIATIVE_SCAN_METHODS",
    "add_combine", "affine_combine", "matrix_affine_combine", "logaddexp_combine",
    "log_matmul_combine", "max_plus_combine", "softmax_attention_combine",
    "softmax_attention_elements", "softmax_attention_output",
]

BACKENDS = ("numpy", "numba", "torch", "cuda")
#: Where the linear recurrence runs on each backend (minirec._dispatch: the choice, the
#: conversion, the call). On a CPU, torch_ops runs the compiled Numba scan on float32/float64
#: tensors' memory: NumPy input on the torch backend goes to that kernel directly.
IMPLEMENTATIONS = Implementations(__name__, {
    #                    numpy        numba        torch        cuda
    "linear_recurrence": ("reference", "numba_cpu", "torch_ops", "numba_cuda.linear_recurrence_cuda"),
}, backends=BACKENDS, torch_on_numpy={"linear_recurrence": "numba_cpu"})


def _fmt(shape) -> str:
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def _validate(a, b, h0):
    """Types, dtypes and the time-major shapes; returns a, b, h0 and the shape of h."""
    a, b = require_float("a", a), require_float("b", b)
    h0 = None if h0 is None else require_float("h0", h0)
    same_kind([a, b, h0])
    for name, x in (("a", a), ("b", b)):
        if x.ndim == 0:
            raise ValueError(f"{name} must have shape (T, ...) with time first; got a scalar "
                             "(a constant decay is np.full((T, ...), value))")
    T = a.shape[0]
    if T == 0:
        raise ValueError(f"a must have at least one time step: shape (T, ...) with T >= 1; "
                         f"got {_fmt(a.shape)}")
    if b.shape[0] != T:
        raise ValueError(f"b must have shape (T, ...) = ({T}, ...) (T={T} from a); got "
                         f"{_fmt(b.shape)}. Time is never broadcast: give both a and b the "
                         "time axis first")
    try:
        state = tuple(np.broadcast_shapes(tuple(a.shape[1:]), tuple(b.shape[1:])))
    except ValueError:
        raise ValueError(f"the trailing axes of a (T, ...) = {_fmt(a.shape)} and b (T, ...) = "
                         f"{_fmt(b.shape)} do not broadcast") from None
    if h0 is not None:
        try:
            fits = np.broadcast_shapes(tuple(h0.shape), state) == state
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"h0 must broadcast to the state shape (...) = {_fmt(state)} of a "
                             f"and b; got {_fmt(h0.shape)}")
    return a, b, h0, (T, *state)


def linear_recurrence(a, b, h0=None, *, backend=None):
    """h_t = a_t h_{t−1} + b_t for t = 0 … T−1, with h_{−1} = h0 (zero when None).

    ``a (T, ...)`` decays and ``b (T, ...)`` inputs, time first; their trailing axes broadcast
    (``a (T,)`` with ``b (T, B, D)`` is one decay per step for every channel), time never does.
    ``h0 (...)`` broadcasts to the state shape. Returns ``h (T, ...)``, the broadcast shape, as
    the input's type, dtype and device. With torch tensors the result is differentiable with
    respect to a, b and h0 (the backward is the reverse-time recurrence).
    """
    a, b, h0, _ = _validate(a, b, h0)
    backend = IMPLEMENTATIONS.pick(backend, a)
    return IMPLEMENTATIONS.call(backend, "linear_recurrence", a, b, h0)


def associative_scan(combine, elems, *, method="sequential"):
    """Inclusive scan y_t = x_0 ⊕ x_1 ⊕ … ⊕ x_t along axis 0, in NumPy.

    ``combine(left, right)``: an associative function of two batches of elements (left =
    earlier), e.g. one of :data:`COMBINES`. ``elems``: an array ``(T, ...)`` or a tuple of
    arrays sharing T (T >= 1). ``method``: "sequential", "hillis_steele", "blelloch" or
    "chunked"; all give the same result up to rounding when ``combine`` is associative.
    Returns the same structure as ``elems``.
    """
    if not callable(combine):
        raise TypeError(f"combine must be a function combine(left, right); got "
                        f"{type(combine).__name__}")
    if method not in ASSOCIATIVE_SCAN_METHODS:
        raise ValueError(f"method must be one of {ASSOCIATIVE_SCAN_METHODS}; got {method!r}")
    parts = elems if isinstance(elems, (tuple, list)) else (elems,)
    names = [f"elems[{i}]" for i in range(len(parts))] if isinstance(elems, (tuple, list)) \
        else ["elems"]
    if not parts:
        raise ValueError("elems must be an array (T, ...) or a non-empty tuple of them")
    checked = []
    for name, x in zip(names, parts):
        if is_torch(x):
            raise TypeError(f"{name}: associative_scan runs in NumPy; got a torch tensor "
                            "(use x.numpy(), or minirec.scan.torch_ops for tensors)")
        x = require_float(name, x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} must have shape (T, ...) with T >= 1; got {_fmt(x.shape)}")
        checked.append(x)
    T = checked[0].shape[0]
    for name, x in zip(names, checked):
        if x.shape[0] != T:
            raise ValueError(f"{name} must have shape (T, ...) = ({T}, ...) (T={T} from "
                             f"{names[0]}); got {_fmt(x.shape)}")
    elems = tuple(checked) if isinstance(elems, (tuple, list)) else checked[0]
    return reference.associative_scan(combine, elems, method=method)
