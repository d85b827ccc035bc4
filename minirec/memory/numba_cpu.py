r"""Compiled per-token updates of the linear memories of :mod:`minirec.memory.reference`.

Same signatures and results as the functions of the same name there (the specification), which
the tests hold these to. Notation as there::

    T  time steps    d_k  key size    d_v  value size    M, S  (d_v, d_k)

One step is one fused pass over the d_v × d_k memory: it updates S and M and, from the new
rows of M, accumulates both the read-out y_t = M_t q_t and the next token's prediction
M_t k_{t+1}, so that M and S are each read and written once per token. NumPy needs about eight whole-array
operations, each with its own temporary, for the same step. Results have the input's dtype, and
so does the arithmetic (float32 in, float32 sums), as in the reference.

The chunked form has no kernel here: it is a few large array operations and two scans, which
the reference already runs compiled (``minirec.memory`` runs it for ``backend="numba"``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["hebbian_memory", "delta_rule_memory", "titans_linear"]

# fastmath: the sums over d_k may be reassociated, so that they vectorise (a rounding-level change:
# the tests hold float64 to 1e-10 and float32 to 1e-5 against the reference).
_JIT = dict(cache=True, error_model="numpy", fastmath=True)


@njit(**_JIT)
def _titans_kernel(k, v, q, eta, theta, alpha, M, S, y):
    """Titans per token; M, S (d_v, d_k) updated in place; y (T, d_v) written.

    One pass over M and S per token: while row i of M_t is written, it is also multiplied by
    q_t (the read-out) and by k_{t+1} (the next token's prediction), so M is read once."""
    T, d_k = k.shape
    d_v = v.shape[1]
    dtype = M.dtype.type
    one, two, zero = dtype(1), dtype(2), dtype(0)            # keep float32 arithmetic in float32
    r = np.empty(d_v, M.dtype)                               # r = M_{t−1} k_t − v_t
    for i in range(d_v):
        acc = zero
        for j in range(d_k):
            acc += M[i, j] * k[0, j]
        r[i] = acc - v[0, i]
    for t in range(T):
        k_t, q_t = k[t], q[t]
        k_next = k[t + 1] if t + 1 < T else k[t]
        decay, keep = eta[t], one - alpha[t]
        for i in range(d_v):
            g = two * theta[t] * r[i]
            S_i, M_i = S[i], M[i]
            read, predict = zero, zero
            for j in range(d_k):
                s = decay * S_i[j] - g * k_t[j]              # S_t = η S − θ · 2 (M k − v) kᵀ
                m = keep * M_i[j] + s                        # M_t = (1 − α) M + S_t
                S_i[j] = s
                M_i[j] = m
                read += m * q_t[j]                           # y_t = M_t q_t
                predict += m * k_next[j]                     # M_t k_{t+1}
            y[t, i] = read
            if t + 1 < T:
                r[i] = predict - v[t + 1, i]


@njit(**_JIT)
def _delta_kernel(k, v, q, theta, hebbian, M, y):
    """Delta rule per token (Hebbian when ``hebbian``: the error is v itself, θ = 1)."""
    T, d_k = k.shape
    d_v = v.shape[1]
    err = np.empty(d_v, np.float64)
    for t in range(T):
        for i in range(d_v):
            if hebbian:
                err[i] = v[t, i]                             # M_t = M + v_t k_tᵀ
            else:
                acc = 0.0
                for j in range(d_k):
                    acc += M[i, j] * k[t, j]
                err[i] = theta[t] * (v[t, i] - acc)          # θ_t (v_t − M k_t)
        for i in range(d_v):
            acc = 0.0
            for j in range(d_k):
                m = M[i, j] + err[i] * k[t, j]               # M_t = M + θ (v − M k) kᵀ
                M[i, j] = m
                acc += m * q[t, j]
            y[t, i] = acc


def _contiguous(*arrays):
    return [np.ascontiguousarray(a) for a in arrays]


def _memory(k, v, M0):
    dtype = np.result_type(k, v)
    if M0 is None:
        return np.zeros((v.shape[1], k.shape[1]), dtype)
    return np.array(M0, dtype=dtype, order="C")


def hebbian_memory(k, v, q, M0=None):
    """As :func:`minirec.memory.reference.hebbian_memory`, compiled."""
    k, v, q = _contiguous(k, v, q)
    M = _memory(k, v, M0)
    y = np.empty((k.shape[0], v.shape[1]), M.dtype)
    _delta_kernel(k, v, q, np.ones(k.shape[0], M.dtype), True, M, y)
    return y, M


def delta_rule_memory(k, v, q, theta, M0=None):
    """As :func:`minirec.memory.reference.delta_rule_memory`, compiled."""
    k, v, q = _contiguous(k, v, q)
    M = _memory(k, v, M0)
    y = np.empty((k.shape[0], v.shape[1]), M.dtype)
    _delta_kernel(k, v, q, np.ascontiguousarray(theta, dtype=M.dtype), False, M, y)
    return y, M


def titans_linear(k, v, q, eta, theta, alpha, state=None):
    """As :func:`minirec.memory.reference.titans_linear`, compiled."""
    k, v, q = _contiguous(k, v, q)
    M = _memory(k, v, None if state is None else state[0])
    S = np.zeros_like(M) if state is None else np.array(state[1], dtype=M.dtype, order="C")
    y = np.empty((k.shape[0], v.shape[1]), M.dtype)
    eta, theta, alpha = (np.ascontiguousarray(g, dtype=M.dtype) for g in (eta, theta, alpha))
    _titans_kernel(k, v, q, eta, theta, alpha, M, S, y)
    return y, (M, S)
