r"""Compiled loops of :mod:`minirec.attention`: streaming Aaren and recurrent linear attention.

Same signatures and results as the functions of the same name in
:mod:`minirec.attention.reference` (the specification), which the tests hold these to. Notation
as there::

    T  time steps    ...  batch axes (flattened to N here)    d_k, d_v, d_f  key, value, feature sizes

These are the two mechanisms whose natural form is a loop over time with an O(1) state: one
step reads the state, updates it in place and writes one output row. Everything else in the
folder is a few large array operations (einsum, a scan), which NumPy already runs compiled.
Results have the input's dtype (float32 in, float32 out); the sums over d_f of one step
accumulate in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from minirec.attention.reference import aaren_initial_state, linear_attention_initial_state

__all__ = ["aaren_stream", "linear_attention_recurrent"]

# error_model="numpy": x / 0 is inf or NaN, as in NumPy, instead of raising ZeroDivisionError.
_JIT = dict(cache=True, error_model="numpy")


@njit(**_JIT)
def _aaren_stream_kernel(s, v, m, u, w, o):
    """s (T, N), v (T, N, d_v); state m (N,), u (N,), w (N, d_v) updated in place; o (T, N, d_v)."""
    T, N, E = v.shape
    for t in range(T):
        for n in range(N):
            m_new = max(m[n], s[t, n])                              # m_t = max(m_{t−1}, s_t)
            keep = math.exp(m[n] - m_new)
            new = math.exp(s[t, n] - m_new)
            u[n] = u[n] * keep + new                                # u_t = u e^{m−m_t} + e^{s_t−m_t}
            m[n] = m_new
            inv_u = 1.0 / u[n]
            for e in range(E):
                w[n, e] = w[n, e] * keep + new * v[t, n, e]         # w_t = w e^{m−m_t} + e^{s_t−m_t} v_t
                o[t, n, e] = w[n, e] * inv_u                        # o_t = w_t / u_t


@njit(**_JIT)
def _linear_attention_kernel(fq, fk, v, S, z, normalize, o):
    """fq, fk (T, N, d_f), v (T, N, d_v); state S (N, d_f, d_v), z (N, d_f) updated in place."""
    T, N, F = fq.shape
    E = v.shape[2]
    for t in range(T):
        for n in range(N):
            den = 0.0
            for f in range(F):
                z[n, f] += fk[t, n, f]                              # z_t = z_{t−1} + φ(k_t)
                den += fq[t, n, f] * z[n, f]                        # z_t·φ(q_t)
                for e in range(E):
                    S[n, f, e] += fk[t, n, f] * v[t, n, e]          # S_t = S_{t−1} + φ(k_t) v_tᵀ
            scale = 1.0 / den if normalize else 1.0
            for e in range(E):
                acc = 0.0
                for f in range(F):
                    acc += fq[t, n, f] * S[n, f, e]                 # S_tᵀ φ(q_t)
                o[t, n, e] = acc * scale


def _flat(a, T, N):
    """(T, ..., x) → contiguous (T, N, x)."""
    return np.ascontiguousarray(a.reshape(T, N, a.shape[-1]))


def aaren_stream(s, v, *, state=None):
    """Aaren streamed token by token: ``s (T, ...)``, ``v (T, ..., d_v)`` →
    ``(o (T, ..., d_v), (m, u, w))``, as :func:`minirec.attention.reference.aaren_stream`."""
    T, batch, E = s.shape[0], s.shape[1:], v.shape[-1]
    N = math.prod(batch)
    if state is None:
        state = aaren_initial_state(batch, E, v.dtype)
    m, u, w = (np.array(a, dtype=v.dtype).reshape(shape)
               for a, shape in zip(state, ((N,), (N,), (N, E))))  # copies: updated in place
    o = np.empty((T, N, E), v.dtype)
    _aaren_stream_kernel(np.ascontiguousarray(s.reshape(T, N)), _flat(v, T, N), m, u, w, o)
    return o.reshape(v.shape), (m.reshape(batch), u.reshape(batch), w.reshape(*batch, E))


def linear_attention_recurrent(fq, fk, v, *, normalize=True, state=None):
    """Causal linear attention as an RNN: ``fq, fk (T, ..., d_f)``, ``v (T, ..., d_v)`` →
    ``(o (T, ..., d_v), (S, z))``, as :func:`minirec.attention.reference.linear_attention_recurrent`."""
    T, batch, F, E = fq.shape[0], fq.shape[1:-1], fq.shape[-1], v.shape[-1]
    N = math.prod(batch)
    if state is None:
        state = linear_attention_initial_state(batch, F, E, v.dtype)
    S = np.array(state[0], dtype=v.dtype).reshape(N, F, E)         # copies: updated in place
    z = np.array(state[1], dtype=v.dtype).reshape(N, F)
    o = np.empty((T, N, E), v.dtype)
    _linear_attention_kernel(_flat(fq, T, N), _flat(fk, T, N), _flat(v, T, N), S, z,
                             bool(normalize), o)
    return o.reshape(v.shape), (S.reshape(*batch, F, E), z.reshape(*batch, F))
