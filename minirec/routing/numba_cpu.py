r"""Compiled token routing of :mod:`minirec.routing`: top-k gating, dispatch and combine.

Same signatures and results as the functions of the same name in
:mod:`minirec.routing.reference` (the specification), which the tests hold these to. Notation as
there::

    N  tokens    d  model size    E  experts    k  choices per token    C  slots per expert

The reference writes dispatch and combine as Python loops over tokens (the clearest statement of
what goes where); NumPy's fancy indexing could vectorise them, but each would then build an
(N·k, d) temporary. Here each is one pass over the tokens, in parallel (``prange``): in dispatch
every (expert, slot) is written by exactly one token, in combine every output row by one thread,
so no two threads write the same memory. The capacity rule itself (which choice gets which slot)
is sequential by nature — a running count per expert — and is a cheap pass over N·k integers.
Results have the input's dtype; sums of one output row accumulate in that dtype, as the
reference does.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["top_k_route", "expert_slots", "dispatch", "combine"]  # the balance loss: the reference's

_JIT = dict(cache=True, error_model="numpy")


@njit(parallel=True, **_JIT)
def _top_k_kernel(logits, k, normalize, weights, indices):
    """Row by row: p = softmax(logits_n), the k largest p (lowest index first on ties)."""
    N, E = logits.shape
    for n in prange(N):
        m = logits[n, 0]
        for e in range(1, E):
            m = max(m, logits[n, e])
        p = np.empty(E, dtype=np.float64)
        total = 0.0
        for e in range(E):
            p[e] = math.exp(logits[n, e] - m)                   # e^{z_e − max z}
            total += p[e]
        taken = np.zeros(E, dtype=np.bool_)
        kept = 0.0
        for j in range(k):
            best = -1
            for e in range(E):                                  # first maximum among the rest
                if not taken[e] and (best < 0 or p[e] > p[best]):
                    best = e
            taken[best] = True
            indices[n, j] = best
            weights[n, j] = p[best] / total                     # p_{n, idx_nj}
            kept += p[best] / total
        if normalize:
            for j in range(k):
                weights[n, j] = weights[n, j] / kept            # w / Σ_j w_j


def top_k_route(logits, k, *, normalize=True):
    """``logits (N, E)`` → ``(weights (N, k), indices (N, k))``; see the reference."""
    N = logits.shape[0]
    weights = np.empty((N, k), dtype=logits.dtype)
    indices = np.empty((N, k), dtype=np.int64)
    _top_k_kernel(np.ascontiguousarray(logits), k, normalize, weights, indices)
    return weights, indices


@njit(**_JIT)
def _slots_kernel(indices, n_experts, limit, slots):
    """First choices of all tokens, then second choices, ...; −1 once an expert is full."""
    N, k = indices.shape
    filled = np.zeros(n_experts, dtype=np.int64)
    for j in range(k):
        for n in range(N):
            e = indices[n, j]
            if filled[e] < limit:
                slots[n, j] = filled[e]
                filled[e] += 1
            else:
                slots[n, j] = -1
    return filled


def expert_slots(indices, n_experts, capacity=None):
    """``indices (N, k)`` → ``slots (N, k)``, −1 where dropped; see the reference."""
    slots = np.empty(indices.shape, dtype=np.int64)
    limit = indices.size if capacity is None else capacity
    _slots_kernel(np.ascontiguousarray(indices, dtype=np.int64), n_experts, limit, slots)
    return slots


@njit(parallel=True, **_JIT)
def _dispatch_kernel(x, indices, slots, buffers):
    """buffers[idx_nj, slot_nj] = x_n for every kept choice (the rest were zeroed)."""
    N, k = indices.shape
    d = x.shape[1]
    for n in prange(N):
        for j in range(k):
            s = slots[n, j]
            if s >= 0:
                e = indices[n, j]
                for c in range(d):
                    buffers[e, s, c] = x[n, c]


def dispatch(x, indices, n_experts, capacity=None):
    """``x (N, d)``, ``indices (N, k)`` → ``(buffers (E, C, d), slots (N, k))``; see the
    reference."""
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    slots = np.empty(indices.shape, dtype=np.int64)
    limit = indices.size if capacity is None else capacity
    filled = _slots_kernel(indices, n_experts, limit, slots)
    C = capacity if capacity is not None else max(1, int(filled.max(initial=0)))
    buffers = np.zeros((n_experts, C, x.shape[1]), dtype=x.dtype)
    _dispatch_kernel(np.ascontiguousarray(x), indices, slots, buffers)
    return buffers, slots


@njit(parallel=True, **_JIT)
def _combine_kernel(expert_out, weights, indices, slots, y):
    """y_n = Σ_{j: slot_nj ≥ 0} w_nj · expert_out[idx_nj, slot_nj]."""
    N, k = indices.shape
    d = y.shape[1]
    for n in prange(N):
        for c in range(d):
            y[n, c] = 0.0
        for j in range(k):
            s = slots[n, j]
            if s >= 0:
                e = indices[n, j]
                w = weights[n, j]
                for c in range(d):
                    y[n, c] += w * expert_out[e, s, c]


def combine(expert_out, weights, indices, slots):
    """``expert_out (E, C, d_out)``, ``weights, indices, slots (N, k)`` → ``y (N, d_out)``."""
    y = np.empty((weights.shape[0], expert_out.shape[2]), dtype=expert_out.dtype)
    _combine_kernel(np.ascontiguousarray(expert_out), np.ascontiguousarray(weights),
                    np.ascontiguousarray(indices, dtype=np.int64),
                    np.ascontiguousarray(slots, dtype=np.int64), y)
    return y

