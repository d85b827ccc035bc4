r"""The linear recurrence h_t = a_t h_{t−1} + b_t with compiled Numba kernels (draft).
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from minirec.scan.reference import broadcast_time_major

_JIT = dict(cache=True, error_model="numpy", fastmath={"contract"})

SMALL = 1 << 15          # below T·N = 32768 elements one thread wins: no parallel region to start
CHUNK = 128              # steps per time chunk
MAX_CHUNKS = 256         # the carry pass over chunk starts is sequential: keep it short


@njit(inline="always", **_JIT)
def _step_row(a_t, b_t, h_prev, h_t):
    """One step on a row of channels: h_t = a_t h_{t−1} + b_t. Indices from 0 on 1-d views:
    LLVM then knows they are not negative and vectorises without gathers."""
    for i in range(h_t.shape[0]):
        h_t[i] = a_t[i] * h_prev[i] + b_t[i]


@njit(**_JIT)
def _scan_chunk(a, b, start, h):
    """h over the rows of a chunk from the state ``start`` before it: h_t = a_t h_{t−1} + b_t.
    ``a, b, h (C, N)``, ``start (N,)``. One channel (N = 1) runs time-inner with the state in a
    register: a step per FMA latency instead of a row loop of length 1."""
    if h.shape[1] == 1:
        x = start[0]
        for t in range(h.shape[0]):
            x = a[t, 0] * x + b[t, 0]
            h[t, 0] = x
        return
    _step_row(a[0], b[0], start, h[0])
    for t in range(1, h.shape[0]):
        _step_row(a[t], b[t], h[t - 1], h[t])


@njit(**_JIT)
def _sequential(a, b, h0, h):
    """One thread: h[t, n] = a[t, n] h[t−1, n] + b[t, n], row after row (rows are contiguous,
    the inner loop vectorises)."""
    _scan_chunk(a, b, h0, h)


@njit(parallel=True, **_JIT)
def _channels(a, b, h0, h, n_blocks):
    T, N = b.shape
    width = (N + n_blocks - 1) // n_blocks
    for k in prange(n_blocks):
        lo, hi = k * width, min(N, (k + 1) * width)
        _step_row(a[0, lo:hi], b[0, lo:hi], h0[lo:hi], h[0, lo:hi])
        for t in range(1, T):
            _step_row(a[t, lo:hi], b[t, lo:hi], h[t - 1, lo:hi], h[t, lo:hi])


@njit(inline="always", **_JIT)
def _compose_row(a_t, b_t, A, B, tiny):
    """(A, B) ← (A, B) ∘ (a_t, b_t): A ← a_t A (subnormals flushed to 0), B ← a_t B + b_t."""
    for i in range(A.shape[0]):
        p = a_t[i] * A[i]
        A[i] = p if abs(p) >= tiny else 0.0
        B[i] = a_t[i] * B[i] + b_t[i]


@njit(**_JIT)
def _reduce_chunk(a, b, A, B, tiny):
    """The composed map of the steps of a chunk: A = Π a, B = h_last with h_{−1} = 0.
    ``a, b (C, N)``, ``A, B (N,)``."""
    if A.shape[0] == 1:                         # one channel: time-inner, state in registers
        x, y = a[0, 0], b[0, 0]
        for t in range(1, a.shape[0]):
            p = a[t, 0] * x
            x = p if abs(p) >= tiny else 0.0
            y = a[t, 0] * y + b[t, 0]
        A[0], B[0] = x, y
        return
    for i in range(A.shape[0]):                 # (a loop: A[:] = a[0] took 7 s to compile)
        A[i] = a[0, i]
        B[i] = b[0, i]
    for t in range(1, a.shape[0]):
        _compose_row(a[t], b[t], A, B, tiny)


@njit(parallel=True, **_JIT)
def _chunked(a, b, h0, h, n_chunks, tiny):
    T, N = b.shape
    C = (T + n_chunks - 1) // n_chunks
    n = (T + C - 1) // C
    A = np.empty((n, N), b.dtype)
    B = np.empty((n, N), b.dtype)
    start = np.empty((n, N), b.dtype)
    for k in prange(n):                     # 1. chunk 0 from h0; every other chunk: its map
        t0, t1 = k * C, min(T, (k + 1) * C)
        if k == 0:
            _scan_chunk(a[t0:t1], b[t0:t1], h0, h[t0:t1])
        else:
            _reduce_chunk(a[t0:t1], b[t0:t1], A[k], B[k], tiny)
    if n > 1:                               # 2. states at chunk starts
        for i in range(N):
            start[1, i] = h[C - 1, i]
    for k in range(2, n):
        _step_row(A[k - 1], B[k - 1], start[k - 1], start[k])
    for k in prange(1, n):                  # 3. each chunk from its start
        t0, t1 = k * C, min(T, (k + 1) * C)
        _scan_chunk(a[t0:t1], b[t0:t1], start[k], h[t0:t1])


def _flat(a, b, h0):
    """Broadcast over trailing axes and flatten them: ``a, b (T, N)`` C-contiguous, ``h0 (N,)``,
    in float32 or float64 (float16 is computed in float32)."""
    (a, b), shape = broadcast_time_major(a, b)
    dtype = np.result_type(a, b, np.float32)
    a = np.ascontiguousarray(a, dtype).reshape(shape[0], -1)
    b = np.ascontiguousarray(b, dtype).reshape(shape[0], -1)
    h0 = (np.zeros(b.shape[1], dtype) if h0 is None
          else np.ascontiguousarray(np.broadcast_to(h0, shape[1:]), dtype).reshape(-1))
    return a, b, h0, shape


METHODS = ("auto", "sequential", "channels", "chunked")


def choose_method(T, N):
    """What ``method="auto"`` runs for a (T, N) problem (see the module docstring)."""
    if T * N < SMALL or get_num_threads() < 2:
        return "sequential"
    return "chunked"


def linear_recurrence(a, b, h0=None, *, method="auto", chunk=None):
    """h_t = a_t h_{t−1} + b_t, as :func:`minirec.scan.reference.linear_recurrence`.

    ``a (T, ...)``, ``b (T, ...)`` (trailing axes broadcast), ``h0 (...)`` or None →
    ``h (T, ...)`` in the inputs' dtype. ``method``: "auto" (see :func:`choose_method`),
    "sequential", "channels" (one block of channels per thread) or "chunked" (over time, chunks
    of ``chunk`` steps; default :data:`CHUNK`).
    """
    dtype = np.result_type(a, b)
    a2, b2, h02, shape = _flat(a, b, h0)
    T, N = b2.shape
    if method == "auto":
        method = choose_method(T, N)
    h = np.empty_like(b2)
    if method == "sequential":
        _sequential(a2, b2, h02, h)
    elif method == "channels":
        _channels(a2, b2, h02, h, get_num_threads())
    elif method == "chunked":
        C = CHUNK if chunk is None else int(chunk)
        n_chunks = max(1, min(MAX_CHUNKS, -(-T // max(C, 1))))
        _chunked(a2, b2, h02, h, n_chunks, b2.dtype.type(np.finfo(b2.dtype).tiny))
    else:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    return h.reshape(shape).astype(dtype, copy=False)
