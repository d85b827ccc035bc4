r"""The selective scan compiled for a CPU (``@njit(cache=True)``), fused.

The reference builds Ā = exp(Δ A) and B̄x = Δ B x for every step, ``(T, B, D, N)`` tensors, and
hands them to a scan. This kernel computes them inside the loop instead — the idea of Mamba's
hardware-aware scan: the (T, B, D, N) tensors are never written, only ``x, Δ (T, B, D)``,
``B, C (T, B, N)`` are read and ``y (T, B, D)`` written, and the state ``(D, N)`` of one sequence
stays in cache. Large batches are split over threads (``prange`` over the batch: each thread
owns whole sequences); small problems run on one thread, where waking a thread pool would cost
more than the work (measured: ~10 ms per call on the loaded 2-core machine, for a scan of
microseconds).

What bounds it: T·B·D·N exponentials. Without Intel's SVML (not installed here) Numba calls a
scalar ``exp`` per element, so the kernel runs at about 9–17× the time of one vectorised
``np.exp`` over as many floats, which is also about the speed of a Torch loop over time whose
per-step ``exp`` is vectorised (``benchmarks/bench_ssm_cpu.py``). The fusion saves memory
traffic, not exponentials.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["selective_scan", "PARALLEL_MIN_WORK"]

#: Smallest T·B·D·N for which the batch is split over threads (and B ≥ 2).
PARALLEL_MIN_WORK = 1 << 20


@njit(cache=True)
def _scan_sequence(x, delta, A, B, C, h, y, b):
    """Sequence b, in place: h[b] (D, N) from h0 to h_T, y[:, b] (T, D) without the skip term."""
    T, _, width = x.shape
    N = A.shape[1]
    for t in range(T):
        for d in range(width):
            dt = delta[t, b, d]
            u = dt * x[t, b, d]                                      # Δ_t x_t
            acc = 0.0
            for n in range(N):
                hn = np.exp(dt * A[d, n]) * h[b, d, n] + u * B[t, b, n]
                h[b, d, n] = hn                                      # h_t = Ā_t h_{t−1} + B̄_t x_t
                acc += hn * C[t, b, n]                               # y_t = Σ_n h_t C_t
            y[t, b, d] = acc


@njit(cache=True)
def _scan(x, delta, A, B, C, h, y):
    for b in range(x.shape[1]):
        _scan_sequence(x, delta, A, B, C, h, y, b)


@njit(cache=True, parallel=True)
def _scan_parallel(x, delta, A, B, C, h, y):
    for b in prange(x.shape[1]):
        _scan_sequence(x, delta, A, B, C, h, y, b)


def selective_scan(x, delta, A, B, C, *, D=None, h0=None):
    """As :func:`minirec.ssm.reference.selective_scan`, ``(y (T, B, D), h_T (B, D, N))``, in the
    input's dtype."""
    dtype = x.dtype

    def c(a):
        return np.ascontiguousarray(a, dtype=dtype)

    h = np.zeros((x.shape[1], x.shape[2], A.shape[1]), dtype) if h0 is None else \
        np.array(np.broadcast_to(h0, (x.shape[1], x.shape[2], A.shape[1])), dtype=dtype)
    y = np.empty(x.shape, dtype)
    T, batch, width = x.shape
    parallel = batch >= 2 and T * batch * width * A.shape[1] >= PARALLEL_MIN_WORK
    (_scan_parallel if parallel else _scan)(c(x), c(delta), c(A), c(B), c(C), h, y)
    if D is not None:
        y += D * x                                                   # + D ⊙ x_t
    return y, h
